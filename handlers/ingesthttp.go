package handlers

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// ingestRequest is the body of POST /api/ingest. It decodes strictly.
type ingestRequest struct {
	Scopes  []string `json:"scopes"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	Metrics []string `json:"metrics"`
	DryRun  bool     `json:"dryRun"`
	// IdempotencyKey may also come as the Idempotency-Key header.
	IdempotencyKey string `json:"idempotencyKey"`
}

// ingestAnswer is the 202 (or dry-run 200) body.
type ingestAnswer struct {
	RunID     string `json:"runId,omitempty"`
	StatusURL string `json:"statusUrl,omitempty"`
	Windows   int    `json:"windows"`
	Requests  int    `json:"requests"`
	// Estimate is how long the report requests take at the configured
	// Cost Details quota (by default the documented one), scopes in
	// parallel; EstimateSeconds is the same in seconds.
	Estimate        string `json:"estimate"`
	EstimateSeconds int64  `json:"estimateSeconds"`
	DryRun          bool   `json:"dryRun,omitempty"`
	// Existing is true when an idempotency key named a run that existed.
	Existing bool `json:"existing,omitempty"`
}

// idempotencyHeader is the header that may carry the idempotency key.
const idempotencyHeader = "Idempotency-Key"

// maxKeyLength bounds an idempotency key.
const maxKeyLength = 200

// ingestHTTP validates an on-demand ingestion or backfill, splits it into
// windows of at most one calendar month, records the run in the ledger,
// enqueues its windows and answers 202 with the run id and its status URL.
// A dry run answers how many report requests it would make and how long
// they take at the quota. The same idempotency key returns the same run; a
// run whose windows were not all enqueued (a failure half-way) is
// completed by the repeated request.
func (s *Server) ingestHTTP(ctx context.Context, c *call) (*outcome, error) {
	h, err := c.req.HTTPTrigger("req")
	if err != nil {
		return nil, permanent(err)
	}
	bad := func(format string, args ...any) (*outcome, error) { return rejected(c, format, args...) }
	if !strings.EqualFold(h.Method, http.MethodPost) {
		return bad("method %s: POST a JSON body to /api/ingest", h.Method)
	}
	var r ingestRequest
	dec := json.NewDecoder(bytes.NewReader([]byte(h.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return bad("invalid body: %v (want {\"scopes\": [...], \"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\", \"metrics\": [\"ActualCost\"], \"dryRun\": false, \"idempotencyKey\": \"...\"})", err)
	}
	if dec.More() {
		return bad("invalid body: more than one JSON value")
	}
	key := strings.TrimSpace(h.Header(idempotencyHeader))
	switch {
	case key != "" && r.IdempotencyKey != "" && key != r.IdempotencyKey:
		return bad("the %s header %q and the body's idempotencyKey %q differ", idempotencyHeader, key, r.IdempotencyKey)
	case key == "":
		key = strings.TrimSpace(r.IdempotencyKey)
	}
	if len(key) > maxKeyLength {
		return bad("idempotency key of %d characters; at most %d", len(key), maxKeyLength)
	}
	cfg := s.d.Config
	configured := map[string]costapi.Scope{}
	for _, sc := range cfg.Scopes {
		configured[sc.Key()] = sc
	}
	var scopes []costapi.Scope
	if len(r.Scopes) == 0 {
		scopes = cfg.Scopes
	}
	for _, raw := range r.Scopes {
		sc, err := costapi.ParseScope(raw)
		if err != nil {
			return bad("%v", err)
		}
		known, ok := configured[sc.Key()]
		if !ok {
			return bad("scope %q is not configured (COSTSYNC_SCOPES); only configured scopes can be ingested", raw)
		}
		if slices.ContainsFunc(scopes, func(x costapi.Scope) bool { return x.Key() == known.Key() }) {
			return bad("scope %q is listed twice", raw)
		}
		scopes = append(scopes, known)
	}
	if r.From == "" || r.To == "" {
		return bad("from and to are required, as YYYY-MM-DD (to inclusive)")
	}
	from, err := window.ParseDate(r.From)
	if err != nil {
		return bad("from: %v", err)
	}
	to, err := window.ParseDate(r.To)
	if err != nil {
		return bad("to: %v", err)
	}
	now := s.d.Now().UTC()
	today := window.Day(now)
	oldest := window.Oldest(now)
	switch {
	case to.Before(from):
		return bad("to %s is before from %s", r.To, r.From)
	case to.After(today):
		return bad("to %s is in the future (today is %s)", r.To, today.Format(window.DateLayout))
	case from.Before(oldest):
		return bad("from %s is more than %d months back; Cost Details serves data from %s on (use exports for older history)", r.From, window.HistoryMonths, oldest.Format(window.DateLayout))
	}
	metrics := slices.Clone(r.Metrics)
	if len(metrics) == 0 {
		metrics = cfg.Metrics
	}
	for i, m := range metrics {
		switch strings.ToLower(m) {
		case "actualcost":
			metrics[i] = "ActualCost"
		case "amortizedcost":
			metrics[i] = "AmortizedCost"
		default:
			return bad("metric %q is not ActualCost or AmortizedCost", m)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(metrics)))) != len(metrics) {
		return bad("a metric is listed twice in %v", r.Metrics)
	}

	run := &store.Run{IdempotencyKey: key, CreatedAt: now, Request: store.RunRequest{From: r.From, To: r.To, Metrics: metrics}}
	for _, sc := range scopes {
		run.Request.Scopes = append(run.Request.Scopes, sc.Path)
		for _, m := range metrics {
			for _, w := range window.Split(sc.Path, m, from, to) {
				run.Windows = append(run.Windows, store.RunWindow{Scope: w.Scope, Metric: w.Metric, From: w.From, To: w.To, WindowID: store.WindowID(w.Scope, w.Metric, w.From, w.To)})
			}
		}
	}
	est := s.estimate(scopes, len(metrics), from, to)
	ans := ingestAnswer{Windows: len(run.Windows), Requests: len(run.Windows), DryRun: r.DryRun,
		Estimate: est.String(), EstimateSeconds: int64(est / time.Second)}
	if r.DryRun {
		c.note("windows", len(run.Windows), "dry_run", true)
		return &outcome{outputs: map[string]any{"res": jsonResponse(http.StatusOK, ans)}}, nil
	}

	if key != "" {
		sum := sha256.Sum256([]byte(key))
		run.ID = "run-" + hex.EncodeToString(sum[:])[:20]
	} else {
		run.ID = newRunID()
	}
	stored, existing, err := s.createRun(ctx, run)
	if err != nil {
		return nil, err
	}
	c.tag("run_id", stored.ID)
	if existing && !sameRequest(stored, run) {
		return bad("idempotency key %q was used for another request (run %s: scopes %v, metrics %v, %s to %s); use a new key", key, stored.ID, stored.Request.Scopes, stored.Request.Metrics, stored.Request.From, stored.Request.To)
	}
	if !stored.Enqueued {
		if err := s.enqueueRun(ctx, stored); err != nil {
			return nil, err
		}
	}
	ans.RunID, ans.StatusURL, ans.Existing = stored.ID, statusURL(h.URL, stored.ID), existing
	c.note("windows", len(stored.Windows), "existing", existing)
	res := jsonResponse(http.StatusAccepted, ans)
	res.Headers["Location"] = ans.StatusURL
	return &outcome{outputs: map[string]any{"res": res}}, nil
}

// createRun stores a new run, or returns the run its id names already.
func (s *Server) createRun(ctx context.Context, run *store.Run) (*store.Run, bool, error) {
	err := s.d.Store.CreateRun(ctx, run)
	if err == nil {
		return run, false, nil
	}
	if !errors.Is(err, store.ErrConflict) {
		return nil, false, retryable(fmt.Errorf("record run %s: %w", run.ID, err))
	}
	stored, err := s.d.Store.GetRun(ctx, run.ID)
	if err != nil {
		return nil, false, retryable(fmt.Errorf("read run %s: %w", run.ID, err))
	}
	return stored, true, nil
}

// enqueueRun sends one request message per window of the run and marks it
// enqueued. Sending again after a failure half-way only requests a window
// a second time, which its generation makes harmless.
func (s *Server) enqueueRun(ctx context.Context, run *store.Run) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, w := range run.Windows {
		g.Go(func() error {
			m := windowMessage{Version: messageVersion, Window: window.Window{Scope: w.Scope, Metric: w.Metric, From: w.From, To: w.To}, Step: stepRequest, RunID: run.ID}
			// Each window has a trace of its own, linked to this request's.
			m.Trace = s.tel().NewTrace(gctx, "IngestHttp window", "scope", w.Scope, "window", w.From+".."+w.To, "metric", w.Metric, "run_id", run.ID)
			return s.d.Queue.Send(gctx, queue.Windows, m, 0)
		})
	}
	if err := g.Wait(); err != nil {
		return retryable(fmt.Errorf("enqueue the windows of run %s: %w", run.ID, err))
	}
	run.Enqueued = true
	if err := s.d.Store.ReplaceRun(ctx, run); err != nil && !errors.Is(err, store.ErrPrecondition) {
		// Another delivery of the same request marked it first: fine.
		return retryable(fmt.Errorf("mark run %s enqueued: %w", run.ID, err))
	}
	return nil
}

// sameRequest tells whether a stored run answers the same request.
func sameRequest(a, b *store.Run) bool {
	return slices.Equal(a.Request.Scopes, b.Request.Scopes) && slices.Equal(a.Request.Metrics, b.Request.Metrics) &&
		a.Request.From == b.Request.From && a.Request.To == b.Request.To
}

// newRunID is a random run id.
func newRunID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "run-" + hex.EncodeToString(b)
}

// statusURL is the run's status endpoint next to the ingest endpoint the
// request came to (…/api/ingest → …/api/runs/{id}).
func statusURL(reqURL, id string) string {
	u, err := url.Parse(reqURL)
	if err != nil || u.Host == "" {
		return "/api/runs/" + id
	}
	base := strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/ingest")
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: base + "/runs/" + id}).String()
}

// estimate is how long the report requests of a backfill take at the
// governor's limits: per bucket, n calls at N per period take (n-1)/N
// periods; scopes run in parallel but share the tenant, billing account
// and client buckets.
func (s *Server) estimate(scopes []costapi.Scope, metrics int, from, to time.Time) time.Duration {
	calls := map[string]int{}
	limits := map[string][]store.Limit{}
	for _, sc := range scopes {
		n := len(window.Split(sc.Path, "", from, to)) * metrics
		for _, b := range s.buckets(sc) {
			calls[b.Key] += n
			limits[b.Key] = b.Limits
		}
	}
	var longest time.Duration
	for k, n := range calls {
		for _, l := range limits[k] {
			longest = max(longest, time.Duration((n-1)/l.Calls)*l.Per)
		}
	}
	return longest
}
