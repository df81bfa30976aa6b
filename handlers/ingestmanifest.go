package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/store"
)

// batchSize is how many documents go to the store at once: large enough to
// keep the writer's concurrency busy, small enough to bound memory.
const batchSize = 500

// ingestManifest is the blob trigger on cost-manifests/{name}: it streams the
// manifest's parts from our storage, parses them and upserts the records
// with deterministic ids; then it sweeps the rows of older generations,
// reconciles the documents against the source totals and marks the window
// complete. Running it again leaves the same state.
func (s *Server) ingestManifest(ctx context.Context, c *call) (*outcome, error) {
	b, err := c.req.BlobTrigger("manifest", "name")
	if err != nil {
		return nil, permanent(err)
	}
	c.note("blob", b.Name)
	m, err := landing.DecodeManifest(b.Content)
	if err != nil {
		return nil, permanent(fmt.Errorf("manifest %s: %w", b.Name, err))
	}
	if m.Source == landing.SourceQuery {
		return s.ingestQuery(ctx, c, m) // ingestsources.go
	}
	w := m.Window
	c.log = c.log.With("scope", w.Scope, "window", w.From+".."+w.To, "metric", w.Metric, "generation", m.Generation)
	wd, err := s.loadWindow(ctx, w)
	if err != nil {
		return nil, err
	}
	switch {
	case wd.Generation > m.Generation:
		// A newer report was requested after this one: never let an older
		// report overwrite it.
		c.note("outcome_detail", "stale manifest refused", "ledger_generation", wd.Generation)
		return &outcome{}, nil
	case wd.Generation == m.Generation && wd.State == store.StateComplete:
		c.note("outcome_detail", "already complete")
		return &outcome{}, nil
	}
	if err := s.updateWindow(ctx, wd, func(x *store.Window) {
		x.State, x.Generation, x.PartsTotal = store.StateIngesting, max(x.Generation, m.Generation), len(m.Parts)
	}); err != nil {
		return nil, err
	}

	var totals costcsv.Totals
	days := map[string]bool{}
	for _, d := range w.Days() {
		days[d] = true
	}
	var stats store.WriteStats
	quarantined := 0
	for i, p := range m.Parts {
		ps, q, err := s.ingestPart(ctx, m, i, p, &totals, days)
		stats.Add(ps)
		quarantined += q
		if err != nil {
			if !isRetryable(err) {
				return s.fail(ctx, wd, err)
			}
			return nil, err
		}
	}
	dayList := make([]string, 0, len(days))
	for d := range days {
		dayList = append(dayList, d)
	}
	slices.Sort(dayList)
	deleted, err := s.d.Store.SweepWindow(ctx, w.Scope, w.Metric, dayList, m.Generation)
	if err != nil {
		return nil, retryable(fmt.Errorf("sweep older generations: %w", err))
	}
	stored, err := s.d.Store.CountWindow(ctx, w.Scope, w.Metric, dayList)
	if err != nil {
		return nil, retryable(fmt.Errorf("count stored documents: %w", err))
	}
	source := toStoreDays(totals.ByDayCurrency())
	c.note("rows", totals.Rows(), "written", stats.Written, "patched", stats.Patched, "skipped", stats.Skipped, "swept", deleted, "quarantined", quarantined)
	if diff := reconcile(source, stored); diff != "" {
		// Another delivery of an older manifest may be writing: retry, and
		// the host poisons it if it never reconciles.
		return nil, retryable(fmt.Errorf("reconcile %s..%s: documents do not match the source: %s", w.From, w.To, diff))
	}
	return &outcome{}, s.updateWindow(ctx, wd, func(x *store.Window) {
		if x.Generation != m.Generation {
			return
		}
		x.State, x.PartsDone, x.Rows, x.Days, x.Quarantined = store.StateComplete, len(m.Parts), int64(totals.Rows()), source, quarantined
		x.Totals = currencyTotals(source)
	})
}

// ingestPart streams one part into the store and returns the write counts
// and the number of lines quarantined.
func (s *Server) ingestPart(ctx context.Context, m *landing.Manifest, i int, p landing.Part, totals *costcsv.Totals, days map[string]bool) (store.WriteStats, int, error) {
	var stats store.WriteStats
	rc, err := s.d.Landing.OpenPart(ctx, p)
	if err != nil {
		return stats, 0, err
	}
	defer rc.Close()
	rd, err := s.partReader(ctx, m, p, rc, &costcsv.Options{File: p.Blob, Part: i, Services: s.d.Services}) // ingestsources.go
	if err != nil {
		var he *costcsv.HeaderError
		if errors.As(err, &he) {
			return stats, 0, permanent(err)
		}
		return stats, 0, retryable(err)
	}
	w := m.Window
	windowID := store.WindowID(w.Scope, w.Metric, w.From, w.To)
	batch := make([]store.Cost, 0, batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		st, err := s.d.Store.UpsertCosts(ctx, batch)
		stats.Add(st)
		batch = batch[:0]
		if err != nil {
			return retryable(fmt.Errorf("write documents: %w", err))
		}
		return nil
	}
	quarantined := 0
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		var le *costcsv.LineError
		if errors.As(err, &le) {
			quarantined++
			q := store.Quarantine{Scope: w.Scope, WindowID: windowID, File: le.File, Line: le.Line, Column: le.Column, Reason: le.Reason, Generation: m.Generation}
			if err := s.d.Store.PutQuarantine(ctx, q); err != nil {
				return stats, quarantined, retryable(fmt.Errorf("quarantine line %d: %w", le.Line, err))
			}
			continue
		}
		if err != nil {
			err = fmt.Errorf("read %s: %w", p.Blob, err)
			if errors.Is(err, costcsv.ErrCorrupt) {
				return stats, quarantined, permanent(err) // reading it again fails the same way
			}
			return stats, quarantined, retryable(err)
		}
		// A line dated outside the window is kept (nothing is dropped) and
		// its day joins the sweep and the reconciliation.
		days[rec.Date] = true
		totals.Add(rec)
		batch = append(batch, store.NewCost(rec, w.Scope, w.Metric, windowID, m.Generation, p.Blob))
		if len(batch) == batchSize {
			if err := flush(); err != nil {
				return stats, quarantined, err
			}
		}
	}
	return stats, quarantined, flush()
}

func toStoreDays(in []costcsv.DayTotal) []store.DayTotal {
	out := make([]store.DayTotal, len(in))
	for i, d := range in {
		out[i] = store.DayTotal{Date: d.Date, Currency: d.Currency, Rows: int64(d.Rows), BilledCost: d.BilledCost}
	}
	return out
}

func currencyTotals(days []store.DayTotal) []store.CurrencyTotal {
	sums := map[string]decimal.Decimal{}
	var order []string
	for _, d := range days {
		if _, ok := sums[d.Currency]; !ok {
			order = append(order, d.Currency)
		}
		sums[d.Currency] = sums[d.Currency].Add(d.BilledCost)
	}
	slices.Sort(order)
	out := make([]store.CurrencyTotal, len(order))
	for i, c := range order {
		out[i] = store.CurrencyTotal{Currency: c, BilledCost: sums[c]}
	}
	return out
}

// reconcile compares rows and exact totals per day and currency; it returns
// "" when they agree, else a description of every difference.
func reconcile(source, stored []store.DayTotal) string {
	key := func(d store.DayTotal) string { return d.Date + " " + d.Currency }
	want := map[string]store.DayTotal{}
	for _, d := range source {
		want[key(d)] = d
	}
	var diffs []string
	seen := map[string]bool{}
	for _, g := range stored {
		k := key(g)
		seen[k] = true
		w, ok := want[k]
		if !ok {
			if g.Rows != 0 {
				diffs = append(diffs, fmt.Sprintf("%s: %d stored rows not in the source", k, g.Rows))
			}
			continue
		}
		if w.Rows != g.Rows || !w.BilledCost.Equal(g.BilledCost) {
			diffs = append(diffs, fmt.Sprintf("%s: source %d rows %s, stored %d rows %s", k, w.Rows, w.BilledCost, g.Rows, g.BilledCost))
		}
	}
	for k, w := range want {
		if !seen[k] && w.Rows != 0 {
			diffs = append(diffs, fmt.Sprintf("%s: %d source rows not stored", k, w.Rows))
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}
