package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"github.com/shopspring/decimal"
	"golang.org/x/sync/errgroup"
)

// KindAggregate marks aggregate documents in the costs container.
const KindAggregate = "aggregate"

// Aggregate is one row of a Query API result: the sums of a query's
// aggregations for one period (a day, or a month for Monthly queries), one
// combination of group values and one currency. It lives in the costs
// container, in partitions of its own ([AggregatePK]): one per scope, query
// type, query definition and period, so that the documents of one query
// never mix with cost lines nor with another query's rows.
//
// Its id is [AggregateID]: the same query, period, groups and currency
// always give the same id, so a query run again overwrites its rows, and
// the generation sweep ([Cosmos.SweepAggregates]) removes rows a new run no
// longer has. An aggregate has no "metric" field: queries over cost lines
// by metric never see aggregates.
type Aggregate struct {
	ID   string `json:"id"`
	PK   string `json:"pk"`
	Kind string `json:"kind"`
	// Scope is lower-cased by NewAggregate.
	Scope string `json:"scope"`
	// QueryType is the query's type: ActualCost, AmortizedCost or Usage.
	QueryType string `json:"queryType"`
	// Query is the key of the query definition (a hash, see the caller).
	Query       string `json:"query"`
	Granularity string `json:"granularity,omitempty"`
	// Date is the period: YYYY-MM-DD of the day or of the month's first day.
	Date     string `json:"date"`
	Currency string `json:"currency"`
	// Dimensions are the group values, by column name (ResourceGroup,
	// TagKey, TagValue, ...), as the service wrote them.
	Dimensions map[string]string `json:"dimensions"`
	// ValuesExact are the aggregated columns, as exact decimal text; Values
	// the same as float64, for queries only.
	ValuesExact map[string]string  `json:"valuesExact"`
	Values      map[string]float64 `json:"values"`

	WindowID   string `json:"windowId"`
	Generation int64  `json:"generation"`
	File       string `json:"file"`
	Line       int    `json:"line"`
}

// AggregatePK is the partition key of the aggregates of one scope, query
// type, query definition and period.
func AggregatePK(scope, queryType, query, date string) string {
	return strings.ToLower(scope) + "|query:" + queryType + ":" + query + "|" + date
}

// AggregateID is the id of the row of query for one period, currency and
// set of group values.
func AggregateID(query, date, currency string, dims map[string]string) string {
	keys := make([]string, 0, len(dims))
	for k := range dims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, part := range append([]string{"aggregate", query, date, currency}, keys...) {
		fmt.Fprintf(h, "%d:%s", len(part), part)
	}
	for _, k := range keys {
		v := dims[k]
		fmt.Fprintf(h, "%d:%s", len(v), v)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// NewAggregate builds the document of one result row.
func NewAggregate(scope, queryType, query, granularity, date, currency string, dims map[string]string, values map[string]decimal.Decimal) Aggregate {
	scope = strings.ToLower(scope)
	a := Aggregate{
		ID: AggregateID(query, date, currency, dims), PK: AggregatePK(scope, queryType, query, date), Kind: KindAggregate,
		Scope: scope, QueryType: queryType, Query: query, Granularity: granularity, Date: date, Currency: currency,
		Dimensions: dims, ValuesExact: map[string]string{}, Values: map[string]float64{},
	}
	for k, v := range values {
		a.ValuesExact[k] = v.String()
		a.Values[k] = v.InexactFloat64()
	}
	return a
}

// AggregateTotal is the number of rows of one period and currency and the
// exact sum of one of their values.
type AggregateTotal struct {
	Date     string
	Currency string
	Rows     int64
	Sum      decimal.Decimal
}

func checkAggregates(docs []Aggregate) error {
	seen := map[string]bool{}
	for i, d := range docs {
		switch {
		case d.ID == "" || d.PK == "" || d.Kind != KindAggregate:
			return fmt.Errorf("aggregate %d (%s line %d): empty id or pk, or kind %q", i, d.File, d.Line, d.Kind)
		case d.PK != AggregatePK(d.Scope, d.QueryType, d.Query, d.Date):
			return fmt.Errorf("aggregate %s (%s line %d): pk %q does not match scope, type, query and date", d.ID, d.File, d.Line, d.PK)
		case d.Generation < 0 || d.Generation > MaxGeneration:
			return fmt.Errorf("aggregate %s: generation %d outside [0, 2^53]", d.ID, d.Generation)
		case seen[d.PK+"\x00"+d.ID]:
			return fmt.Errorf("aggregate %s in %s: id given twice in one batch (%s line %d)", d.ID, d.PK, d.File, d.Line)
		}
		seen[d.PK+"\x00"+d.ID] = true
	}
	return nil
}

// aggregateTally sums one value of aggregate rows per currency.
type aggregateTally map[string]*AggregateTotal

func (t aggregateTally) add(date, currency, exact string) error {
	v := decimal.Zero
	if exact != "" {
		var err error
		if v, err = decimal.NewFromString(exact); err != nil {
			return fmt.Errorf("aggregate value %q on %s: %w", exact, date, err)
		}
	}
	a := t[currency]
	if a == nil {
		a = &AggregateTotal{Date: date, Currency: currency}
		t[currency] = a
	}
	a.Rows++
	a.Sum = a.Sum.Add(v)
	return nil
}

func (t aggregateTally) result() []AggregateTotal {
	out := make([]AggregateTotal, 0, len(t))
	for _, a := range t {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b AggregateTotal) int { return cmp.Compare(a.Currency, b.Currency) })
	return out
}

// aggregateAmount is what SumAggregates reads of each document.
type aggregateAmount struct {
	Currency    string            `json:"currency"`
	ValuesExact map[string]string `json:"valuesExact"`
	Generation  int64             `json:"generation"`
}

// UpsertAggregates writes docs (whole: aggregates are few and small) and
// counts them as Written.
func (s *Cosmos) UpsertAggregates(ctx context.Context, docs []Aggregate) (WriteStats, error) {
	var (
		mu sync.Mutex
		st WriteStats
	)
	if err := checkAggregates(docs); err != nil {
		return st, fmt.Errorf("upsert aggregates: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency)
	for i := range docs {
		d := &docs[i]
		g.Go(func() error {
			b, err := json.Marshal(d)
			if err != nil {
				return err
			}
			resp, err := s.costs.UpsertItem(gctx, azcosmos.NewPartitionKeyString(d.PK), b, nil)
			mu.Lock()
			defer mu.Unlock()
			st.RequestCharge += float64(resp.RequestCharge)
			if err != nil {
				return fmt.Errorf("upsert aggregate %s in %s: %w", d.ID, d.PK, mapError(err))
			}
			st.Written++
			return nil
		})
	}
	return st, g.Wait()
}

// SweepAggregates deletes the rows of query on the given periods whose
// generation is not keep, and returns how many it deleted.
func (s *Cosmos) SweepAggregates(ctx context.Context, scope, queryType, query string, dates []string, keep int64) (int, error) {
	const q = "SELECT c.id FROM c WHERE c.pk = @pk AND c.generation != @keep"
	deleted := 0
	for _, date := range uniqueDates(dates) {
		pk := AggregatePK(scope, queryType, query, date)
		var ids []string
		_, err := s.query(ctx, s.costs, pk, q, []azcosmos.QueryParameter{{Name: "@pk", Value: pk}, {Name: "@keep", Value: keep}}, 0, func(b []byte) error {
			var r struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(b, &r); err != nil {
				return err
			}
			ids = append(ids, r.ID)
			return nil
		})
		if err != nil {
			return deleted, fmt.Errorf("sweep aggregates %s: %w", pk, mapError(err))
		}
		for _, id := range ids {
			_, err := s.costs.DeleteItem(ctx, azcosmos.NewPartitionKeyString(pk), id, nil)
			if isStatus(err, 404) {
				continue
			}
			if err != nil {
				return deleted, fmt.Errorf("sweep aggregates %s: delete %s: %w", pk, id, mapError(err))
			}
			deleted++
		}
	}
	return deleted, nil
}

// SumAggregates returns, per period and currency, the rows of query and the
// exact sum of their value column, ordered by period and currency. Periods
// without rows are left out.
func (s *Cosmos) SumAggregates(ctx context.Context, scope, queryType, query string, dates []string, value string) ([]AggregateTotal, error) {
	const q = "SELECT c.currency, c.valuesExact FROM c WHERE c.pk = @pk"
	var out []AggregateTotal
	for _, date := range uniqueDates(dates) {
		pk := AggregatePK(scope, queryType, query, date)
		t := aggregateTally{}
		_, err := s.query(ctx, s.costs, pk, q, []azcosmos.QueryParameter{{Name: "@pk", Value: pk}}, 0, func(b []byte) error {
			var a aggregateAmount
			if err := json.Unmarshal(b, &a); err != nil {
				return err
			}
			return t.add(date, a.Currency, a.ValuesExact[value])
		})
		if err != nil {
			return nil, fmt.Errorf("sum aggregates %s: %w", pk, mapError(err))
		}
		out = append(out, t.result()...)
	}
	return out, nil
}

// UpsertAggregates stores docs under the same rules as [Cosmos.UpsertAggregates].
func (m *Memory) UpsertAggregates(ctx context.Context, docs []Aggregate) (WriteStats, error) {
	var st WriteStats
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := checkAggregates(docs); err != nil {
		return st, fmt.Errorf("upsert aggregates: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			return st, fmt.Errorf("upsert aggregate %s: %w", d.ID, err)
		}
		part := m.costs[d.PK]
		if part == nil {
			part = map[string][]byte{}
			m.costs[d.PK] = part
		}
		part[d.ID] = b
		st.Written++
	}
	return st, nil
}

// SweepAggregates is [Cosmos.SweepAggregates].
func (m *Memory) SweepAggregates(ctx context.Context, scope, queryType, query string, dates []string, keep int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, date := range uniqueDates(dates) {
		part := m.costs[AggregatePK(scope, queryType, query, date)]
		for id, b := range part {
			var a aggregateAmount
			if err := json.Unmarshal(b, &a); err != nil {
				return n, fmt.Errorf("sweep aggregate %s: %w", id, err)
			}
			if a.Generation != keep {
				delete(part, id)
				n++
			}
		}
	}
	return n, nil
}

// SumAggregates is [Cosmos.SumAggregates].
func (m *Memory) SumAggregates(ctx context.Context, scope, queryType, query string, dates []string, value string) ([]AggregateTotal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []AggregateTotal
	for _, date := range uniqueDates(dates) {
		t := aggregateTally{}
		for id, b := range m.costs[AggregatePK(scope, queryType, query, date)] {
			var a aggregateAmount
			if err := json.Unmarshal(b, &a); err != nil {
				return nil, fmt.Errorf("sum aggregate %s: %w", id, err)
			}
			if err := t.add(date, a.Currency, a.ValuesExact[value]); err != nil {
				return nil, err
			}
		}
		out = append(out, t.result()...)
	}
	return out, nil
}

// QuantityTotal is the number of cost documents of a day and the exact sum
// of their quantities (usage aggregates carry quantities, no cost).
type QuantityTotal struct {
	Date     string
	Rows     int64
	Quantity decimal.Decimal
}

type quantityAmount struct {
	QuantityExact string `json:"quantityExact"`
}

func (q *QuantityTotal) add(exact string) error {
	v := decimal.Zero
	if exact != "" {
		var err error
		if v, err = decimal.NewFromString(exact); err != nil {
			return fmt.Errorf("quantityExact %q on %s: %w", exact, q.Date, err)
		}
	}
	q.Rows++
	q.Quantity = q.Quantity.Add(v)
	return nil
}

// SumQuantities returns, per day of scope and metric, the number of cost
// documents and the exact sum of their quantities. Days without documents
// are left out.
func (s *Cosmos) SumQuantities(ctx context.Context, scope, metric string, dates []string) ([]QuantityTotal, error) {
	const q = "SELECT c.quantityExact FROM c WHERE c.pk = @pk"
	var out []QuantityTotal
	for _, date := range uniqueDates(dates) {
		pk := CostPK(scope, metric, date)
		t := QuantityTotal{Date: date}
		_, err := s.query(ctx, s.costs, pk, q, []azcosmos.QueryParameter{{Name: "@pk", Value: pk}}, 0, func(b []byte) error {
			var a quantityAmount
			if err := json.Unmarshal(b, &a); err != nil {
				return err
			}
			return t.add(a.QuantityExact)
		})
		if err != nil {
			return nil, fmt.Errorf("sum quantities %s: %w", pk, mapError(err))
		}
		if t.Rows > 0 {
			out = append(out, t)
		}
	}
	return out, nil
}

// SumQuantities is [Cosmos.SumQuantities].
func (m *Memory) SumQuantities(ctx context.Context, scope, metric string, dates []string) ([]QuantityTotal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []QuantityTotal
	for _, date := range uniqueDates(dates) {
		t := QuantityTotal{Date: date}
		for id, b := range m.costs[CostPK(scope, metric, date)] {
			var a quantityAmount
			if err := json.Unmarshal(b, &a); err != nil {
				return nil, fmt.Errorf("sum quantity %s: %w", id, err)
			}
			if err := t.add(a.QuantityExact); err != nil {
				return nil, err
			}
		}
		if t.Rows > 0 {
			out = append(out, t)
		}
	}
	return out, nil
}
