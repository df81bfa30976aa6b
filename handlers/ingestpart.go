package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/telemetry"
	"github.com/costsync/costsync/shared/window"
)

// flushSize is how many documents go to the writer at once, and so how
// often a part is checkpointed: enough to keep the writer's batches of 100
// and its concurrency busy, few enough that a killed invocation redoes
// little and memory stays bounded.
const flushSize = 2000

// Steps of a cost-parts message.
const (
	stepPart   = "part"
	stepFinish = "finish"
)

// partMessage is the body of a cost-parts message: a part of a landed
// report to ingest from a checkpoint, or a window whose parts are all in to
// finish from a day. IngestManifest sends the first message of every part
// but the one it ingests itself; a part that does not fit an invocation's
// budget sends its own continuation. It decodes strictly.
type partMessage struct {
	Version    int           `json:"v"`
	Step       string        `json:"step"`
	Window     window.Window `json:"window"`
	Generation int64         `json:"generation"`
	// Part is the part's index in the manifest and Blob its name in
	// cost-reports.
	Part int    `json:"part"`
	Blob string `json:"blob,omitempty"`
	// Source is the manifest's source (it picks the reader); Container and
	// Format are the part's (an export's partitions stay in the container
	// the export wrote them to; Parquet is read at random).
	Source    string `json:"source,omitempty"`
	Container string `json:"container,omitempty"`
	Format    string `json:"format,omitempty"`
	// Line is the checkpoint the message was sent with: every record of the
	// part up to this physical line is stored. The ledger may know a later
	// one (an invocation killed after its last checkpoint).
	Line int `json:"line,omitempty"`
	// Day is, for a finish, the index of the first day still to sweep.
	Day int `json:"day,omitempty"`
	// RunID is the on-demand run of the report, when there is one.
	RunID string `json:"runId,omitempty"`
	// Trace is the W3C traceparent of the invocation that sent the message
	// (the window's trace); optional, so that older messages decode.
	Trace string `json:"trace,omitempty"`
}

func (m *partMessage) validate() error {
	switch {
	case m.Version != messageVersion:
		return fmt.Errorf("part message version %d, want %d", m.Version, messageVersion)
	case m.Window.Scope == "" || m.Window.Metric == "":
		return errors.New("part message: window needs a scope and a metric")
	case m.Generation <= 0 || m.Generation > store.MaxGeneration:
		return fmt.Errorf("part message generation %d outside (0, 2^53]", m.Generation)
	case m.Part < 0 || m.Line < 0 || m.Day < 0:
		return errors.New("part message: part, line and day must not be negative")
	}
	if err := m.Window.Validate(); err != nil {
		return fmt.Errorf("part message: %w", err)
	}
	switch m.Step {
	case stepPart:
		if m.Blob == "" || strings.Contains(m.Blob, "..") {
			return fmt.Errorf("part message: invalid blob name %q", m.Blob)
		}
	case stepFinish:
	default:
		return fmt.Errorf("part message step %q is not part or finish", m.Step)
	}
	return nil
}

// ingestPart is the queue trigger on cost-parts: it continues a part from
// its checkpoint, or finishes a window, within the invocation's budget.
func (s *Server) ingestPart(ctx context.Context, c *call) (*outcome, error) {
	deadline := time.Now().Add(s.d.Config.IngestBudget)
	q, err := c.req.QueueTrigger("msg")
	if err != nil {
		return nil, permanent(err)
	}
	var m partMessage
	if err := invocation.DecodeJSON([]byte(q.Message), &m); err != nil {
		return nil, permanent(fmt.Errorf("part message: %w", err))
	}
	if err := m.validate(); err != nil {
		return nil, permanent(err)
	}
	w := m.Window
	c.tag("scope", w.Scope, "window", w.From+".."+w.To, "metric", w.Metric, "generation", m.Generation)
	if m.Step == stepPart {
		c.tag("part", m.Part)
	}
	if m.RunID != "" {
		c.tag("run_id", m.RunID)
	}
	c.note("step", m.Step, "dequeue_count", q.DequeueCount)
	if m.Step == stepFinish {
		return s.finishWindow(ctx, c, w, m.Generation, m.RunID, m.Day, deadline)
	}
	return s.runPart(ctx, c, m, deadline)
}

// errStale reports a ledger that a newer report owns.
var errStale = errors.New("a newer report owns the window")

// stale tells whether the ledger has moved on from generation gen.
func stale(wd *store.Window, gen int64) bool {
	return wd.Generation > gen || wd.PartsGeneration > gen
}

// refuse ends an invocation of an older report: nothing is written.
func refuse(c *call, wd *store.Window) (*outcome, error) {
	c.note("outcome_detail", "stale report refused", "ledger_generation", wd.Generation)
	return &outcome{}, nil
}

// partRun is the state of one part in one invocation.
type partRun struct {
	m        partMessage
	windowID string
	cp       *store.Part
	from     int // records up to this line are stored already
	seen     int // last line handled in this invocation
	totals   costcsv.Totals
	ids      map[string][][16]byte // by day: every record's id, for the sweep
	bad      int
	newBad   int // lines quarantined by this invocation
	batch    []store.Cost
	writer   *store.CostWriter
	stats    store.WriteStats
	// ownScopes are the subscriptions configured as scopes of their own
	// when the window's scope is a billing scope: a line of one of them
	// means the two overlap.
	ownScopes map[string]struct{}
}

// runPart ingests one part from its checkpoint: it re-reads the part from
// the start (ids number identical lines in file order, so every line must
// be seen again), writes what follows the checkpoint in flushes of
// flushSize, checkpoints after each, and stops at the budget with a
// continuation message. The last flush keeps the part's ids for the sweep,
// records the part in the window and, if it was the last, finishes the
// window.
func (s *Server) runPart(ctx context.Context, c *call, m partMessage, deadline time.Time) (*outcome, error) {
	w := m.Window
	r := &partRun{m: m, windowID: store.WindowID(w.Scope, w.Metric, w.From, w.To), ids: map[string][][16]byte{},
		ownScopes: s.subscriptionScopes(w.Scope)}
	wd, err := s.d.Store.GetWindow(ctx, w.Scope, r.windowID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, permanent(fmt.Errorf("part %d: the window has no ledger document", m.Part))
		}
		return nil, retryable(err)
	}
	if stale(wd, m.Generation) {
		return refuse(c, wd)
	}
	c.onRetry = s.noteRetry(ctx, wd)
	if r.cp, err = s.loadCheckpoint(ctx, w.Scope, r.windowID, m); err != nil {
		return nil, err
	}
	if r.cp.Done {
		// Recorded in the window before it was marked done: a second
		// delivery, or a finish that did not happen.
		c.note("outcome_detail", "part already done")
		return s.finishIfAllIn(ctx, c, w, m.Generation, m.RunID, deadline)
	}
	r.from = max(r.cp.Line, m.Line)
	r.seen = r.from
	c.note("resumed_from_line", r.from)

	part := landing.Part{Blob: m.Blob, Container: m.Container, Format: m.Format}
	rc, err := s.d.Landing.OpenPart(ctx, part)
	if err != nil {
		return s.partFailed(ctx, wd, err)
	}
	defer rc.Close()
	counted := &countingReader{r: rc}
	rd, err := s.partReader(ctx, m.Source, part, counted, &costcsv.Options{File: m.Blob, Part: m.Part, Services: s.d.Services}) // ingestsources.go
	if err != nil {
		return s.partFailed(ctx, wd, err)
	}
	defer rd.Close()
	r.writer = s.d.Store.NewCostWriter()
	r.batch = make([]store.Cost, 0, flushSize)
	start := time.Now()
	defer func() {
		s.partMeasures(ctx, c, r, counted.n.Load(), time.Since(start))
	}()
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		var le *costcsv.LineError
		if errors.As(err, &le) {
			r.bad++
			if le.Line > r.from {
				r.newBad++
				q := store.Quarantine{Scope: w.Scope, WindowID: r.windowID, File: le.File, Line: le.Line, Column: le.Column, Reason: le.Reason, Generation: m.Generation}
				if err := s.d.Store.PutQuarantine(ctx, q); err != nil {
					return s.later(ctx, c, r.continuation(), fmt.Errorf("quarantine line %d: %w", le.Line, err))
				}
				r.seen = le.Line
			}
			continue
		}
		if err != nil {
			return s.partFailed(ctx, wd, fmt.Errorf("read %s: %w", m.Blob, err))
		}
		if _, dup := r.ownScopes[rec.SubAccountID]; dup {
			return s.fail(ctx, wd, fmt.Errorf("%s line %d: scope %s holds costs of subscription %s, which %s also names as a scope of its own: "+
				"its costs would be counted twice, so this window is refused; remove one of the two from %s",
				m.Blob, rec.Line, w.Scope, rec.SubAccountID, config.KeyScopes, config.KeyScopes))
		}
		// A line dated outside the window is kept (nothing is dropped) and
		// its day joins the sweep and the reconciliation.
		r.totals.Add(rec)
		r.ids[rec.Date] = append(r.ids[rec.Date], store.KeyOf(rec.ID))
		if rec.Line <= r.from {
			continue
		}
		r.batch = append(r.batch, store.NewCost(rec, w.Scope, w.Metric, r.windowID, m.Generation, m.Blob))
		r.seen = rec.Line
		if len(r.batch) < flushSize {
			continue
		}
		if stop, out, err := s.flush(ctx, c, r, deadline); stop {
			return out, err
		}
	}
	if len(r.batch) > 0 || r.seen > r.cp.Line {
		if stop, out, err := s.flush(ctx, c, r, time.Time{}); stop {
			return out, err
		}
	}
	return s.partIn(ctx, c, r, deadline)
}

// flush writes the batch, checkpoints, and checks that the report is still
// the window's newest; past the deadline (when set) it hands the rest of
// the part to a continuation message. stop tells the caller to end the
// invocation with out and err.
func (s *Server) flush(ctx context.Context, c *call, r *partRun, deadline time.Time) (stop bool, out *outcome, err error) {
	st, err := r.writer.Write(ctx, r.batch)
	r.stats.Add(st)
	if err != nil {
		out, err = s.later(ctx, c, r.continuation(), fmt.Errorf("write documents: %w", err))
		return true, out, err
	}
	r.batch = r.batch[:0]
	if err := s.checkpoint(ctx, r.cp, func(p *store.Part) { p.Line = max(p.Line, r.seen) }); err != nil {
		return true, nil, err
	}
	wd, err := s.d.Store.GetWindow(ctx, r.m.Window.Scope, r.windowID)
	if err != nil {
		return true, nil, retryable(err)
	}
	if stale(wd, r.m.Generation) {
		out, err = refuse(c, wd)
		return true, out, err
	}
	if !deadline.IsZero() && time.Now().After(deadline) {
		out, err := s.continuePart(ctx, c, r)
		return true, out, err
	}
	return false, nil, nil
}

// continuePart hands the rest of the part to a new message, unless another
// invocation of the part (a second delivery, or the retry of a killed
// invocation that had already sent its continuation) has sent one from the
// checkpoint already: the first to claim the checkpoint in the ledger sends,
// so duplicate chains of continuations merge instead of multiplying. A claim
// whose sender dies before sending is not lost: its own message is retried
// and claims again further on.
func (s *Server) continuePart(ctx context.Context, c *call, r *partRun) (*outcome, error) {
	claimed := false
	if err := s.checkpoint(ctx, r.cp, func(p *store.Part) {
		claimed = p.Sent < p.Line
		p.Sent = p.Line
	}); err != nil {
		return nil, err
	}
	if !claimed {
		c.note("outcome_detail", "another invocation continues this part")
		return &outcome{}, nil
	}
	if err := s.send(ctx, queue.Parts, r.continuation(), 0); err != nil {
		return nil, retryable(err)
	}
	c.requeue(0, "budget spent, continues in a cost-parts message")
	return &outcome{}, nil
}

// continuation is the message that resumes the part from its checkpoint.
func (r *partRun) continuation() partMessage {
	next := r.m
	next.Step, next.Line = stepPart, r.cp.Line
	return next
}

// partIn keeps the part's ids for the sweep, records the part and its
// source totals in the window, marks the checkpoint done, and finishes the
// window if this was its last part.
func (s *Server) partIn(ctx context.Context, c *call, r *partRun, deadline time.Time) (*outcome, error) {
	w, gen := r.m.Window, r.m.Generation
	for date, ids := range r.ids {
		if err := s.d.Landing.PutIDs(ctx, w, gen, r.m.Part, date, ids); err != nil {
			return nil, retryable(err)
		}
	}
	days := toStoreDays(r.totals.ByDayCurrency())
	wd, err := s.changeWindow(ctx, w, func(x *store.Window) (bool, error) {
		switch {
		case stale(x, gen):
			return false, errStale
		case x.PartsGeneration != gen:
			return false, fmt.Errorf("part %d of generation %d: the window counts parts of generation %d", r.m.Part, gen, x.PartsGeneration)
		case slices.Contains(x.PartsIn, r.m.Part):
			return false, nil // recorded by another delivery of this part
		}
		x.PartsIn = append(x.PartsIn, r.m.Part)
		slices.Sort(x.PartsIn)
		x.PartsDone = len(x.PartsIn)
		x.Days = mergeDays(x.Days, days)
		x.Rows += int64(r.totals.Rows())
		x.Quarantined += r.bad
		return true, nil
	})
	if errors.Is(err, errStale) {
		return refuse(c, wd)
	}
	if err != nil {
		return nil, err
	}
	if err := s.checkpoint(ctx, r.cp, func(p *store.Part) { p.Done, p.Rows = true, int64(r.totals.Rows()) }); err != nil {
		return nil, err
	}
	c.note("parts_in", len(wd.PartsIn), "parts_total", wd.PartsTotal)
	if len(wd.PartsIn) < wd.PartsTotal {
		return &outcome{}, nil
	}
	return s.finishWindow(ctx, c, w, gen, r.m.RunID, 0, deadline)
}

// finishIfAllIn finishes the window when every part of gen is in.
func (s *Server) finishIfAllIn(ctx context.Context, c *call, w window.Window, gen int64, runID string, deadline time.Time) (*outcome, error) {
	wd, err := s.d.Store.GetWindow(ctx, w.Scope, store.WindowID(w.Scope, w.Metric, w.From, w.To))
	if err != nil {
		return nil, retryable(err)
	}
	if stale(wd, gen) {
		return refuse(c, wd)
	}
	if wd.PartsGeneration != gen || len(wd.PartsIn) < wd.PartsTotal || wd.State == store.StateComplete {
		return &outcome{}, nil
	}
	return s.finishWindow(ctx, c, w, gen, runID, 0, deadline)
}

// finishWindow runs once every part of generation gen is in: day by day
// from day index from, it deletes the documents of older generations that
// the report does not have, and checks the rows and exact totals in Cosmos
// against the source totals in the ledger; past the deadline it continues
// in a finish message. Then it marks the window complete with a conditional
// write, so that however many invocations finish at once (the last two
// parts, a second delivery), exactly one completes it. Running it again is
// harmless: every step is idempotent.
func (s *Server) finishWindow(ctx context.Context, c *call, w window.Window, gen int64, runID string, from int, deadline time.Time) (*outcome, error) {
	id := store.WindowID(w.Scope, w.Metric, w.From, w.To)
	wd, err := s.d.Store.GetWindow(ctx, w.Scope, id)
	if err != nil {
		return nil, retryable(err)
	}
	switch {
	case stale(wd, gen):
		return refuse(c, wd)
	case wd.PartsGeneration != gen:
		return nil, retryable(fmt.Errorf("finish generation %d: the window counts parts of generation %d", gen, wd.PartsGeneration))
	case wd.State == store.StateComplete:
		c.note("outcome_detail", "already complete")
		return &outcome{}, nil
	case len(wd.PartsIn) < wd.PartsTotal:
		return nil, retryable(fmt.Errorf("finish generation %d: %d of %d parts are in", gen, len(wd.PartsIn), wd.PartsTotal))
	}
	days := w.Days()
	for _, d := range wd.Days {
		days = append(days, d.Date)
	}
	slices.Sort(days)
	days = slices.Compact(days)
	swept := 0
	defer func() { s.tel().Documents(ctx, w.Scope, telemetry.DocDeleted, swept) }()
	for i := from; i < len(days); i++ {
		day := days[i]
		msg := partMessage{Version: messageVersion, Step: stepFinish, Window: w, Generation: gen, Day: i, RunID: runID}
		keep := store.IDSet{}
		if err := s.d.Landing.ReadIDs(ctx, w, gen, day, func(id [16]byte) { keep[id] = struct{}{} }); err != nil {
			return nil, retryable(err)
		}
		n, err := s.d.Store.SweepDay(ctx, w.Scope, w.Metric, day, gen, keep)
		swept += n
		if err != nil {
			return s.later(ctx, c, msg, fmt.Errorf("sweep older generations: %w", err))
		}
		stored, err := s.d.Store.CountWindow(ctx, w.Scope, w.Metric, []string{day})
		if err != nil {
			return s.later(ctx, c, msg, fmt.Errorf("count stored documents: %w", err))
		}
		source := slices.DeleteFunc(slices.Clone(wd.Days), func(d store.DayTotal) bool { return d.Date != day })
		if diff := reconcile(source, stored); diff != "" {
			// A writer of an older delivery may still be at work: retry,
			// and the host poisons the message if it never reconciles.
			return nil, retryable(fmt.Errorf("reconcile %s: documents do not match the source: %s", day, diff))
		}
		if i+1 < len(days) && time.Now().After(deadline) {
			msg.Day = i + 1
			if err := s.send(ctx, queue.Parts, msg, 0); err != nil {
				return nil, retryable(err)
			}
			c.note("swept", swept)
			c.requeue(0, "budget spent, finish continues in a cost-parts message")
			return &outcome{}, nil
		}
	}
	completed := false
	wd, err = s.changeWindow(ctx, w, func(x *store.Window) (bool, error) {
		completed = false // a lost race is read again
		switch {
		case stale(x, gen):
			return false, errStale
		case x.State == store.StateComplete:
			return false, nil
		}
		completed = true
		x.State, x.PartsDone, x.Totals = store.StateComplete, len(x.PartsIn), currencyTotals(x.Days)
		return true, nil
	})
	if errors.Is(err, errStale) {
		return refuse(c, wd)
	}
	if err != nil {
		return nil, err
	}
	c.note("swept", swept, "window_completed", completed)
	if completed {
		s.windowComplete(ctx, wd)
	}
	return &outcome{}, nil
}

// windowComplete records a window this invocation completed: the windows
// metric and the scope's freshness.
func (s *Server) windowComplete(ctx context.Context, wd *store.Window) {
	at := wd.LastSuccessAt
	if at.IsZero() {
		at = wd.UpdatedAt
	}
	s.tel().Window(ctx, wd.Scope, wd.Metric, telemetry.WindowComplete, s.d.Now().Sub(at))
}

// partMeasures notes what a part invocation did on its summary line and
// records it in the metrics: rows parsed and their rate, bytes read,
// documents written, skipped as unchanged or stale, lines quarantined.
func (s *Server) partMeasures(ctx context.Context, c *call, r *partRun, bytes int64, elapsed time.Duration) {
	scope, source := r.m.Window.Scope, r.m.Source
	if source == "" {
		source = landing.SourceCostDetails
	}
	c.inv.AddBytes(bytes)
	t := s.tel()
	t.RowsParsed(ctx, scope, source, r.totals.Rows(), elapsed)
	t.Documents(ctx, scope, telemetry.DocWritten, r.stats.Written)
	t.Documents(ctx, scope, telemetry.DocUnchanged, r.stats.Skipped)
	t.Documents(ctx, scope, telemetry.DocStale, r.stats.Stale)
	t.Quarantined(ctx, scope, r.newBad)
	c.note("written", r.stats.Written, "skipped", r.stats.Skipped, "stale", r.stats.Stale,
		"quarantined", r.bad, "checkpoint_line", r.cp.Line, "request_charge", r.stats.RequestCharge)
}

// subscriptionScopes returns the ids of the configured subscription scopes
// when scope is a billing scope, nil otherwise. A subscription's path does
// not name its billing account, so configuration cannot tell whether it is
// inside a configured billing scope (costapi.Overlap only warns); the
// billing scope's report tells, line by line, and such a window is refused
// rather than counted twice.
func (s *Server) subscriptionScopes(scope string) map[string]struct{} {
	if s.d.Config == nil {
		return nil
	}
	if sc, err := costapi.ParseScope(scope); err != nil || sc.IsSubscription() {
		return nil
	}
	var out map[string]struct{}
	for _, sc := range s.d.Config.Scopes {
		if id := sc.SubscriptionID(); id != "" {
			if out == nil {
				out = map[string]struct{}{}
			}
			out[id] = struct{}{}
		}
	}
	return out
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64 // the parser reads ahead on a goroutine of its own
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// later is the answer to a store error in the middle of ingestion: when
// Cosmos DB asked to wait (429 or 503 beyond what the SDK and the store
// retry), next is sent with that delay and the invocation ends well;
// otherwise the host retries the invocation.
func (s *Server) later(ctx context.Context, c *call, next partMessage, cause error) (*outcome, error) {
	wait, ok := store.RetryAfter(cause)
	if !ok {
		return nil, retryable(cause)
	}
	wait = max(wait, time.Second)
	if err := s.send(ctx, queue.Parts, next, wait); err != nil {
		return nil, retryable(fmt.Errorf("%w (and re-enqueue failed: %w)", cause, err))
	}
	var re *azcore.ResponseError
	if errors.As(cause, &re) && re.StatusCode == http.StatusTooManyRequests {
		s.tel().Throttled(ctx, telemetry.APICosmos, wait)
	}
	c.requeue(wait, "cosmos asked to wait; continues in a delayed cost-parts message")
	c.note("cause", cause.Error())
	return &outcome{}, nil
}

// partFailed records a part that cannot be read (a bad header, a missing
// blob) as a permanent failure of the window, and retries anything else.
func (s *Server) partFailed(ctx context.Context, wd *store.Window, err error) (*outcome, error) {
	var he *costcsv.HeaderError
	// A corrupt file (gzip, Parquet, an open quote) reads the same way again.
	if errors.As(err, &he) || errors.Is(err, costcsv.ErrCorrupt) || landing.IsPermanent(err) {
		return s.fail(ctx, wd, err)
	}
	return nil, retryable(err)
}

// loadCheckpoint reads the part's checkpoint, creating it when absent.
func (s *Server) loadCheckpoint(ctx context.Context, scope, windowID string, m partMessage) (*store.Part, error) {
	id := store.PartID(windowID, m.Generation, m.Part)
	cp, err := s.d.Store.GetPart(ctx, scope, id)
	if err == nil {
		return cp, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, retryable(err)
	}
	cp = &store.Part{Scope: scope, WindowID: windowID, Generation: m.Generation, Index: m.Part, Blob: m.Blob}
	err = s.d.Store.PutPart(ctx, cp)
	if errors.Is(err, store.ErrConflict) {
		cp, err = s.d.Store.GetPart(ctx, scope, id)
	}
	if err != nil {
		return nil, retryable(err)
	}
	return cp, nil
}

// maxLedgerAttempts bounds the read-change-write rounds of one conditional
// update: every round that loses has seen another writer win, so this many
// rounds cover that many parts finishing at the same moment.
const maxLedgerAttempts = 50

// checkpoint applies change to the part's checkpoint with optimistic
// concurrency. change must be monotonic (a line only grows, done stays
// done), so that a second worker on the same part cannot move it back.
func (s *Server) checkpoint(ctx context.Context, cp *store.Part, change func(*store.Part)) error {
	for range maxLedgerAttempts {
		change(cp)
		err := s.d.Store.PutPart(ctx, cp)
		if !errors.Is(err, store.ErrPrecondition) {
			if err != nil {
				return retryable(fmt.Errorf("checkpoint part %d: %w", cp.Index, err))
			}
			return nil
		}
		fresh, err := s.d.Store.GetPart(ctx, cp.Scope, cp.ID)
		if err != nil {
			return retryable(fmt.Errorf("checkpoint part %d: %w", cp.Index, err))
		}
		*cp = *fresh
	}
	return retryable(fmt.Errorf("checkpoint part %d: too many concurrent writers", cp.Index))
}

// changeWindow reads the window's ledger document and applies change with
// optimistic concurrency until a write wins; change tells whether there is
// anything to write. It returns the document as last read or written, and
// change's error.
func (s *Server) changeWindow(ctx context.Context, w window.Window, change func(*store.Window) (bool, error)) (*store.Window, error) {
	id := store.WindowID(w.Scope, w.Metric, w.From, w.To)
	for range maxLedgerAttempts {
		wd, err := s.d.Store.GetWindow(ctx, w.Scope, id)
		if err != nil {
			return nil, retryable(fmt.Errorf("read ledger %s: %w", id, err))
		}
		write, err := change(wd)
		if err != nil || !write {
			return wd, err
		}
		wd.UpdatedAt = s.d.Now().UTC()
		err = s.d.Store.ReplaceWindow(ctx, wd)
		if err == nil {
			return wd, nil
		}
		if !errors.Is(err, store.ErrPrecondition) {
			return nil, retryable(fmt.Errorf("update ledger %s: %w", id, err))
		}
	}
	return nil, retryable(fmt.Errorf("update ledger %s: too many concurrent writers", id))
}

// mergeDays adds b's rows and totals to a's, per day and currency.
func mergeDays(a, b []store.DayTotal) []store.DayTotal {
	out := slices.Clone(a)
	for _, d := range b {
		i := slices.IndexFunc(out, func(o store.DayTotal) bool { return o.Date == d.Date && o.Currency == d.Currency })
		if i < 0 {
			out = append(out, d)
			continue
		}
		out[i].Rows += d.Rows
		out[i].BilledCost = out[i].BilledCost.Add(d.BilledCost)
	}
	slices.SortFunc(out, func(x, y store.DayTotal) int {
		if c := strings.Compare(x.Date, y.Date); c != 0 {
			return c
		}
		return strings.Compare(x.Currency, y.Currency)
	})
	return out
}
