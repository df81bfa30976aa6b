package handlers

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/telemetry"
)

// recordReader is what ingestion reads a part with. Close removes the
// temporary files a costcsv.Reader may spill occurrence counts to.
type recordReader interface {
	Next() (*costcsv.Record, error)
	Close() error
}

// partReader opens the reader a manifest's source needs for a part: usage
// aggregates have their own layout; every other source's parts are cost
// files whose layout the parser recognises from the header. Parquet is read
// at random (its footer first), through the landing's OpenPartAt.
func (s *Server) partReader(ctx context.Context, source string, p landing.Part, r io.Reader, o *costcsv.Options) (recordReader, error) {
	switch {
	case p.Format == landing.FormatParquet:
		if s.d.Sources == nil {
			return nil, &costcsv.HeaderError{File: p.Blob, Reason: "Parquet parts need the sources' landing"}
		}
		ra, size, err := s.d.Sources.Landing.OpenPartAt(ctx, p)
		if err != nil {
			return nil, err
		}
		return costcsv.Open(ra, size, o)
	case source == landing.SourceUsageAggregates:
		return costcsv.NewUsageReader(r, o)
	}
	// CSV and gzip CSV, told apart by their first bytes.
	return costcsv.NewReader(r, o)
}

// aggregateBatch is how many aggregate documents go to the store at once.
const aggregateBatch = 500

// maxQueryPage bounds a landed Query page read into memory.
const maxQueryPage = 64 << 20

// ingestQuery ingests the pages of a Query API source: each row becomes an
// aggregate document with a deterministic id; then rows of older
// generations are swept and the stored rows and exact sums are reconciled
// with the pages', per period and currency.
func (s *Server) ingestQuery(ctx context.Context, c *call, m *landing.Manifest) (*outcome, error) {
	w, info := m.Window, m.Query
	if info == nil || info.Key == "" || info.Type == "" {
		return nil, permanent(fmt.Errorf("query manifest of %s..%s has no query key or type", w.From, w.To))
	}
	if s.d.Sources == nil {
		return nil, permanent(fmt.Errorf("query manifest: this app has no clients for the Query source"))
	}
	st := s.d.Sources.Store
	c.tag("scope", w.Scope, "window", w.From+".."+w.To, "metric", w.Metric, "generation", m.Generation)
	if m.RunID != "" {
		c.tag("run_id", m.RunID)
	}
	start := time.Now()
	wd, err := s.loadWindow(ctx, w)
	if err != nil {
		return nil, err
	}
	switch {
	case wd.Generation > m.Generation:
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
	windowID := store.WindowID(w.Scope, w.Metric, w.From, w.To)
	days := map[string]bool{}
	for _, d := range w.Days() {
		days[d] = true
	}
	source := map[[2]string]*store.DayTotal{}
	seen := map[string]string{}
	var stats store.WriteStats
	rows := 0
	for _, p := range m.Parts {
		page, err := s.readQueryPage(ctx, p)
		if err != nil {
			if !isRetryable(err) {
				return s.fail(ctx, wd, err)
			}
			return nil, err
		}
		typed, err := page.TypedRows()
		if err != nil {
			return s.fail(ctx, wd, fmt.Errorf("%s: %w", p.Blob, err))
		}
		docs := make([]store.Aggregate, 0, len(typed))
		for j, r := range typed {
			date := r.Date
			if date == "" {
				date = w.From // no granularity: one row for the whole period
			}
			a := store.NewAggregate(w.Scope, info.Type, info.Key, info.Granularity, date, r.Currency, r.Dimensions, r.Values)
			a.WindowID, a.Generation, a.File, a.Line = windowID, m.Generation, p.Blob, j+1
			where := fmt.Sprintf("%s row %d", p.Blob, j+1)
			if prev, dup := seen[a.PK+"|"+a.ID]; dup {
				return s.fail(ctx, wd, fmt.Errorf("query result: %s repeats the period, currency and groups of %s", where, prev))
			}
			seen[a.PK+"|"+a.ID] = where
			docs = append(docs, a)
			days[date] = true
			k := [2]string{date, r.Currency}
			t := source[k]
			if t == nil {
				t = &store.DayTotal{Date: date, Currency: r.Currency}
				source[k] = t
			}
			t.Rows++
			t.BilledCost = t.BilledCost.Add(r.Values[info.Value])
		}
		for lo := 0; lo < len(docs); lo += aggregateBatch {
			ws, err := st.UpsertAggregates(ctx, docs[lo:min(lo+aggregateBatch, len(docs))])
			stats.Add(ws)
			if err != nil {
				return nil, retryable(fmt.Errorf("write aggregates: %w", err))
			}
		}
		rows += len(docs)
	}
	dayList := make([]string, 0, len(days))
	for d := range days {
		dayList = append(dayList, d)
	}
	slices.Sort(dayList)
	swept, err := st.SweepAggregates(ctx, w.Scope, info.Type, info.Key, dayList, m.Generation)
	if err != nil {
		return nil, retryable(fmt.Errorf("sweep older generations: %w", err))
	}
	sums, err := st.SumAggregates(ctx, w.Scope, info.Type, info.Key, dayList, info.Value)
	if err != nil {
		return nil, retryable(fmt.Errorf("sum stored aggregates: %w", err))
	}
	stored := make([]store.DayTotal, len(sums))
	for i, a := range sums {
		stored[i] = store.DayTotal{Date: a.Date, Currency: a.Currency, Rows: a.Rows, BilledCost: a.Sum}
	}
	want := make([]store.DayTotal, 0, len(source))
	for _, t := range source {
		want = append(want, *t)
	}
	slices.SortFunc(want, func(a, b store.DayTotal) int {
		return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.Currency, b.Currency))
	})
	t := s.tel()
	t.RowsParsed(ctx, w.Scope, m.Source, rows, time.Since(start))
	t.Documents(ctx, w.Scope, telemetry.DocWritten, stats.Written)
	t.Documents(ctx, w.Scope, telemetry.DocUnchanged, stats.Skipped)
	t.Documents(ctx, w.Scope, telemetry.DocStale, stats.Stale)
	t.Documents(ctx, w.Scope, telemetry.DocDeleted, swept)
	c.note("written", stats.Written, "swept", swept, "query_pages", len(m.Parts))
	if diff := reconcile(want, stored); diff != "" {
		return nil, retryable(fmt.Errorf("reconcile query %s..%s: stored rows do not match the pages: %s", w.From, w.To, diff))
	}
	completed := false
	if err := s.updateWindow(ctx, wd, func(x *store.Window) {
		completed = false
		if x.Generation != m.Generation {
			return
		}
		completed = x.State != store.StateComplete
		x.State, x.PartsDone, x.Rows, x.Days = store.StateComplete, len(m.Parts), int64(rows), want
		x.Totals = currencyTotals(want)
	}); err != nil {
		return nil, err
	}
	if completed {
		s.windowComplete(ctx, wd)
	}
	return &outcome{}, nil
}

// readQueryPage reads one landed Query page.
func (s *Server) readQueryPage(ctx context.Context, p landing.Part) (*costapi.QueryPage, error) {
	rc, err := s.d.Landing.OpenPart(ctx, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxQueryPage+1))
	if err != nil {
		return nil, retryable(fmt.Errorf("read %s: %w", p.Blob, err))
	}
	if len(b) > maxQueryPage {
		return nil, permanent(fmt.Errorf("query page %s is over %d bytes", p.Blob, maxQueryPage))
	}
	page, err := costapi.DecodeQueryPage(b)
	if err != nil {
		return nil, permanent(fmt.Errorf("%s: %w", p.Blob, err))
	}
	return page, nil
}
