package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

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
	q := url.Values{"scope": {scope}, "metric": {"ActualCost"}, "from": {from}, "to": {to}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Stack.CostsimURL+"/_sim/truth?"+q.Encode(), nil)
	resp, err := p.Stack.Transport().Do(req)
	if err != nil {
		return nil, fmt.Errorf("costsim truth: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("costsim truth: %s: %s", resp.Status, b)
	}
	var t struct {
		Days []struct {
			Date          string `json:"date"`
			UsageRows     int64  `json:"usageRows"`
			UsageQuantity string `json:"usageQuantity"`
		} `json:"days"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {
		return nil, fmt.Errorf("costsim truth: %w", err)
	}
	var out []store.QuantityTotal
	for _, d := range t.Days {
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
