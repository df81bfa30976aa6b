package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// inFlightFor is how long a window in a non-final state is taken to be in
// flight: planning again within it does not request the report twice.
const inFlightFor = 2 * time.Hour

// planWindows is the daily timer: one window per scope, metric and trailing
// day (late data changes recent days). It enqueues them through its queue
// output binding. Firing twice, or past due, enqueues each window once: a
// window already in flight is left alone.
func (s *Server) planWindows(ctx context.Context, c *call) (*outcome, error) {
	t, err := c.req.TimerTrigger("timer")
	if err != nil {
		return nil, permanent(err)
	}
	cfg := s.d.Config
	scopes := make([]string, len(cfg.Scopes))
	for i, sc := range cfg.Scopes {
		scopes[i] = sc.Path
	}
	now := s.d.Now()
	planned := window.Trailing(now, cfg.TrailingDays, scopes, cfg.Metrics)
	var msgs []windowMessage
	skipped := 0
	for _, w := range planned {
		busy, err := s.inFlight(ctx, w, now)
		if err != nil {
			return nil, err
		}
		if busy {
			skipped++
			continue
		}
		msgs = append(msgs, windowMessage{Version: messageVersion, Window: w, Step: stepRequest})
	}
	c.note("past_due", t.IsPastDue, "planned", len(planned), "enqueued", len(msgs), "in_flight", skipped)
	return &outcome{outputs: map[string]any{"windows": msgs}}, nil
}

// inFlight tells whether a window's report is being requested or ingested now.
func (s *Server) inFlight(ctx context.Context, w window.Window, now time.Time) (bool, error) {
	wd, err := s.d.Store.GetWindow(ctx, w.Scope, store.WindowID(w.Scope, w.Metric, w.From, w.To))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, retryable(err)
	}
	switch wd.State {
	case store.StateComplete, store.StateFailed:
		return false, nil
	}
	return now.Sub(wd.UpdatedAt) < inFlightFor, nil
}
