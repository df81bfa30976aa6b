package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/costsync/costsync/shared/status"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/telemetry"
	"github.com/costsync/costsync/shared/window"
)

// inFlightFor is how long a window in a non-final state is taken to be in
// flight: planning again within it does not request the report twice.
const inFlightFor = 2 * time.Hour

// planWindows is the daily timer. For every scope and metric it plans one
// window per trailing day (late data changes recent days) and the re-pulls
// of closing months (days 1–5 of the next month and once more later, by
// default), records what each completed re-pull restated, and moves months
// open → closing → final in the ledger. It enqueues the windows through its
// queue output binding.
//
// Firing twice, or past due, requests nothing twice: a window is claimed in
// the ledger with its ETag before it is enqueued, and a window in flight or
// requested less than COSTSYNC_REPULL_AFTER ago (the service refreshes its
// data every four hours) is left alone; a month's close days are recorded
// as they are planned. A scope whose ledger cannot be read is logged and
// skipped; the others are planned.
func (s *Server) planWindows(ctx context.Context, c *call) (*outcome, error) {
	t, err := c.req.TimerTrigger("timer")
	if err != nil {
		return nil, permanent(err)
	}
	cfg := s.d.Config
	now := s.d.Now().UTC()
	today := window.Day(now)
	var msgs []windowMessage
	enqueue := func(w window.Window) {
		// Each window has a trace of its own, linked to this invocation's.
		trace := s.tel().NewTrace(ctx, "PlanWindows window", "scope", w.Scope, "window", w.From+".."+w.To, "metric", w.Metric)
		msgs = append(msgs, windowMessage{Version: messageVersion, Window: w, Step: stepRequest, Trace: trace})
	}
	planned, skipped, closing, failures := 0, 0, 0, 0
	for _, sc := range cfg.Scopes {
		err := func() error {
			for _, w := range window.Trailing(today, cfg.TrailingDays, []string{sc.Path}, cfg.Metrics) {
				planned++
				ok, err := s.claimWindow(ctx, w, now, cfg.RepullAfter)
				if err != nil {
					return err
				}
				if !ok {
					skipped++
					continue
				}
				enqueue(w)
			}
			ws, err := s.closeMonths(ctx, sc.Path, now)
			for _, w := range ws {
				closing++
				enqueue(w)
			}
			return err
		}()
		if err != nil {
			failures++
			c.log.Error("plan scope failed; its windows wait for the next run", "scope", sc.Path, "error", err.Error())
		}
		s.observeFreshness(ctx, c, sc.Path, now)
	}
	c.note("past_due", t.IsPastDue, "planned", planned, "enqueued", len(msgs), "skipped", skipped, "month_close", closing, "scope_failures", failures)
	return &outcome{outputs: map[string]any{"windows": msgs}}, nil
}

// claimWindow marks a window queued in the ledger for this plan, unless it
// is in flight or was requested less than repull ago. The write carries the
// ETag that was read (or creates the document), so of two planners racing
// for a window only one wins it.
func (s *Server) claimWindow(ctx context.Context, w window.Window, now time.Time, repull time.Duration) (bool, error) {
	id := store.WindowID(w.Scope, w.Metric, w.From, w.To)
	wd, err := s.d.Store.GetWindow(ctx, w.Scope, id)
	if errors.Is(err, store.ErrNotFound) {
		wd = &store.Window{ID: id, Scope: w.Scope, Metric: w.Metric, From: w.From, To: w.To, State: store.StateQueued, CreatedAt: now, UpdatedAt: now}
		switch err := s.d.Store.CreateWindow(ctx, wd); {
		case errors.Is(err, store.ErrConflict):
			return false, nil // another planner created it
		case err != nil:
			return false, retryable(fmt.Errorf("claim window %s: %w", id, err))
		}
		return true, nil
	}
	if err != nil {
		return false, retryable(fmt.Errorf("claim window %s: %w", id, err))
	}
	if busy(wd) || (repull > 0 && wd.Generation > 0 && now.UnixMilli()-wd.Generation < repull.Milliseconds()) {
		return false, nil
	}
	wd.State, wd.UpdatedAt = store.StateQueued, now
	switch err := s.d.Store.ReplaceWindow(ctx, wd); {
	case errors.Is(err, store.ErrPrecondition):
		return false, nil // another planner claimed it
	case err != nil:
		return false, retryable(fmt.Errorf("claim window %s: %w", id, err))
	}
	return true, nil
}

// busy tells whether a window is being requested or ingested now. Its
// UpdatedAt is set by the store's clock.
func busy(wd *store.Window) bool {
	switch wd.State {
	case store.StateComplete, store.StateFailed:
		return false
	}
	return time.Since(wd.UpdatedAt) < inFlightFor
}

// closeMonths advances the close of scope's months for every metric: the
// current month is open, the previous one and older ones not yet final are
// closing. It returns the month windows to pull now.
func (s *Server) closeMonths(ctx context.Context, scope string, now time.Time) ([]window.Window, error) {
	cfg := s.d.Config
	if len(cfg.CloseDays) == 0 {
		return nil, nil // months are not re-pulled (COSTSYNC_CLOSE_DAYS=none)
	}
	docs, err := s.d.Store.ListMonths(ctx, scope)
	if err != nil {
		return nil, retryable(fmt.Errorf("list months of %s: %w", scope, err))
	}
	current, previous := window.MonthOf(now), window.PreviousMonth(now)
	oldest := window.MonthOf(window.Oldest(now))
	var out []window.Window
	for _, metric := range cfg.Metrics {
		byMonth := map[string]*store.Month{}
		months := []string{previous}
		for i := range docs {
			d := &docs[i]
			if d.Metric != metric {
				continue
			}
			byMonth[d.Month] = d
			if d.Month < previous && d.Month >= oldest && d.State != store.MonthFinal {
				months = append(months, d.Month)
			}
		}
		if byMonth[current] == nil {
			open := &store.Month{Scope: scope, Metric: metric, Month: current, State: store.MonthOpen}
			if err := s.d.Store.CreateMonth(ctx, open); err != nil && !errors.Is(err, store.ErrConflict) {
				return out, retryable(fmt.Errorf("open month %s: %w", current, err))
			}
		}
		slices.Sort(months)
		for _, m := range slices.Compact(months) {
			w, err := s.closeMonth(ctx, scope, metric, m, byMonth[m], now)
			if err != nil {
				return out, err
			}
			if w != nil {
				out = append(out, *w)
			}
		}
	}
	return out, nil
}

// closeMonth takes one closing month a step further: it records a
// completed re-pull with what it restated, makes the month final once its
// final re-pull is in, and returns the month's window when a re-pull is due
// (or the last one was lost) and the window is not in flight. The month
// document is written with its ETag; on a conflict it is read again and the
// step redone.
func (s *Server) closeMonth(ctx context.Context, scope, metric, month string, doc *store.Month, now time.Time) (*window.Window, error) {
	cfg := s.d.Config
	mw, err := window.Month(scope, metric, month)
	if err != nil {
		return nil, permanent(err)
	}
	claimed := false // the month window, by this planner
	for attempt := 0; attempt < 5; attempt++ {
		if doc == nil {
			doc = &store.Month{Scope: scope, Metric: metric, Month: month}
		}
		if doc.State == store.MonthFinal {
			return nil, nil
		}
		wd, err := s.d.Store.GetWindow(ctx, scope, store.WindowID(scope, metric, mw.From, mw.To))
		if errors.Is(err, store.ErrNotFound) {
			wd, err = nil, nil
		}
		if err != nil {
			return nil, retryable(fmt.Errorf("read month window %s: %w", month, err))
		}
		changed := doc.State != store.MonthClosing
		doc.State = store.MonthClosing
		if wd != nil && wd.SuccessGeneration > 0 && !slices.ContainsFunc(doc.Pulls, func(p store.MonthPull) bool { return p.Generation == wd.SuccessGeneration }) {
			if err := s.recordPull(ctx, doc, wd); err != nil {
				return nil, err
			}
			changed = true
		}
		lastPull := int64(0)
		if n := len(doc.Pulls); n > 0 {
			lastPull = doc.Pulls[n-1].Generation
		}
		answered := !doc.LastPlannedAt.IsZero() && lastPull >= doc.LastPlannedAt.UnixMilli()
		if !claimed && slices.Contains(doc.Planned, cfg.CloseDays.Final(month)) && answered {
			doc.State, doc.FinalAt, changed = store.MonthFinal, doc.Pulls[len(doc.Pulls)-1].CompletedAt, true
		} else if due, lost := cfg.CloseDays.Due(month, now, doc.Planned), !answered && len(doc.Planned) > 0 && now.Sub(doc.LastPlannedAt) > inFlightFor; due != "" || lost || claimed {
			if !claimed {
				if claimed, err = s.claimWindow(ctx, mw, now, 0); err != nil {
					return nil, err
				}
			}
			if claimed {
				if due != "" && !slices.Contains(doc.Planned, due) {
					doc.Planned = append(doc.Planned, due)
				}
				doc.LastPlannedAt, changed = now, true
			}
		}
		var pull *window.Window
		if claimed {
			pull = &mw
		}
		if !changed {
			return pull, nil
		}
		err = s.saveMonth(ctx, doc)
		if errors.Is(err, store.ErrPrecondition) || errors.Is(err, store.ErrConflict) {
			// Another planner moved the month: read it again and redo the
			// step (a window claimed here stays this planner's to enqueue).
			if doc, err = s.d.Store.GetMonth(ctx, scope, metric, month); err != nil && !errors.Is(err, store.ErrNotFound) {
				return pull, retryable(fmt.Errorf("reload month %s: %w", month, err))
			}
			continue
		}
		return pull, err
	}
	return nil, retryable(fmt.Errorf("close month %s of %s: too many concurrent writers", month, scope))
}

// recordPull appends the completed re-pull of wd to the month with the
// size of its restatement: against the previous re-pull, or for the first
// one against what the other windows (the trailing days) had ingested.
func (s *Server) recordPull(ctx context.Context, doc *store.Month, wd *store.Window) error {
	before := doc.LastDays
	if len(doc.Pulls) == 0 {
		ws, err := s.d.Store.ListWindows(ctx, doc.Scope)
		if err != nil {
			return retryable(fmt.Errorf("list windows of %s: %w", doc.Scope, err))
		}
		mw, _ := window.Month(doc.Scope, doc.Metric, doc.Month)
		before = status.Latest(ws, doc.Scope, doc.Metric, wd.ID, wd.SuccessGeneration, mw.Days())
	}
	pull := store.MonthPull{
		Generation: wd.SuccessGeneration, CompletedAt: wd.LastSuccessAt, Rows: wd.Rows, Totals: wd.Totals,
		Restatement: store.Restate(before, wd.Days),
	}
	doc.Pulls = append(doc.Pulls, pull)
	doc.LastDays = wd.Days
	if pull.Restatement.Changed() {
		late := status.LateRestatement(doc.Month, pull)
		s.tel().Restated(ctx, doc.Scope, doc.Metric, late)
		if late {
			telemetry.Logger(ctx).Error(alertLateRestatement, "alert", true, "scope", doc.Scope, "metric", doc.Metric, "month", doc.Month,
				"completed_at", pull.CompletedAt, "rows_changed", pull.Restatement.RowsChanged, "days_changed", pull.Restatement.DaysChanged)
		}
	}
	return nil
}

// alertLateRestatement starts the alert-level line of a closed month whose
// data still changed after day status.LateDay of the next month.
const alertLateRestatement = "ALERT: closed month still changing"

// observeFreshness tells the window age gauge the scope's latest successes,
// as the ledger has them (this instance may not have completed any). It
// reads the ledger only when telemetry is on.
func (s *Server) observeFreshness(ctx context.Context, c *call, scope string, now time.Time) {
	if !s.tel().Enabled() {
		return
	}
	ws, err := s.d.Store.ListWindows(ctx, scope)
	if err != nil {
		c.log.Warn("read the ledger for the window age failed", "scope", scope, "error", err.Error())
		return
	}
	for metric, at := range status.LastSuccesses(ws) {
		s.tel().LastSuccess(scope, metric, now.Sub(at))
	}
}

// saveMonth creates or replaces the month document with its ETag.
func (s *Server) saveMonth(ctx context.Context, m *store.Month) error {
	var err error
	if m.ETag == "" {
		err = s.d.Store.CreateMonth(ctx, m)
	} else {
		err = s.d.Store.ReplaceMonth(ctx, m)
	}
	if err != nil && !errors.Is(err, store.ErrPrecondition) && !errors.Is(err, store.ErrConflict) {
		return retryable(fmt.Errorf("save month %s of %s: %w", m.Month, m.Scope, err))
	}
	return err
}
