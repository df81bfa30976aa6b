package pipeline

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
)

// Send puts a message on the cost-windows queue, as IngestHttp does.
func (p *Pipeline) Send(ctx context.Context, msg any) error {
	q, err := queue.New(p.Stack.QueueURL, p.Cred, &azqueue.ClientOptions{ClientOptions: policy.ClientOptions{Transport: p.Stack.Transport()}})
	if err != nil {
		return err
	}
	return q.Send(ctx, queue.Windows, msg, 0)
}

// UsageTruth asks costsim for the metered usage of a scope's days (what
// Commerce UsageAggregates reports): rows and exact quantity per day. Days
// without usage are left out.
func (p *Pipeline) UsageTruth(ctx context.Context, scope, from, to string) ([]store.QuantityTotal, error) {
	days, err := p.truth(ctx, scope, "ActualCost", from, to)
	if err != nil {
		return nil, err
	}
	var out []store.QuantityTotal
	for _, d := range days {
		if d.UsageRows == 0 {
			continue
		}
		v, err := decimal.NewFromString(d.UsageQuantity)
		if err != nil {
			return nil, fmt.Errorf("costsim truth: usage quantity of %s: %w", d.Date, err)
		}
		out = append(out, store.QuantityTotal{Date: d.Date, Rows: d.UsageRows, Quantity: v})
	}
	return out, nil
}
