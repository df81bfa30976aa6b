package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
)

// ingestManifest is the blob trigger on cost-manifests/{name}. It starts the
// ingestion of the report's generation in the ledger (unless a newer report
// owns the window) and sends one cost-parts message per part, so that the
// parts run in parallel, each resuming from its checkpoint (see runPart);
// the window is finished by whichever invocation records its last part. It
// ingests nothing itself: the host retries a failed blob trigger only a few
// times before it poisons the blob, while every continuation of a part is a
// new message with its own retries. Running it again (a retry, a second
// delivery) leaves the same state: the ledger counts each part once.
func (s *Server) ingestManifest(ctx context.Context, c *call) (*outcome, error) {
	deadline := time.Now().Add(s.d.Config.IngestBudget)
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
	w, gen := m.Window, m.Generation
	c.tag("scope", w.Scope, "window", w.From+".."+w.To, "metric", w.Metric, "generation", gen)
	if m.RunID != "" {
		c.tag("run_id", m.RunID)
	}
	if _, err := s.loadWindow(ctx, w); err != nil {
		return nil, err
	}
	wd, err := s.changeWindow(ctx, w, func(x *store.Window) (bool, error) {
		switch {
		case stale(x, gen):
			// A newer report was requested after this one: an older
			// report never overwrites it.
			return false, errStale
		case x.PartsGeneration == gen:
			return false, nil // started by an earlier delivery
		}
		x.Generation, x.PartsGeneration, x.State = gen, gen, store.StateIngesting
		x.PartsTotal, x.PartsDone, x.PartsIn = len(m.Parts), 0, nil
		x.Rows, x.Days, x.Totals, x.Quarantined = 0, nil, nil, 0
		return true, nil
	})
	if errors.Is(err, errStale) {
		return refuse(c, wd)
	}
	if err != nil {
		return nil, err
	}
	c.onRetry = s.noteRetry(ctx, wd)
	c.note("parts", len(m.Parts))
	if wd.State == store.StateComplete {
		c.note("outcome_detail", "already complete")
		return &outcome{}, nil
	}
	if len(m.Parts) == 0 {
		// No cost in the window: finishing sweeps what was there.
		return s.finishWindow(ctx, c, w, gen, m.RunID, 0, deadline)
	}
	for i, p := range m.Parts {
		msg := partMessage{Version: messageVersion, Step: stepPart, Window: w, Generation: gen, Part: i, Blob: p.Blob,
			Source: m.Source, Container: p.Container, Format: p.Format, RunID: m.RunID}
		if err := s.send(ctx, queue.Parts, msg, 0); err != nil {
			return nil, retryable(err)
		}
	}
	return &outcome{}, nil
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
