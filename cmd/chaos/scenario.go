package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/costsync/costsync/internal/pipeline"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// Scenario is one fault scenario. Scenarios register themselves by
// appending to scenarios in an init function, one file per area
// (costapi.go: the Cost Management faults; store.go: the store's).
type Scenario struct {
	Name  string
	About string
	// Days are the trailing days planned for every default scope (default 3).
	Days int
	// CostsimArgs are added to the defaults (seed, rows, retry-after, polls),
	// for example -faults '{"throttleRate":0.3}'.
	CostsimArgs []string
	// Scopes are the scopes planned (default pipeline.DefaultScopes).
	Scopes []string
	// Env holds extra settings for the handler, e.g. COSTSYNC_INGEST_BUDGET.
	Env map[string]string
	// Run drives the scenario on a started, provisioned pipeline. Nil means
	// [PlanAndWait]: fire the timer once and wait for every window.
	Run func(ctx context.Context, p *pipeline.Pipeline, o pipeline.Options) ([]store.Window, error)
	// Range, when set, is the days the scenario ingests (instead of the
	// trailing Days), in windows of at most a calendar month per scope.
	Range func(today time.Time) (from, to time.Time)
}

var scenarios []Scenario

// Result is what a scenario ended with.
type Result struct {
	Planned, Complete int
	Docs, Expected    int64
	// Diff lists the scope-days whose rows or exact totals differ.
	Diff []string
	Err  error
}

// OK tells whether every window completed and every total is exact.
func (r Result) OK() bool {
	return r.Err == nil && r.Planned > 0 && r.Complete == r.Planned && len(r.Diff) == 0 && r.Docs == r.Expected
}

// Line is the scenario's summary line.
func (r Result) Line(name string) string {
	totals := "exact"
	if len(r.Diff) > 0 || r.Err != nil || r.Planned == 0 {
		totals = "MISMATCH"
		if len(r.Diff) > 0 {
			totals += " " + fmt.Sprint(r.Diff)
		}
	}
	return fmt.Sprintf("scenario %s: windows=%d/%d docs=%d expected=%d totals=%s", name, r.Complete, r.Planned, r.Docs, r.Expected, totals)
}

type runOptions struct {
	dir     string
	timeout time.Duration
	verbose bool
}

func (o runOptions) logDir(name string) string { return filepath.Join(o.dir, name, "logs") }

// PlanAndWait fires PlanWindows once and waits for every planned window.
func PlanAndWait(ctx context.Context, p *pipeline.Pipeline, o pipeline.Options) ([]store.Window, error) {
	base, err := p.Baseline(ctx, o.Scopes)
	if err != nil {
		return nil, err
	}
	if err := p.FirePlan(ctx); err != nil {
		return nil, err
	}
	return p.Wait(ctx, o.Scopes, len(o.Scopes)*o.Days, base, o.Timeout)
}

// runScenario starts a fresh local stack for s, runs it and compares Cosmos
// with costsim's ground truth for the planned days.
func runScenario(ctx context.Context, s Scenario, ro runOptions) (Result, error) {
	days := s.Days
	if days == 0 {
		days = 3
	}
	var progress io.Writer = io.Discard
	if ro.verbose {
		progress = os.Stderr
	}
	dir := filepath.Join(ro.dir, s.Name)
	if err := os.RemoveAll(dir); err != nil {
		return Result{}, err
	}
	scopes := pipeline.DefaultScopes
	if len(s.Scopes) > 0 {
		scopes = s.Scopes
	}
	o := pipeline.Options{
		Scopes:      scopes,
		Env:         s.Env,
		Days:        days,
		Timeout:     ro.timeout,
		Progress:    progress,
		StackDir:    dir,
		CostsimArgs: append([]string{"-seed", "11", "-rows-per-day", "150", "-blob-rows", "200", "-retry-after", "1", "-polls", "2"}, s.CostsimArgs...),
	}
	dates := window.LastDays(time.Now().UTC(), days)
	planned := len(o.Scopes) * days
	if s.Range != nil {
		from, to := s.Range(time.Now().UTC())
		dates = window.Window{From: from.Format(window.DateLayout), To: to.Format(window.DateLayout)}.Days()
		planned = len(o.Scopes) * len(window.Split("", "", from, to))
	}
	p, err := pipeline.StartPipeline(ctx, o)
	if err != nil {
		return Result{Err: err}, err
	}
	defer p.Stack.Close()
	run := s.Run
	if run == nil {
		run = PlanAndWait
	}
	r := Result{Planned: planned}
	ws, err := run(ctx, p, o)
	for _, w := range ws {
		if w.State == store.StateComplete {
			r.Complete++
		}
	}
	if err != nil {
		r.Err = err
		return r, err
	}
	got, err := p.Compare(ctx, o.Scopes, "ActualCost", dates)
	if err != nil {
		r.Err = err
		return r, err
	}
	for _, d := range got {
		r.Docs += d.Rows
		r.Expected += d.SourceRows
		if !d.Matches() {
			r.Diff = append(r.Diff, fmt.Sprintf("%s %s %s rows %d/%d cost %s", d.Scope, d.Date, d.Currency, d.Rows, d.SourceRows, d.BilledCost.Sub(d.SourceCost).String()))
		}
	}
	return r, nil
}
