// Package handlers is the HTTP server the Functions host calls: one route per
// function (the function's folder name), each decoding the host's real
// payload with package invocation. One adapter turns every handler's result
// into the host's response and logs each invocation once; one classifier
// decides whether an error is worth a retry (non-2xx: the host retries) or
// permanent (recorded, answered 200 so the host does not retry for nothing).
package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

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

// CostAPI is what the handlers need of Cost Management.
type CostAPI interface {
	RequestReport(ctx context.Context, scope costapi.Scope, r costapi.ReportRequest) (*costapi.Report, error)
	PollReport(ctx context.Context, scope costapi.Scope, location string) (*costapi.Report, error)
	OpenBlob(ctx context.Context, link string) (io.ReadCloser, error)
}

// Landing is what the handlers need of our report storage.
type Landing interface {
	PutPart(ctx context.Context, w window.Window, generation int64, index int, r io.Reader) (landing.Part, error)
	PutManifest(ctx context.Context, m *landing.Manifest) (string, error)
	OpenPart(ctx context.Context, p landing.Part) (io.ReadCloser, error)
	PutIDs(ctx context.Context, w window.Window, generation int64, part int, date string, ids [][16]byte) error
	ReadIDs(ctx context.Context, w window.Window, generation int64, date string, each func(id [16]byte)) error
}

// Store is what the handlers need of Cosmos DB.
type Store interface {
	NewCostWriter() *store.CostWriter
	GetWindow(ctx context.Context, scope, id string) (*store.Window, error)
	CreateWindow(ctx context.Context, w *store.Window) error
	ReplaceWindow(ctx context.Context, w *store.Window) error
	GetPart(ctx context.Context, scope, id string) (*store.Part, error)
	PutPart(ctx context.Context, p *store.Part) error
	SweepDay(ctx context.Context, scope, metric, date string, gen int64, keep store.IDSet) (int, error)
	CountWindow(ctx context.Context, scope, metric string, dates []string) ([]store.DayTotal, error)
	PutQuarantine(ctx context.Context, q store.Quarantine) error
	Ledger
}

// Queue sends our own messages, with a delay when waiting is needed.
type Queue interface {
	Send(ctx context.Context, queue string, v any, delay time.Duration) error
}

// Deps are the clients the handlers use, built once in main.
type Deps struct {
	Config   *config.Config
	Cost     CostAPI
	Landing  Landing
	Store    Store
	Queue    Queue
	Services *costcsv.Services // FinOps service lookup; nil leaves service fields empty
	Log      *slog.Logger
	// Telemetry records traces and metrics; nil is off (telemetry.Off).
	Telemetry *telemetry.Telemetry
	// Now is the clock; nil means Config.Now.
	Now func() time.Time
	// Wall is the clock that the service's own timestamps (a report's
	// validTill) are compared with: the real time even when Config.Today
	// moves the planning date; nil means time.Now. A simulated service
	// clock (costsim -clock) needs the same simulated clock here.
	Wall func() time.Time

	// Sources are the clients of the Query, usage details and usage
	// aggregates sources (sources.go); nil refuses their windows and lets a
	// Cost Details 422 fail the window.
	Sources *Sources
}

// Server serves the functions.
type Server struct {
	d   Deps
	mux *http.ServeMux
}

// New builds the handler server.
func New(d Deps) *Server {
	if d.Log == nil {
		d.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if d.Wall == nil {
		d.Wall = time.Now
	}
	if d.Telemetry == nil {
		d.Telemetry = telemetry.Off()
	}
	if d.Now == nil {
		d.Now = d.Config.Now
	}
	s := &Server{d: d, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	s.mux.Handle("POST /PlanWindows", s.adapt("PlanWindows", s.planWindows))
	s.mux.Handle("POST /ProcessWindow", s.adapt("ProcessWindow", s.processWindow))
	s.mux.Handle("POST /IngestManifest", s.adapt("IngestManifest", s.ingestManifest))
	s.mux.Handle("POST /IngestPart", s.adapt("IngestPart", s.ingestPart))
	s.mux.Handle("POST /IngestHttp", s.adapt("IngestHttp", s.ingestHTTP))
	s.mux.Handle("POST /RunStatus", s.adapt("RunStatus", s.runStatus))
	s.mux.Handle("POST /Coverage", s.adapt("Coverage", s.coverage))
	s.mux.Handle("POST /RecordPoison", s.adapt("RecordPoison", s.recordPoison(queue.Windows)))
	s.mux.Handle("POST /RecordPartPoison", s.adapt("RecordPartPoison", s.recordPoison(queue.Parts)))
	s.mux.Handle("POST /RecordBlobPoison", s.adapt("RecordBlobPoison", s.recordBlobPoison))
	s.mux.Handle("POST /IngestExport", s.adapt("IngestExport", s.ingestExport))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// call is one invocation as a function sees it.
type call struct {
	req *invocation.Request
	// log is the invocation's logger, with every attribute tag added.
	log *slog.Logger
	inv *telemetry.Invocation
	// attrs are added to the invocation's summary line.
	attrs []any
	// requeued is set when the invocation sent its own message back to the
	// queue to wait (or to continue) instead of finishing: its outcome.
	requeued bool
	delay    time.Duration
	// onRetry, when set, records an error the host will retry for (so that
	// RecordPoison can name the last error of a poisoned message).
	onRetry func(err error)
}

func (c *call) note(args ...any) { c.attrs = append(c.attrs, args...) }

// tag adds attributes (scope, window, run_id, part, ...) to every later log
// line of the invocation, deep inside included, and to its span.
func (c *call) tag(args ...any) { c.log = c.inv.Tag(args...) }

// requeue records that the invocation re-enqueued its message with delay:
// its outcome is "re-enqueued with delay", and why is noted.
func (c *call) requeue(delay time.Duration, why string) {
	c.requeued, c.delay = true, max(c.delay, delay)
	c.note("outcome_detail", why)
}

// outcome is what a function returns: the outputs for the host.
type outcome struct {
	outputs map[string]any
}

type fn func(ctx context.Context, c *call) (*outcome, error)

// maxPayload bounds what the host may send: manifests are small; report
// content is never sent through the host.
const maxPayload = 8 << 20

func (s *Server) adapt(name string, f fn) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Azure-Functions-InvocationId")
		body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
		var req *invocation.Request
		switch {
		case err != nil:
			err = retryable(fmt.Errorf("read invocation payload: %w", err))
		case len(body) > maxPayload:
			err = permanent(fmt.Errorf("invocation payload over %d bytes", maxPayload))
		default:
			if req, err = invocation.Decode(body); err != nil {
				err = permanent(err)
			}
		}
		ctx, inv := s.d.Telemetry.Begin(r.Context(), name, id, traceparentOf(req), s.d.Log)
		c := &call{req: req, log: inv.Logger(), inv: inv}
		var out *outcome
		if err == nil {
			out, err = f(ctx, c)
		}
		resp := invocation.Response{Outputs: map[string]any{}, Logs: []string{}}
		if out != nil && out.outputs != nil {
			resp.Outputs = out.outputs
		}
		result := telemetry.OutcomeDone
		switch {
		case err != nil && isRetryable(err):
			result = telemetry.OutcomeRetry
		case err != nil:
			result = telemetry.OutcomePermanent
		case c.requeued:
			result = telemetry.OutcomeRequeued
		}
		attrs := inv.End(ctx, result, err)
		if c.requeued && err == nil {
			attrs = append(attrs, "delay_s", c.delay.Seconds())
		}
		attrs = append(attrs, c.attrs...)
		status := http.StatusOK
		switch result {
		case telemetry.OutcomeDone, telemetry.OutcomeRequeued:
			c.log.Info("invocation "+result, attrs...)
		case telemetry.OutcomeRetry:
			// Non-2xx: the host fails the invocation and retries it.
			status = http.StatusInternalServerError
			c.log.Warn("invocation failed, host will retry", append(attrs, "error", err.Error())...)
			if c.onRetry != nil {
				c.onRetry(err)
			}
			resp.Logs = append(resp.Logs, err.Error())
		default:
			// Permanent: retrying cannot help; the error is recorded where
			// the function could (the ledger) and the host is told success.
			c.log.Error("invocation failed permanently", append(attrs, "error", err.Error())...)
			resp.Logs = append(resp.Logs, err.Error())
			if _, has := resp.Outputs["res"]; !has && c.req != nil && c.req.Data["req"] != nil {
				resp.Outputs["res"] = jsonResponse(http.StatusBadRequest, map[string]string{"error": err.Error()})
			}
		}
		s.flushTelemetry(r.Context(), c)
		writeJSON(w, status, resp)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"Outputs":{},"Logs":["encode response failed"],"ReturnValue":null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// jsonResponse is an http output binding value with a JSON body.
func jsonResponse(status int, body any) invocation.HTTPResponse {
	return invocation.HTTPResponse{StatusCode: status, Body: body, Headers: map[string]string{"Content-Type": "application/json"}}
}

// errKind marks an error retryable or permanent for the adapter.
type errKind struct {
	err   error
	retry bool
}

func (e *errKind) Error() string { return e.err.Error() }
func (e *errKind) Unwrap() error { return e.err }

func retryable(err error) error { return &errKind{err: err, retry: true} }
func permanent(err error) error { return &errKind{err: err, retry: false} }

// isRetryable is the one classifier: explicit marks first, then the facts
// lower packages report (network, timeouts, 408/429/5xx retry; bad input,
// 400/401/403/404/422 do not).
func isRetryable(err error) bool {
	var k *errKind
	if errors.As(err, &k) {
		return k.retry
	}
	if e, ok := costapi.AsError(err); ok {
		return e.Retryable
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if landing.IsPermanent(err) {
		return false
	}
	var ce *costcsv.HeaderError
	if errors.As(err, &ce) {
		return false
	}
	// Storage and Cosmos errors not known to be permanent: retry.
	return true
}
