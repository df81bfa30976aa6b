// Package storetest is the conformance suite every store implementation
// passes: the in-memory fake always, Cosmos DB (or its emulator) when one is
// available. A behaviour the handlers rely on belongs here, so that the fake
// cannot drift from the real thing.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/store"
	"github.com/shopspring/decimal"
)

// Store is the behaviour under test; *store.Cosmos and *store.Memory
// implement it.
type Store interface {
	Provision(ctx context.Context) error
	NewCostWriter() *store.CostWriter
	UpsertCosts(ctx context.Context, docs []store.Cost) (store.WriteStats, error)
	ListDay(ctx context.Context, scope, metric, date string) ([]store.CostSummary, error)
	SweepDay(ctx context.Context, scope, metric, date string, gen int64, keep store.IDSet) (int, error)
	CountWindow(ctx context.Context, scope, metric string, dates []string) ([]store.DayTotal, error)
	GetWindow(ctx context.Context, scope, id string) (*store.Window, error)
	CreateWindow(ctx context.Context, w *store.Window) error
	ReplaceWindow(ctx context.Context, w *store.Window) error
	ListWindows(ctx context.Context, scope string) ([]store.Window, error)
	GetPart(ctx context.Context, scope, id string) (*store.Part, error)
	PutPart(ctx context.Context, p *store.Part) error
	PutQuarantine(ctx context.Context, q store.Quarantine) error
	ListQuarantine(ctx context.Context, scope, windowID string) ([]store.Quarantine, error)
	OrchStore
}

// Run runs the suite. newStore returns an empty, provisioned store that no
// other test uses; it is called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"ProvisionIdempotent", testProvisionIdempotent},
		{"UpsertIdempotent", testUpsertIdempotent},
		{"UpsertManyInOnePartition", testUpsertManyInOnePartition},
		{"UpsertDuplicateID", testUpsertDuplicateID},
		{"RestatementAndSweep", testRestatementAndSweep},
		{"OlderGenerationNeverOverwrites", testOlderGenerationNeverOverwrites},
		{"WriterRemembersWhatItWrote", testWriterRemembersWhatItWrote},
		{"LargeBatches", testLargeBatches},
		{"SweepScopeCaseInsensitive", testSweepScopeCaseInsensitive},
		{"ExactTotals", testExactTotals},
		{"WindowLifecycle", testWindowLifecycle},
		{"WindowConcurrentReplace", testWindowConcurrentReplace},
		{"GetWindowMissing", testGetWindowMissing},
		{"PartCheckpoint", testPartCheckpoint},
		{"QuarantineIdempotent", testQuarantineIdempotent},
		{"ListWindows", testListWindows},
	}
	for _, c := range append(cases, orchCases...) {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newStore(t))
		})
	}
}

const (
	scopeA  = "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333"
	scopeB  = "/providers/Microsoft.Billing/billingAccounts/12345678"
	metric  = "ActualCost"
	windowA = "window-a"
)

// line describes one fixture cost line.
type line struct {
	id, date, currency, cost, hash string
}

// costs builds documents for lines of scope, as the parser's records would
// give them to NewCost.
func costs(scope string, gen int64, lines ...line) []store.Cost {
	out := make([]store.Cost, len(lines))
	for i, l := range lines {
		hash := l.hash
		if hash == "" {
			hash = "h-" + l.id + "-" + l.cost
		}
		rec := &costcsv.Record{
			ID:              l.id,
			Occurrence:      1,
			Line:            i + 2,
			ContentHash:     hash,
			Date:            l.date,
			BillingCurrency: l.currency,
			BilledCost:      decimal.RequireFromString(l.cost),
			EffectiveCost:   decimal.RequireFromString(l.cost),
			Quantity:        decimal.NewFromInt(1),
			ResourceID:      "/subscriptions/x/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm" + l.id,
			Tags:            costcsv.NewTags(map[string]string{"env": "prod", "cost-center": "42"}),
			AdditionalInfo:  costcsv.MustObject(map[string]any{"UsageType": "ComputeHR", "VCPUs": float64(2)}),
			Raw:             costcsv.NewRaw([]string{"CostInBillingCurrency", "Date", "Tags"}, []string{l.cost, l.date, `{"env":"prod"}`}),
		}
		out[i] = store.NewCost(rec, scope, metric, windowA, gen, fmt.Sprintf("part-%d.csv", gen))
	}
	return out
}

// spread returns n lines over the given dates and two currencies.
func spread(prefix string, n int, dates ...string) []line {
	out := make([]line, n)
	for i := range out {
		cur := "EUR"
		if i%3 == 0 {
			cur = "USD"
		}
		out[i] = line{
			id:       fmt.Sprintf("%s%04d", prefix, i),
			date:     dates[i%len(dates)],
			currency: cur,
			cost:     fmt.Sprintf("%d.%02d", i, i%100),
		}
	}
	return out
}

// rowsOf sums the rows of totals.
func rowsOf(totals []store.DayTotal) int64 {
	var n int64
	for _, d := range totals {
		n += d.Rows
	}
	return n
}

// rowsByDate sums rows per date.
func rowsByDate(totals []store.DayTotal) map[string]int64 {
	m := map[string]int64{}
	for _, d := range totals {
		m[d.Date] += d.Rows
	}
	return m
}

func upsert(t *testing.T, s Store, docs []store.Cost) store.WriteStats {
	t.Helper()
	st, err := s.UpsertCosts(t.Context(), docs)
	if err != nil {
		t.Fatalf("UpsertCosts(%d docs): %v", len(docs), err)
	}
	if got := st.Written + st.Skipped + st.Stale; got != len(docs) {
		t.Fatalf("UpsertCosts stats %+v account for %d documents, want %d", st, got, len(docs))
	}
	return st
}

func count(t *testing.T, s Store, scope string, dates ...string) []store.DayTotal {
	t.Helper()
	got, err := s.CountWindow(t.Context(), scope, metric, dates)
	if err != nil {
		t.Fatalf("CountWindow: %v", err)
	}
	return got
}

func testProvisionIdempotent(t *testing.T, s Store) {
	for range 2 {
		if err := s.Provision(t.Context()); err != nil {
			t.Fatalf("Provision on a provisioned store: %v", err)
		}
	}
}

func testUpsertIdempotent(t *testing.T, s Store) {
	dates := []string{"2026-01-01", "2026-01-02", "2026-01-03"}
	docs := costs(scopeA, 1, spread("u", 30, dates...)...)

	st := upsert(t, s, docs)
	if st.Written != 30 || st.Skipped != 0 || st.Stale != 0 {
		t.Errorf("first upsert: %+v, want 30 written", st)
	}
	first := count(t, s, scopeA, dates...)

	st = upsert(t, s, docs)
	if st.Written != 0 || st.Skipped != 30 || st.Stale != 0 {
		t.Errorf("second upsert of the same documents: %+v, want 30 skipped", st)
	}
	second := count(t, s, scopeA, dates...)
	if rowsOf(first) != 30 || rowsOf(second) != 30 {
		t.Errorf("rows after first and second upsert: %d and %d, want 30 and 30", rowsOf(first), rowsOf(second))
	}
	if diff := diffTotals(first, second); diff != "" {
		t.Errorf("totals changed by an idempotent upsert (-first +second):\n%s", diff)
	}
}

func testUpsertManyInOnePartition(t *testing.T, s Store) {
	// More ids than one look-up query carries.
	docs := costs(scopeA, 1, spread("m", 1100, "2026-02-01")...)
	if st := upsert(t, s, docs); st.Written != 1100 {
		t.Errorf("first upsert: %+v, want 1100 written", st)
	}
	if st := upsert(t, s, docs); st.Skipped != 1100 {
		t.Errorf("second upsert: %+v, want 1100 skipped", st)
	}
	if got := rowsOf(count(t, s, scopeA, "2026-02-01")); got != 1100 {
		t.Errorf("rows = %d, want 1100", got)
	}
}

func testUpsertDuplicateID(t *testing.T, s Store) {
	docs := costs(scopeA, 1, line{id: "dup", date: "2026-01-01", currency: "EUR", cost: "1"},
		line{id: "dup", date: "2026-01-01", currency: "EUR", cost: "2"})
	if _, err := s.UpsertCosts(t.Context(), docs); err == nil {
		t.Fatal("UpsertCosts with one id twice in a partition: no error; two lines would collapse into one document")
	}
}

// ids returns the set of ids of docs.
func ids(docs []store.Cost) store.IDSet {
	set := store.IDSet{}
	for _, d := range docs {
		set.Add(d.ID)
	}
	return set
}

// listDay returns id → summary of one day of scope.
func listDay(t *testing.T, s Store, scope, date string) map[string]store.CostSummary {
	t.Helper()
	got, err := s.ListDay(t.Context(), scope, metric, date)
	if err != nil {
		t.Fatalf("ListDay: %v", err)
	}
	out := map[string]store.CostSummary{}
	for _, c := range got {
		if _, dup := out[c.ID]; dup {
			t.Fatalf("ListDay returned %s twice", c.ID)
		}
		out[c.ID] = c
	}
	return out
}

// testRestatementAndSweep is a restated report: generation 2 keeps some
// lines, changes one, adds one and drops two. Unchanged lines are not
// written again; the sweep deletes what generation 2 did not report.
func testRestatementAndSweep(t *testing.T, s Store) {
	d1, d2, d3 := "2026-03-01", "2026-03-02", "2026-03-03"
	gen1 := []line{
		{id: "same1", date: d1, currency: "EUR", cost: "1.00"},
		{id: "same2", date: d2, currency: "EUR", cost: "2.00"},
		{id: "changed", date: d1, currency: "EUR", cost: "3.00"},
		{id: "gone1", date: d1, currency: "EUR", cost: "4.00"},
		{id: "gone2", date: d2, currency: "USD", cost: "5.00"},
		{id: "gone3", date: d3, currency: "EUR", cost: "6.00"}, // outside the swept days
	}
	upsert(t, s, costs(scopeA, 1, gen1...))
	// Same ids under another scope must not be touched.
	upsert(t, s, costs(scopeB, 1, gen1...))

	gen2 := []line{
		{id: "same1", date: d1, currency: "EUR", cost: "1.00"},
		{id: "same2", date: d2, currency: "EUR", cost: "2.00"},
		{id: "changed", date: d1, currency: "EUR", cost: "3.50"},
		{id: "new", date: d2, currency: "EUR", cost: "7.00"},
	}
	docs2 := costs(scopeA, 2, gen2...)
	st := upsert(t, s, docs2)
	if st.Written != 2 || st.Skipped != 2 || st.Stale != 0 {
		t.Errorf("upsert of generation 2: %+v, want 2 written (changed, new) and 2 skipped (same content)", st)
	}
	// A resumed generation 2 writes nothing.
	if st := upsert(t, s, docs2); st.Skipped != 4 || st.Written != 0 {
		t.Errorf("upsert of generation 2 again: %+v, want 4 skipped", st)
	}

	keep := ids(docs2)
	deleted := 0
	for _, d := range []string{d1, d2} {
		n, err := s.SweepDay(t.Context(), scopeA, metric, d, 2, keep)
		if err != nil {
			t.Fatalf("SweepDay(%s): %v", d, err)
		}
		deleted += n
	}
	if deleted != 2 {
		t.Errorf("SweepDay deleted %d documents, want 2 (gone1, gone2)", deleted)
	}
	got := count(t, s, scopeA, d1, d2, d3)
	want := []store.DayTotal{
		{Date: d1, Currency: "EUR", Rows: 2, BilledCost: decimal.RequireFromString("4.50")},
		{Date: d2, Currency: "EUR", Rows: 2, BilledCost: decimal.RequireFromString("9.00")},
		{Date: d3, Currency: "EUR", Rows: 1, BilledCost: decimal.RequireFromString("6.00")},
	}
	if diff := diffTotals(want, got); diff != "" {
		t.Errorf("after the sweep (-want +got):\n%s", diff)
	}
	day1 := listDay(t, s, scopeA, d1)
	if c := day1["same1"]; c.Generation != 1 {
		t.Errorf("unchanged line has generation %d, want 1: it must not have been written again", c.Generation)
	}
	if c := day1["changed"]; c.Generation != 2 || c.BilledCostExact != "3.5" {
		t.Errorf("changed line = %+v, want generation 2 and cost 3.5", c)
	}
	if got := rowsOf(count(t, s, scopeB, d1, d2, d3)); got != 6 {
		t.Errorf("rows of the other scope after the sweep = %d, want 6", got)
	}
	// Sweeping again finds nothing.
	if n, err := s.SweepDay(t.Context(), scopeA, metric, d1, 2, keep); err != nil || n != 0 {
		t.Errorf("second SweepDay = %d, %v; want 0, nil", n, err)
	}
}

// testOlderGenerationNeverOverwrites: a late report of generation 2 after
// generation 3 neither overwrites nor sweeps what generation 3 wrote.
func testOlderGenerationNeverOverwrites(t *testing.T, s Store) {
	d := "2026-03-10"
	newer := costs(scopeA, 3, line{id: "x", date: d, currency: "EUR", cost: "10"}, line{id: "y", date: d, currency: "EUR", cost: "20"})
	upsert(t, s, newer)
	older := costs(scopeA, 2, line{id: "x", date: d, currency: "EUR", cost: "99"}, line{id: "z", date: d, currency: "EUR", cost: "1"})
	st := upsert(t, s, older)
	if st.Stale != 1 || st.Written != 1 {
		t.Errorf("late generation 2: %+v, want x stale and z written", st)
	}
	n, err := s.SweepDay(t.Context(), scopeA, metric, d, 2, ids(older))
	if err != nil || n != 0 {
		t.Errorf("SweepDay of generation 2 = %d, %v; want 0: generation 3's y must stay", n, err)
	}
	got := listDay(t, s, scopeA, d)
	if got["x"].BilledCostExact != "10" || got["x"].Generation != 3 {
		t.Errorf("x = %+v, want generation 3's cost 10", got["x"])
	}
	// Generation 3's sweep removes z, which its report did not have.
	if n, err := s.SweepDay(t.Context(), scopeA, metric, d, 3, ids(newer)); err != nil || n != 1 {
		t.Errorf("SweepDay of generation 3 = %d, %v; want 1 (z)", n, err)
	}
	if got := listDay(t, s, scopeA, d); len(got) != 2 {
		t.Errorf("after generation 3's sweep: %d documents, want 2", len(got))
	}
}

// testWriterRemembersWhatItWrote: one writer, many batches of a part, a
// batch sent again (a retried flush) writes nothing; a new writer of the
// same generation (a resumed invocation) writes nothing either.
func testWriterRemembersWhatItWrote(t *testing.T, s Store) {
	docs := costs(scopeA, 5, spread("r", 250, "2026-03-20", "2026-03-21")...)
	w := s.NewCostWriter()
	for lo := 0; lo < len(docs); lo += 100 {
		st, err := w.Write(t.Context(), docs[lo:min(lo+100, len(docs))])
		if err != nil || st.Written != min(100, len(docs)-lo) {
			t.Fatalf("batch at %d: %+v, %v", lo, st, err)
		}
	}
	if st, err := w.Write(t.Context(), docs[:100]); err != nil || st.Skipped != 100 {
		t.Errorf("the same writer given a batch again: %+v, %v; want 100 skipped", st, err)
	}
	if st, err := s.NewCostWriter().Write(t.Context(), docs); err != nil || st.Skipped != 250 {
		t.Errorf("a new writer of the same generation: %+v, %v; want 250 skipped", st, err)
	}
	if got := rowsOf(count(t, s, scopeA, "2026-03-20", "2026-03-21")); got != 250 {
		t.Errorf("rows = %d, want 250", got)
	}
}

// testLargeBatches writes more documents of one partition than one batch
// holds, and documents big enough that the batch byte limit splits them.
func testLargeBatches(t *testing.T, s Store) {
	docs := costs(scopeA, 1, spread("big", 340, "2026-03-25")...)
	pad := strings.Repeat("x", 9000)
	for i := range docs {
		docs[i].Raw["Padding"] = pad
	}
	st := upsert(t, s, docs)
	if st.Written != 340 {
		t.Errorf("stats %+v, want 340 written", st)
	}
	got := listDay(t, s, scopeA, "2026-03-25")
	if len(got) != 340 {
		t.Errorf("stored %d documents, want 340", len(got))
	}
}

func testSweepScopeCaseInsensitive(t *testing.T, s Store) {
	upper := "/SUBSCRIPTIONS/0B1F6471-1BF0-4DDA-AEC3-111122223333"
	upsert(t, s, costs(upper, 1, line{id: "x", date: "2026-04-01", currency: "EUR", cost: "1"}))
	if got := rowsOf(count(t, s, scopeA, "2026-04-01")); got != 1 {
		t.Errorf("rows counted with the lower-case scope = %d, want 1", got)
	}
	n, err := s.SweepDay(t.Context(), scopeA, metric, "2026-04-01", 2, store.IDSet{})
	if err != nil || n != 1 {
		t.Errorf("SweepDay with the lower-case scope = %d, %v; want 1, nil", n, err)
	}
}

func testExactTotals(t *testing.T, s Store) {
	date := "2026-05-01"
	amounts := []string{
		"1234567890.123456789012345678", // 28 significant digits
		"0.1000000000000000000000000001",
		"-0.0000000000000000000000000001",
		"-1234567890.123456789012345677",
		"0.1", "0.2", "-0.3",
		"99999999999999999999.99999999",
	}
	var lines []line
	want := decimal.Zero
	var float float64
	for i, a := range amounts {
		lines = append(lines, line{id: fmt.Sprintf("e%d", i), date: date, currency: "JPY", cost: a})
		want = want.Add(decimal.RequireFromString(a))
		float += decimal.RequireFromString(a).InexactFloat64()
	}
	upsert(t, s, costs(scopeA, 1, lines...))
	got := count(t, s, scopeA, date)
	if len(got) != 1 {
		t.Fatalf("CountWindow = %+v, want one total", got)
	}
	if !got[0].BilledCost.Equal(want) || got[0].Rows != int64(len(amounts)) {
		t.Errorf("total = %s over %d rows, want %s over %d", got[0].BilledCost, got[0].Rows, want, len(amounts))
	}
	if decimal.NewFromFloat(float).Equal(want) {
		t.Errorf("fixture too easy: float64 arithmetic also gives %s", want)
	}
}

func newWindow(scope, from, to string) *store.Window {
	return &store.Window{
		Scope:      scope,
		Metric:     metric,
		From:       from,
		To:         to,
		State:      store.StateQueued,
		Generation: 1,
		// A part of generation 1 is in.
		PartsGeneration: 1,
		PartsTotal:      3,
		PartsIn:         []int{2},
		Totals:          []store.CurrencyTotal{{Currency: "EUR", BilledCost: decimal.RequireFromString("-12.3456789012345678901234567")}},
		Days:            []store.DayTotal{{Date: from, Currency: "EUR", Rows: 2, BilledCost: decimal.RequireFromString("-12.3456789012345678901234567")}},
	}
}

func testWindowLifecycle(t *testing.T, s Store) {
	ctx := t.Context()
	w := newWindow(scopeA, "2026-06-01", "2026-06-30")
	if err := s.CreateWindow(ctx, w); err != nil {
		t.Fatalf("CreateWindow: %v", err)
	}
	if w.ETag == "" {
		t.Error("CreateWindow set no ETag")
	}
	if want := store.WindowID(scopeA, metric, "2026-06-01", "2026-06-30"); w.ID != want {
		t.Errorf("window id = %q, want %q", w.ID, want)
	}

	dup := newWindow(scopeA, "2026-06-01", "2026-06-30")
	if err := s.CreateWindow(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateWindow of an existing window: %v, want ErrConflict", err)
	}

	got, err := s.GetWindow(ctx, scopeA, w.ID)
	if err != nil {
		t.Fatalf("GetWindow: %v", err)
	}
	if diff := diffWindow(w, got); diff != "" {
		t.Errorf("GetWindow after CreateWindow (-want +got):\n%s", diff)
	}

	stale := *got
	got.State = store.StateRequested
	got.OperationURL = "https://management.azure.com/operation/1"
	got.Attempts = 1
	for i := range 12 {
		got.AddError(fmt.Sprintf("error %d", i))
	}
	if err := s.ReplaceWindow(ctx, got); err != nil {
		t.Fatalf("ReplaceWindow with the current ETag: %v", err)
	}
	if got.ETag == stale.ETag {
		t.Error("ReplaceWindow left the ETag unchanged")
	}
	if len(got.Errors) != store.MaxWindowErrors || got.Errors[0] != "error 2" {
		t.Errorf("errors = %q, want the latest %d", got.Errors, store.MaxWindowErrors)
	}

	stale.State = store.StateFailed
	if err := s.ReplaceWindow(ctx, &stale); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("ReplaceWindow with a stale ETag: %v, want ErrPrecondition", err)
	}

	again, err := s.GetWindow(ctx, scopeA, w.ID)
	if err != nil {
		t.Fatalf("GetWindow: %v", err)
	}
	if diff := diffWindow(got, again); diff != "" {
		t.Errorf("GetWindow after ReplaceWindow (-want +got):\n%s", diff)
	}

	// Scope in another case reads the same window.
	if _, err := s.GetWindow(ctx, "/SUBSCRIPTIONS/0B1F6471-1BF0-4DDA-AEC3-111122223333", w.ID); err != nil {
		t.Errorf("GetWindow with an upper-case scope: %v", err)
	}

	missing := newWindow(scopeA, "2020-01-01", "2020-01-31")
	missing.ETag = got.ETag
	if err := s.ReplaceWindow(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReplaceWindow of a missing window: %v, want ErrNotFound", err)
	}
}

func testWindowConcurrentReplace(t *testing.T, s Store) {
	ctx := t.Context()
	w := newWindow(scopeA, "2026-07-01", "2026-07-31")
	if err := s.CreateWindow(ctx, w); err != nil {
		t.Fatalf("CreateWindow: %v", err)
	}
	const writers = 4
	for round := range 5 {
		base, err := s.GetWindow(ctx, scopeA, w.ID)
		if err != nil {
			t.Fatalf("GetWindow: %v", err)
		}
		var (
			wg     sync.WaitGroup
			errs   = make([]error, writers)
			copies = make([]store.Window, writers)
		)
		for i := range writers {
			copies[i] = *base
			copies[i].Attempts = round*writers + i
			wg.Go(func() { errs[i] = s.ReplaceWindow(ctx, &copies[i]) })
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both replaced the window with the same ETag", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrPrecondition):
				t.Fatalf("round %d: writer %d: %v, want nil or ErrPrecondition", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		got, err := s.GetWindow(ctx, scopeA, w.ID)
		if err != nil {
			t.Fatalf("GetWindow: %v", err)
		}
		if got.Attempts != copies[winner].Attempts || got.ETag != copies[winner].ETag {
			t.Errorf("round %d: stored attempts %d etag %s, want the winner's %d %s",
				round, got.Attempts, got.ETag, copies[winner].Attempts, copies[winner].ETag)
		}
	}
}

func testGetWindowMissing(t *testing.T, s Store) {
	_, err := s.GetWindow(t.Context(), scopeA, store.WindowID(scopeA, metric, "1999-01-01", "1999-01-31"))
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetWindow of a missing window: %v, want ErrNotFound", err)
	}
	// A quarantine entry is no window.
	q := store.Quarantine{Scope: scopeA, WindowID: "w", File: "f.csv", Line: 1, Reason: "r"}
	if err := s.PutQuarantine(t.Context(), q); err != nil {
		t.Fatalf("PutQuarantine: %v", err)
	}
	if _, err := s.GetWindow(t.Context(), scopeA, store.QuarantineID("w", "f.csv", 1)); err == nil {
		t.Error("GetWindow of a quarantine entry: no error")
	}
}

func testPartCheckpoint(t *testing.T, s Store) {
	ctx := t.Context()
	// An invoice section scope: ids built from it and from a report file
	// name would pass Cosmos DB's 255-character limit.
	scope := "/providers/Microsoft.Billing/billingAccounts/5e98e158-1111-2222-3333-444455556666:a1b2c3d4-5555-6666-7777-888899990000_2019-05-31/billingProfiles/AB12-CD34-EF5-GH6/invoiceSections/XYZ1-ABC2-PQR3-STU4"
	wid := store.WindowID(scope, metric, "2026-09-01", "2026-09-30")
	p := &store.Part{Scope: scope, WindowID: wid, Generation: 1760000000000, Index: 7, Blob: strings.Repeat("b", 200) + "/part_00007.csv"}
	for _, id := range []string{wid, store.PartID(wid, p.Generation, p.Index), store.QuarantineID(wid, p.Blob, 123456)} {
		if len(id) > 255 {
			t.Errorf("id %q is %d characters, Cosmos DB accepts 255", id, len(id))
		}
	}
	if err := s.PutPart(ctx, p); err != nil {
		t.Fatalf("PutPart (create): %v", err)
	}
	if p.ETag == "" || p.ID != store.PartID(wid, p.Generation, p.Index) {
		t.Errorf("PutPart set etag %q and id %q", p.ETag, p.ID)
	}
	dup := &store.Part{Scope: scope, WindowID: wid, Generation: p.Generation, Index: 7}
	if err := s.PutPart(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Errorf("PutPart creating an existing part: %v, want ErrConflict", err)
	}
	got, err := s.GetPart(ctx, scope, p.ID)
	if err != nil {
		t.Fatalf("GetPart: %v", err)
	}
	if got.Line != 0 || got.Done || got.Blob != p.Blob || got.ETag != p.ETag {
		t.Errorf("GetPart = %+v, want the created checkpoint", got)
	}
	stale := *got
	got.Line = 5001
	if err := s.PutPart(ctx, got); err != nil {
		t.Fatalf("PutPart (replace): %v", err)
	}
	stale.Line = 2001
	if err := s.PutPart(ctx, &stale); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("PutPart with a stale etag: %v, want ErrPrecondition: a checkpoint must never go back", err)
	}
	if again, err := s.GetPart(ctx, scope, p.ID); err != nil || again.Line != 5001 {
		t.Errorf("GetPart after the replace = %+v, %v; want line 5001", again, err)
	}
	if _, err := s.GetPart(ctx, scope, store.PartID(wid, p.Generation, 8)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetPart of a missing part: %v, want ErrNotFound", err)
	}
	// A part is no window, and a window no part.
	if _, err := s.GetWindow(ctx, scope, p.ID); err == nil {
		t.Error("GetWindow of a part checkpoint: no error")
	}
	w := newWindow(scope, "2026-09-01", "2026-09-30")
	if err := s.CreateWindow(ctx, w); err != nil {
		t.Fatalf("CreateWindow with a long scope: %v", err)
	}
	if _, err := s.GetPart(ctx, scope, w.ID); err == nil {
		t.Error("GetPart of a window: no error")
	}
}

func testQuarantineIdempotent(t *testing.T, s Store) {
	ctx := t.Context()
	wid := store.WindowID(scopeA, metric, "2026-08-01", "2026-08-31")
	file := "cost-reports/sub/2026-08/part_1.csv"
	q := store.Quarantine{Scope: scopeA, WindowID: wid, File: file, Line: 17, Column: "CostInBillingCurrency", Reason: "not a number: \"1,2\"", Generation: 1}
	for range 2 {
		if err := s.PutQuarantine(ctx, q); err != nil {
			t.Fatalf("PutQuarantine: %v", err)
		}
	}
	q.Reason, q.Generation = "not a number: \"1,3\"", 2
	if err := s.PutQuarantine(ctx, q); err != nil {
		t.Fatalf("PutQuarantine: %v", err)
	}
	other := q
	other.Line = 18
	if err := s.PutQuarantine(ctx, other); err != nil {
		t.Fatalf("PutQuarantine: %v", err)
	}
	got, err := s.ListQuarantine(ctx, scopeA, wid)
	if err != nil {
		t.Fatalf("ListQuarantine: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("ListQuarantine = %d entries, want 2: %+v", len(got), got)
	}
	want := q
	want.ID, want.PK, want.Kind, want.Scope = store.QuarantineID(wid, file, 17), store.LedgerPK(scopeA), store.KindQuarantine, store.LedgerPK(scopeA)
	if got[0] != want {
		t.Errorf("entry of line 17 = %+v, want %+v", got[0], want)
	}
	if got[1].Line != 18 {
		t.Errorf("second entry has line %d, want 18", got[1].Line)
	}
	if ws, err := s.ListWindows(ctx, scopeA); err != nil || len(ws) != 0 {
		t.Errorf("ListWindows with only quarantine entries = %d, %v; want none", len(ws), err)
	}
}

func testListWindows(t *testing.T, s Store) {
	ctx := t.Context()
	if ws, err := s.ListWindows(ctx, ""); err != nil || len(ws) != 0 {
		t.Fatalf("ListWindows of an empty store = %v, %v; want none", ws, err)
	}
	for _, w := range []*store.Window{
		newWindow(scopeB, "2026-01-01", "2026-01-31"),
		newWindow(scopeA, "2026-02-01", "2026-02-28"),
		newWindow(scopeA, "2026-01-01", "2026-01-31"),
	} {
		if err := s.CreateWindow(ctx, w); err != nil {
			t.Fatalf("CreateWindow: %v", err)
		}
	}
	if err := s.PutQuarantine(ctx, store.Quarantine{Scope: scopeA, WindowID: "w", File: "f", Line: 2, Reason: "r"}); err != nil {
		t.Fatalf("PutQuarantine: %v", err)
	}

	a, err := s.ListWindows(ctx, "/Subscriptions/0B1F6471-1BF0-4DDA-AEC3-111122223333")
	if err != nil {
		t.Fatalf("ListWindows(scope A): %v", err)
	}
	if got := windowKeys(a); fmt.Sprint(got) != fmt.Sprint([]string{"2026-01-01", "2026-02-01"}) {
		t.Errorf("ListWindows(scope A) = %v, want the two windows of A in order", got)
	}
	for _, w := range a {
		if w.ETag == "" {
			t.Errorf("window %s listed without ETag", w.ID)
		}
	}
	// A listed window can be replaced with its ETag.
	a[0].State = store.StateComplete
	if err := s.ReplaceWindow(ctx, &a[0]); err != nil {
		t.Errorf("ReplaceWindow of a listed window: %v", err)
	}

	all, err := s.ListWindows(ctx, "")
	if err != nil {
		t.Fatalf("ListWindows(all): %v", err)
	}
	if len(all) != 3 || all[0].Scope != store.LedgerPK(scopeB) || all[1].State != store.StateComplete {
		t.Errorf("ListWindows(all) = %v (scopes %v), want 3 windows ordered by scope with A's first one complete", windowKeys(all), scopes(all))
	}
}

func windowKeys(ws []store.Window) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.From)
	}
	return out
}

func scopes(ws []store.Window) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Scope)
	}
	return out
}
