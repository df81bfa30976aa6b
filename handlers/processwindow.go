package handlers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/telemetry"
	"github.com/costsync/costsync/shared/window"
)

// Steps of a window message.
const (
	stepRequest = "request"
	stepPoll    = "poll"
)

// windowMessage is the body of a cost-windows message. It decodes strictly.
type windowMessage struct {
	Version int           `json:"v"`
	Window  window.Window `json:"window"`
	Step    string        `json:"step"`
	// Generation is set from the request on: the report being polled.
	Generation int64  `json:"generation,omitempty"`
	Location   string `json:"location,omitempty"`
	// Attempt counts report requests for this window in this cycle (Failed
	// or expired reports are requested again, a bounded number of times).
	Attempt int `json:"attempt"`
	Polls   int `json:"polls,omitempty"`
	// Retries counts transient failures in a row, for backoff.
	Retries int    `json:"retries,omitempty"`
	RunID   string `json:"runId,omitempty"`
	// Ticket is the message's place with the rate governor (governor.go).
	Ticket string `json:"ticket,omitempty"`
	// Trace is the W3C traceparent of the invocation that sent the message
	// (the window's trace); optional, so that older messages decode.
	Trace string `json:"trace,omitempty"`
}

const messageVersion = 1

func (m *windowMessage) validate() error {
	if m.Version != messageVersion {
		return fmt.Errorf("window message version %d, want %d", m.Version, messageVersion)
	}
	if _, err := costapi.ParseScope(m.Window.Scope); err != nil {
		return err
	}
	if m.Window.Metric != "ActualCost" && m.Window.Metric != "AmortizedCost" {
		return fmt.Errorf("window message metric %q is not ActualCost or AmortizedCost", m.Window.Metric)
	}
	if err := m.Window.Validate(); err != nil {
		return err
	}
	switch m.Step {
	case stepRequest:
	case stepPoll:
		if m.Location == "" || m.Generation <= 0 {
			return errors.New("window message: a poll step needs location and generation")
		}
	default:
		return fmt.Errorf("window message step %q is not request or poll", m.Step)
	}
	return nil
}

// processWindow is the window state machine: request a report, poll it by
// re-enqueueing itself with the service's Retry-After, land its parts and
// write the manifest last. It never sleeps.
func (s *Server) processWindow(ctx context.Context, c *call) (*outcome, error) {
	q, err := c.req.QueueTrigger("msg")
	if err != nil {
		return nil, permanent(err)
	}
	if peekSource(q.Message) != "" {
		return s.processSource(ctx, c, q) // sources.go
	}
	var m windowMessage
	if err := invocation.DecodeJSON([]byte(q.Message), &m); err != nil {
		return nil, permanent(fmt.Errorf("window message: %w", err))
	}
	if err := m.validate(); err != nil {
		return nil, permanent(err)
	}
	scope, _ := costapi.ParseScope(m.Window.Scope)
	c.tag("scope", scope.Path, "window", m.Window.From+".."+m.Window.To, "metric", m.Window.Metric)
	if m.RunID != "" {
		c.tag("run_id", m.RunID)
	}
	c.note("step", m.Step, "dequeue_count", q.DequeueCount)
	wd, err := s.loadWindow(ctx, m.Window)
	if err != nil {
		return nil, err
	}
	c.onRetry = s.noteRetry(ctx, wd)
	if m.Step == stepPoll && wd.Generation > m.Generation {
		c.note("superseded_by", wd.Generation)
		return &outcome{}, nil // a newer request owns the window
	}

	if m.Step == stepRequest {
		if waiting, err := s.govern(ctx, c, scope, &m); waiting || err != nil {
			return &outcome{}, err
		}
		gen := max(s.d.Now().UnixMilli(), wd.Generation+1)
		m.Generation, m.Location, m.Polls = gen, "", 0
		m.Attempt++
		if err := s.updateWindow(ctx, wd, func(w *store.Window) {
			w.State, w.Generation, w.Attempts, w.OperationURL = store.StateRequested, gen, w.Attempts+1, ""
		}); err != nil {
			return nil, err
		}
	} else {
		m.Polls++
	}
	rep, err := s.callCost(ctx, scope, m)
	if costapi.IsUnsupportedOffer(err) {
		return s.useUsageDetails(ctx, c, wd, m, err) // sources.go
	}
	if err != nil {
		unsent := m.Step == stepRequest
		if unsent {
			m.Attempt-- // the request did not reach the service's queue
		}
		return s.windowError(ctx, c, wd, m, err, unsent)
	}
	m.Retries = 0
	if !rep.Done {
		if m.Polls >= s.d.Config.MaxPolls {
			return s.again(ctx, c, wd, m, fmt.Sprintf("report not ready after %d polls", m.Polls))
		}
		next := m
		next.Step, next.Location = stepPoll, rep.Location
		if err := s.send(ctx, queue.Windows, next, rep.RetryAfter); err != nil {
			return nil, retryable(err)
		}
		c.requeue(rep.RetryAfter, "re-enqueued to poll")
		return &outcome{}, s.updateWindow(ctx, wd, func(w *store.Window) {
			if w.Generation == m.Generation {
				w.State, w.OperationURL = store.StatePolling, rep.Location
			}
		})
	}
	switch rep.Status {
	case costapi.StatusFailed:
		return s.again(ctx, c, wd, m, "report failed: "+rep.Message)
	case costapi.StatusNoDataFound:
		// No cost in the window is a complete window with zero rows: the
		// manifest with no parts makes ingestion sweep what was there.
		c.note("outcome_detail", "no data")
	}
	man := &landing.Manifest{Version: landing.ManifestVersion, Source: "cost-details", Window: m.Window, Generation: m.Generation, LandedAt: s.d.Now().UTC(),
		RunID: m.RunID, Trace: telemetry.Traceparent(ctx)}
	for i, b := range rep.Blobs {
		// validTill is the service's wall clock, not the planning date.
		if now := s.d.Wall(); rep.Expired(now, linkMargin) {
			return s.again(ctx, c, wd, m, fmt.Sprintf("report links valid till %s had expired before the copy of part %d", rep.ValidTill.UTC().Format(time.RFC3339), i))
		}
		part, err := s.landPart(ctx, m, i, b)
		if err != nil {
			if e, ok := costapi.AsError(err); ok && e.LinkExpired {
				return s.again(ctx, c, wd, m, "report link expired before the copy")
			}
			return s.windowError(ctx, c, wd, m, err, false)
		}
		man.Parts = append(man.Parts, part)
		c.inv.AddBytes(part.Bytes)
	}
	// The manifest is written last: its arrival means every part is in.
	name, err := s.d.Landing.PutManifest(ctx, man)
	if err != nil {
		return nil, retryable(err)
	}
	c.note("parts", len(man.Parts), "manifest", name)
	return &outcome{}, s.updateWindow(ctx, wd, func(w *store.Window) {
		// The manifest's trigger may already have started ingesting this
		// generation (PartsGeneration): its state and counts stand.
		if w.Generation == m.Generation && w.PartsGeneration != m.Generation && w.State != store.StateComplete {
			w.State, w.PartsTotal, w.PartsDone = store.StateLanded, len(man.Parts), 0
		}
	})
}

// callBudget bounds one Cost Management call with its in-process retries
// (costapi caps each try and the number of tries): a call that does not
// get through in time waits in the queue instead.
const callBudget = 3 * time.Minute

// linkMargin is how long report links must still be valid to start a copy.
const linkMargin = time.Minute

// callCost makes the window's Cost Management call: the report request or
// the next poll. This is where Cost Details quota is spent; a rate governor
// decides before it whether the call may go now.
func (s *Server) callCost(ctx context.Context, scope costapi.Scope, m windowMessage) (*costapi.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, callBudget)
	defer cancel()
	if m.Step == stepRequest {
		return s.d.Cost.RequestReport(ctx, scope, costapi.ReportRequest{Metric: m.Window.Metric, From: m.Window.From, To: m.Window.To})
	}
	return s.d.Cost.PollReport(ctx, scope, m.Location)
}

func (s *Server) landPart(ctx context.Context, m windowMessage, i int, b costapi.Blob) (landing.Part, error) {
	rc, err := s.d.Cost.OpenBlob(ctx, b.Link)
	if err != nil {
		return landing.Part{}, err
	}
	defer rc.Close()
	return s.d.Landing.PutPart(ctx, m.Window, m.Generation, i, rc)
}

// again requests the report anew (a Failed report, an expired link, a report
// that never got ready), a bounded number of times.
func (s *Server) again(ctx context.Context, c *call, wd *store.Window, m windowMessage, why string) (*outcome, error) {
	if m.Attempt >= s.d.Config.ReportAttempts {
		return s.fail(ctx, wd, fmt.Errorf("%s; gave up after %d report requests", why, m.Attempt))
	}
	next := m
	next.Step, next.Location, next.Polls = stepRequest, "", 0
	if err := s.send(ctx, queue.Windows, next, 0); err != nil {
		return nil, retryable(err)
	}
	c.requeue(0, "requesting again: "+why)
	return &outcome{}, s.updateWindow(ctx, wd, func(w *store.Window) { w.AddError(why) })
}

// retryDelay is how long a message waits in the queue after err: what a
// throttling service asked for, or for a transient error exponential
// backoff with jitter (unless the service asked for more), counted in
// retries. throttled tells which.
func retryDelay(err error, retries *int) (delay time.Duration, throttled bool) {
	if e, ok := costapi.AsError(err); ok {
		delay, throttled = e.RetryAfter, e.Throttled
	}
	if !throttled {
		*retries++
		backoff := time.Duration(1<<min(*retries, 8)) * time.Second
		backoff += time.Duration(rand.Int64N(int64(backoff/2) + 1))
		delay = max(delay, backoff)
	}
	return delay, throttled
}

// windowError handles a failed call: throttling and transient errors wait in
// the queue (never dropped, never skipped); permanent ones (a refused link,
// a missing role, a request the service will never accept) are recorded.
// unsent says the failed call was a report request that the service did not
// take: it is not counted as an attempt.
func (s *Server) windowError(ctx context.Context, c *call, wd *store.Window, m windowMessage, err error, unsent bool) (*outcome, error) {
	if !isRetryable(err) {
		return s.fail(ctx, wd, err)
	}
	return s.waitInQueue(ctx, c, wd, &m, &m.Retries, err, func(w *store.Window) {
		if unsent && w.Generation == m.Generation {
			w.Attempts--
		}
	})
}

// waitInQueue sends msg (a cost-windows message whose retry count is
// *retries) back to its queue after the delay that err calls for
// (retryDelay), and records the error in the window's ledger; also, when
// set, changes the ledger document too.
func (s *Server) waitInQueue(ctx context.Context, c *call, wd *store.Window, msg any, retries *int, err error, also func(*store.Window)) (*outcome, error) {
	delay, throttled := retryDelay(err, retries)
	if err := s.send(ctx, queue.Windows, msg, delay); err != nil {
		return nil, retryable(err)
	}
	why := "transient error, backing off"
	if throttled {
		why = "throttled by the service"
	}
	c.requeue(delay, why)
	c.note("cause", err.Error())
	return &outcome{}, s.updateWindow(ctx, wd, func(w *store.Window) {
		if throttled {
			w.Throttles++
		}
		if also != nil {
			also(w)
		}
		w.AddError(err.Error())
	})
}

// fail records a permanent failure in the ledger and answers success to the
// host: retrying would not help.
func (s *Server) fail(ctx context.Context, wd *store.Window, cause error) (*outcome, error) {
	if err := s.updateWindow(ctx, wd, func(w *store.Window) {
		w.State = store.StateFailed
		w.AddError(cause.Error())
	}); err != nil {
		return nil, err
	}
	s.tel().Window(ctx, wd.Scope, wd.Metric, telemetry.WindowFailed, 0)
	return &outcome{}, permanent(cause)
}

// loadWindow reads a window's ledger document, creating it when absent.
func (s *Server) loadWindow(ctx context.Context, w window.Window) (*store.Window, error) {
	id := store.WindowID(w.Scope, w.Metric, w.From, w.To)
	wd, err := s.d.Store.GetWindow(ctx, w.Scope, id)
	if err == nil {
		return wd, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, retryable(err)
	}
	now := s.d.Now().UTC()
	wd = &store.Window{ID: id, Scope: w.Scope, Metric: w.Metric, From: w.From, To: w.To, State: store.StateQueued, CreatedAt: now, UpdatedAt: now}
	if err := s.d.Store.CreateWindow(ctx, wd); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return s.d.Store.GetWindow(ctx, w.Scope, id)
		}
		return nil, retryable(err)
	}
	return wd, nil
}

// updateWindow applies change with optimistic concurrency: on a conflicting
// write it reads the document again and re-applies the change.
func (s *Server) updateWindow(ctx context.Context, wd *store.Window, change func(*store.Window)) error {
	for attempt := 0; attempt < 5; attempt++ {
		change(wd)
		wd.UpdatedAt = s.d.Now().UTC()
		err := s.d.Store.ReplaceWindow(ctx, wd)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrPrecondition) {
			return retryable(fmt.Errorf("update ledger %s: %w", wd.ID, err))
		}
		fresh, gerr := s.d.Store.GetWindow(ctx, wd.Scope, wd.ID)
		if gerr != nil {
			return retryable(fmt.Errorf("reload ledger %s: %w", wd.ID, gerr))
		}
		*wd = *fresh
	}
	return retryable(fmt.Errorf("update ledger %s: too many concurrent writers", wd.ID))
}
