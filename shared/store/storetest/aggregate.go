package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/store"
)

// SourceStore is what the Query and usage-aggregate sources add to a store;
// *store.Cosmos and *store.Memory implement it.
type SourceStore interface {
	Store
	UpsertAggregates(ctx context.Context, docs []store.Aggregate) (store.WriteStats, error)
	SweepAggregates(ctx context.Context, scope, queryType, query string, dates []string, keep int64) (int, error)
	SumAggregates(ctx context.Context, scope, queryType, query string, dates []string, value string) ([]store.AggregateTotal, error)
	SumQuantities(ctx context.Context, scope, metric string, dates []string) ([]store.QuantityTotal, error)
}

// RunSources runs the conformance cases of aggregate documents and quantity
// sums. newStore returns an empty, provisioned store per subtest.
func RunSources(t *testing.T, newStore func(t *testing.T) SourceStore) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s SourceStore)
	}{
		{"AggregatesReplaceByGeneration", testAggregatesReplaceByGeneration},
		{"AggregatesApartFromCosts", testAggregatesApartFromCosts},
		{"AggregateDuplicateID", testAggregateDuplicateID},
		{"QuantitiesExact", testQuantitiesExact},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

const queryKey = "q1"

// aggRows builds aggregate documents: one per resource group and day.
func aggRows(scope string, gen int64, query string, rows map[string][]string) []store.Aggregate {
	var out []store.Aggregate
	dates := make([]string, 0, len(rows))
	for d := range rows {
		dates = append(dates, d)
	}
	slices.Sort(dates)
	for _, date := range dates {
		for i, c := range rows[date] {
			a := store.NewAggregate(scope, metric, query, "Daily", date, "EUR",
				map[string]string{"ResourceGroup": fmt.Sprintf("rg-%d", i)},
				map[string]decimal.Decimal{"Cost": decimal.RequireFromString(c)})
			a.Generation, a.File, a.Line = gen, "page_00000.json", i+1
			out = append(out, a)
		}
	}
	return out
}

func sumAgg(t *testing.T, s SourceStore, scope, query string, dates ...string) map[string]store.AggregateTotal {
	t.Helper()
	got, err := s.SumAggregates(t.Context(), scope, metric, query, dates, "Cost")
	if err != nil {
		t.Fatalf("SumAggregates: %v", err)
	}
	out := map[string]store.AggregateTotal{}
	for _, a := range got {
		out[a.Date+" "+a.Currency] = a
	}
	return out
}

func testAggregatesReplaceByGeneration(t *testing.T, s SourceStore) {
	ctx := t.Context()
	d1, d2 := "2026-07-01", "2026-07-02"
	gen1 := aggRows(scopeA, 1, queryKey, map[string][]string{d1: {"1.10", "2.20", "3.30"}, d2: {"4.000000000000000000001"}})
	if st, err := s.UpsertAggregates(ctx, gen1); err != nil || st.Written != 4 {
		t.Fatalf("UpsertAggregates: %+v, %v; want 4 written", st, err)
	}
	// The same query again, rg-2 of d1 gone and d2 changed.
	gen2 := aggRows(scopeA, 2, queryKey, map[string][]string{d1: {"1.10", "2.25"}, d2: {"4.5"}})
	if _, err := s.UpsertAggregates(ctx, gen2); err != nil {
		t.Fatalf("UpsertAggregates: %v", err)
	}
	if gen1[0].ID != gen2[0].ID {
		t.Fatalf("ids differ for the same query, day and groups: %s, %s", gen1[0].ID, gen2[0].ID)
	}
	n, err := s.SweepAggregates(ctx, scopeA, metric, queryKey, []string{d1, d2}, 2)
	if err != nil || n != 1 {
		t.Fatalf("SweepAggregates = %d, %v; want 1 (rg-2 of the first day)", n, err)
	}
	got := sumAgg(t, s, scopeA, queryKey, d1, d2)
	want := map[string]store.AggregateTotal{
		d1 + " EUR": {Date: d1, Currency: "EUR", Rows: 2, Sum: decimal.RequireFromString("3.35")},
		d2 + " EUR": {Date: d2, Currency: "EUR", Rows: 1, Sum: decimal.RequireFromString("4.5")},
	}
	for k, w := range want {
		if g := got[k]; g.Rows != w.Rows || !g.Sum.Equal(w.Sum) {
			t.Errorf("%s: %d rows %s, want %d rows %s", k, g.Rows, g.Sum, w.Rows, w.Sum)
		}
	}
	if len(got) != len(want) {
		t.Errorf("totals %v, want %v", got, want)
	}
}

func testAggregatesApartFromCosts(t *testing.T, s SourceStore) {
	ctx := t.Context()
	d := "2026-07-03"
	upsert(t, s, costs(scopeA, 1, line{id: "c1", date: d, currency: "EUR", cost: "9"}))
	if _, err := s.UpsertAggregates(ctx, aggRows(scopeA, 5, queryKey, map[string][]string{d: {"1", "2"}})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertAggregates(ctx, aggRows(scopeA, 5, "other-query", map[string][]string{d: {"7"}})); err != nil {
		t.Fatal(err)
	}
	// The cost sweep and count of the same scope, metric and day see no
	// aggregate; the aggregate sweep of one query leaves the others.
	if got := count(t, s, scopeA, d); rowsOf(got) != 1 {
		t.Errorf("cost rows = %d, want 1: aggregates must not count as cost lines", rowsOf(got))
	}
	if n, err := s.SweepDay(ctx, scopeA, metric, d, 2, store.IDSet{}); err != nil || n != 1 {
		t.Errorf("cost sweep = %d, %v; want 1: the cost line only", n, err)
	}
	upsert(t, s, costs(scopeA, 1, line{id: "c1", date: d, currency: "EUR", cost: "9"}))
	if n, err := s.SweepAggregates(ctx, scopeA, metric, queryKey, []string{d}, 6); err != nil || n != 2 {
		t.Errorf("aggregate sweep of generation 6 = %d, %v; want 2", n, err)
	}
	if got := sumAgg(t, s, scopeA, "other-query", d); got[d+" EUR"].Rows != 1 {
		t.Errorf("the other query's rows: %v, want 1", got)
	}
	if got := rowsOf(count(t, s, scopeA, d)); got != 1 {
		t.Errorf("cost rows after the aggregate sweep = %d, want 1", got)
	}
}

func testAggregateDuplicateID(t *testing.T, s SourceStore) {
	rows := aggRows(scopeA, 1, queryKey, map[string][]string{"2026-07-04": {"1"}})
	rows = append(rows, rows[0])
	if _, err := s.UpsertAggregates(t.Context(), rows); err == nil {
		t.Fatal("UpsertAggregates with one id twice: no error")
	}
}

func testQuantitiesExact(t *testing.T, s SourceStore) {
	d := "2026-07-05"
	docs := costs(scopeA, 1, line{id: "q1", date: d, currency: "", cost: "0"}, line{id: "q2", date: d, currency: "", cost: "0"})
	docs[0].QuantityExact = "0.0416666667"
	docs[1].QuantityExact = "23.9583333333000000000001"
	upsert(t, s, docs)
	got, err := s.SumQuantities(t.Context(), scopeA, metric, []string{d, "2026-07-06"})
	if err != nil {
		t.Fatal(err)
	}
	want := decimal.RequireFromString("24.0000000000000000000001")
	if len(got) != 1 || got[0].Rows != 2 || !got[0].Quantity.Equal(want) {
		t.Fatalf("SumQuantities = %+v, want one day, 2 rows, %s", got, want)
	}
}
