// Command reconcile is `make reconcile`: it ingests one simulated month of
// one scope through each source costsync reads — Cost Details, native
// exports (CSV and Parquet), Consumption usage details (the pay-as-you-go
// fallback when Cost Details answers 422), Commerce usage aggregates and
// the Query API — on the local stack, one after the other, and prints one
// line per source:
//
//	source NAME: days=N totals=exact
//
// or totals=MISMATCH with the differences. N counts the days compared with
// costsim's ground truth: rows and exact billed cost per day for the cost
// lines, rows and exact quantity for usage aggregates, the exact daily sum
// of the aggregated rows for the Query API. It exits non-zero when any
// source does not reconcile.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/costsync/costsync/handlers"
	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/internal/pipeline"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// The simulated scopes: an EA subscription, and a pay-as-you-go one
// (costsim's "9a96" rule) that Cost Details refuses with 422.
const (
	eaScope   = "subscriptions/6a1f3c2e-9b7d-4e21-8c55-0f3e2d1a9b77"
	paygScope = "subscriptions/3f2a9c1e-7b4d-4e21-9a96-0c3e2d1a9b70"
)

// run is one reconcile run on a started stack.
type run struct {
	p        *pipeline.Pipeline
	month    window.Window // scope and metric set per source
	timeout  time.Duration
	progress io.Writer
}

// result is what a source ended with.
type result struct {
	days  int
	diffs []string
	err   error
}

func (r result) line(name string) string {
	totals := "exact"
	switch {
	case r.err != nil:
		totals = "MISMATCH (" + r.err.Error() + ")"
	case len(r.diffs) > 0:
		totals = "MISMATCH " + strings.Join(r.diffs, "; ")
	case r.days == 0:
		totals = "MISMATCH (no day compared)"
	}
	return fmt.Sprintf("source %s: days=%d totals=%s", name, r.days, totals)
}

func (r result) ok() bool { return r.err == nil && len(r.diffs) == 0 && r.days > 0 }

// source is one way costs arrive.
type source struct {
	name string
	run  func(ctx context.Context, r *run) result
}

var sources = []source{
	{"cost-details", costDetails},
	{"export-csv", exportRun("csv", "Csv", "None")},
	{"export-parquet", exportRun("parquet", "Parquet", "Snappy")},
	{"usage-details", usageDetails},
	{"usage-aggregates", usageAggregates},
	{"query", query},
}

func main() {
	dir := flag.String("dir", ".stack/reconcile", "state directory of the local stack (certificate, component logs)")
	rows := flag.Int("rows-per-day", 120, "simulated cost lines per scope and day")
	timeout := flag.Duration("timeout", 4*time.Minute, "how long one source may take")
	only := flag.String("run", "", "comma-separated sources to run (default: all)")
	verbose := flag.Bool("v", false, "print progress")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := reconcile(ctx, *dir, *rows, *timeout, *only, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "reconcile:", err)
		fmt.Fprintf(os.Stderr, "component logs: %s/logs\n", *dir)
		os.Exit(1)
	}
}

func reconcile(ctx context.Context, dir string, rows int, timeout time.Duration, only string, verbose bool) error {
	selected := sources
	if only != "" {
		selected = nil
		for _, n := range strings.Split(only, ",") {
			i := slices.IndexFunc(sources, func(s source) bool { return s.name == strings.TrimSpace(n) })
			if i < 0 {
				return fmt.Errorf("unknown source %q", n)
			}
			selected = append(selected, sources[i])
		}
	}
	var progress io.Writer = io.Discard
	if verbose {
		progress = os.Stderr
	}
	// The last full month, seen from the tenth of this one: closed, and all
	// of its usage reported.
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), 10, 0, 0, 0, 0, time.UTC)
	first := time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	month := window.Window{From: first.Format(window.DateLayout), To: first.AddDate(0, 1, -1).Format(window.DateLayout)}

	scopes := []string{eaScope, paygScope}
	env := pipeline.Env(pipeline.Options{Scopes: scopes, Days: 1})
	env["COSTSYNC_TODAY"] = today.Format(window.DateLayout)
	st, err := localstack.Start(ctx, localstack.Options{
		Dir:        dir,
		Components: localstack.Components{Storage: true, Cosmos: true, Costsim: true, Devhost: true},
		CostsimArgs: []string{"-seed", "7", "-today", today.Format(window.DateLayout), "-rows-per-day", fmt.Sprint(rows),
			"-blob-rows", "1500", "-page-rows", "500", "-retry-after", "1", "-polls", "1"},
		Env: env,
		Log: progress,
	})
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := pipeline.StartPipeline(ctx, pipeline.Options{Stack: st, Progress: progress})
	if err != nil {
		return err
	}
	r := &run{p: p, month: month, timeout: timeout, progress: progress}
	fmt.Printf("reconcile: %s..%s through %d sources\n", month.From, month.To, len(selected))
	failed := 0
	for _, s := range selected {
		res := s.run(ctx, r)
		fmt.Println(res.line(s.name))
		if !res.ok() {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d sources do not reconcile", failed, len(selected))
	}
	return nil
}

// ingest sends msg and waits until the ledger window lw of its run is
// complete.
func (r *run) ingest(ctx context.Context, msg any, lw window.Window) (*store.Window, error) {
	return r.ingestBy(ctx, func() error { return r.p.Send(ctx, msg) }, lw)
}

// ingestBy starts a run with start and waits until the ledger window lw of
// the run is complete.
func (r *run) ingestBy(ctx context.Context, start func() error, lw window.Window) (*store.Window, error) {
	scopes := []string{lw.Scope}
	base, err := r.p.Baseline(ctx, scopes)
	if err != nil {
		return nil, err
	}
	if err := start(); err != nil {
		return nil, err
	}
	ws, err := r.p.Wait(ctx, scopes, 1, base, r.timeout)
	if err != nil {
		return nil, err
	}
	id := store.WindowID(lw.Scope, lw.Metric, lw.From, lw.To)
	for _, w := range ws {
		if w.ID != id {
			continue
		}
		if w.State != store.StateComplete {
			return nil, fmt.Errorf("window %s %s: %s", lw.Metric, w.State, strings.Join(w.Errors, "; "))
		}
		return &w, nil
	}
	return nil, fmt.Errorf("window %s finished another window than %s", lw.Metric, id)
}

// costMessage is a Cost Details window message, as PlanWindows and
// IngestHttp write them.
func costMessage(w window.Window) string {
	return fmt.Sprintf(`{"v":1,"window":{"scope":%q,"metric":%q,"from":%q,"to":%q},"step":"request","attempt":0}`, w.Scope, w.Metric, w.From, w.To)
}

// compareLines compares the cost documents of a scope's month with the truth.
func (r *run) compareLines(ctx context.Context, scope string) result {
	got, err := r.p.Compare(ctx, []string{scope}, "ActualCost", r.month.Days())
	if err != nil {
		return result{err: err}
	}
	res := result{}
	days := map[string]bool{}
	for _, d := range got {
		days[d.Date] = true
		if !d.Matches() {
			res.diffs = append(res.diffs, fmt.Sprintf("%s %s rows %d/%d cost %s", d.Date, d.Currency, d.Rows, d.SourceRows, d.BilledCost.Sub(d.SourceCost)))
		}
	}
	res.days = len(days)
	return res
}

func costDetails(ctx context.Context, r *run) result {
	w := r.month
	w.Scope, w.Metric = eaScope, "ActualCost"
	if _, err := r.ingest(ctx, rawMessage(costMessage(w)), w); err != nil {
		return result{err: err}
	}
	return r.compareLines(ctx, eaScope)
}

// usageDetails asks Cost Details for the pay-as-you-go scope: its 422 moves
// the window to usage details by itself.
func usageDetails(ctx context.Context, r *run) result {
	w := r.month
	w.Scope, w.Metric = paygScope, "ActualCost"
	wd, err := r.ingest(ctx, rawMessage(costMessage(w)), w)
	if err != nil {
		return result{err: err}
	}
	if !strings.Contains(strings.Join(wd.Errors, " "), "usage details instead") {
		return result{err: errors.New("the window did not go through the 422 fallback")}
	}
	return r.compareLines(ctx, paygScope)
}

func usageAggregates(ctx context.Context, r *run) result {
	req := handlers.SourceRequest{Source: landing.SourceUsageAggregates, Window: r.month}
	req.Window.Scope, req.Window.Metric = eaScope, "Usage"
	lw, msg, err := sourceMessage(req)
	if err != nil {
		return result{err: err}
	}
	if _, err := r.ingest(ctx, msg, lw); err != nil {
		return result{err: err}
	}
	stored, err := r.p.Store.SumQuantities(ctx, eaScope, lw.Metric, r.month.Days())
	if err != nil {
		return result{err: err}
	}
	truth, err := r.p.UsageTruth(ctx, eaScope, r.month.From, r.month.To)
	if err != nil {
		return result{err: err}
	}
	got := map[string]store.QuantityTotal{}
	for _, q := range stored {
		got[q.Date] = q
	}
	res := result{days: len(truth)}
	for _, t := range truth {
		g := got[t.Date]
		if g.Rows != t.Rows || !g.Quantity.Equal(t.Quantity) {
			res.diffs = append(res.diffs, fmt.Sprintf("%s rows %d/%d quantity %s", t.Date, g.Rows, t.Rows, g.Quantity.Sub(t.Quantity)))
		}
		delete(got, t.Date)
	}
	for d, g := range got {
		res.diffs = append(res.diffs, fmt.Sprintf("%s: %d rows not in the source", d, g.Rows))
	}
	return res
}

func query(ctx context.Context, r *run) result {
	req := handlers.SourceRequest{Source: landing.SourceQuery, Window: r.month}
	req.Window.Scope, req.Window.Metric = eaScope, "ActualCost"
	lw, msg, err := sourceMessage(req)
	if err != nil {
		return result{err: err}
	}
	if _, err := r.ingest(ctx, msg, lw); err != nil {
		return result{err: err}
	}
	key := lw.Metric[strings.LastIndexByte(lw.Metric, ':')+1:]
	stored, err := r.p.Store.SumAggregates(ctx, eaScope, "ActualCost", key, r.month.Days(), "Cost")
	if err != nil {
		return result{err: err}
	}
	truth, err := r.p.Truth(ctx, eaScope, "ActualCost", r.month.From, r.month.To)
	if err != nil {
		return result{err: err}
	}
	got := map[string]store.AggregateTotal{}
	for _, a := range stored {
		got[a.Date+" "+a.Currency] = a
	}
	res := result{days: len(truth)}
	for _, t := range truth {
		k := t.Date + " " + t.Currency
		if g := got[k]; !g.Sum.Equal(t.BilledCost) {
			res.diffs = append(res.diffs, fmt.Sprintf("%s cost %s", k, g.Sum.Sub(t.BilledCost)))
		}
		delete(got, k)
	}
	for k, g := range got {
		res.diffs = append(res.diffs, fmt.Sprintf("%s: %d rows not in the source", k, g.Rows))
	}
	return res
}

// sourceMessage is a source request's message and ledger window.
func sourceMessage(req handlers.SourceRequest) (window.Window, any, error) {
	msg, err := handlers.NewSourceMessage(req)
	if err != nil {
		return window.Window{}, nil, err
	}
	lw, err := handlers.LedgerWindow(req)
	return lw, msg, err
}

// rawMessage is a message already in JSON.
type rawMessage string

// MarshalJSON returns the message.
func (m rawMessage) MarshalJSON() ([]byte, error) { return []byte(m), nil }
