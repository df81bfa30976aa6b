package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Outcomes of an invocation, as its summary line and MetricInvocations say.
const (
	OutcomeDone      = "done"
	OutcomeRequeued  = "re-enqueued with delay"
	OutcomePermanent = "permanent failure"
	OutcomeRetry     = "retry"
)

// Invocation is one function invocation: its logger (every line of the
// invocation carries its attributes), its span, and the counts its summary
// line reports. It is safe for concurrent use.
type Invocation struct {
	t        *Telemetry
	function string
	start    time.Time
	span     trace.Span

	mu  sync.Mutex
	log *slog.Logger

	rows, bytes, pages, apiCalls, throttled, throttleWait atomic.Int64
}

type invocationKey struct{}

// From returns the invocation ctx belongs to, or nil.
func From(ctx context.Context) *Invocation {
	inv, _ := ctx.Value(invocationKey{}).(*Invocation)
	return inv
}

// Logger returns the logger of the invocation ctx belongs to, with every
// attribute it was tagged with; outside an invocation, a logger that
// discards.
func Logger(ctx context.Context) *slog.Logger {
	if inv := From(ctx); inv != nil {
		return inv.Logger()
	}
	return discard
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

var propagator = propagation.TraceContext{}

// Traceparent returns the W3C traceparent of the span ctx carries, to send
// along with a message; "" when there is none (telemetry off and no trace
// received).
func Traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}

// withParent returns ctx with the remote span of traceparent as parent; an
// empty or malformed value leaves ctx as it is.
func withParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// Begin starts an invocation of function: a span, child of traceparent
// when the trigger carried one (a message's or a manifest's trace), and a
// logger with the function, the invocation id and the trace. The returned
// context carries it (see From).
func (t *Telemetry) Begin(ctx context.Context, function, invocationID, traceparent string, log *slog.Logger) (context.Context, *Invocation) {
	ctx, span := t.tracer.Start(withParent(ctx, traceparent), function, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("faas.name", function), attribute.String("faas.invocation_id", invocationID)))
	log = log.With("function", function, "invocation_id", invocationID)
	if sc := span.SpanContext(); sc.IsValid() {
		log = log.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	}
	inv := &Invocation{t: t, function: function, start: time.Now(), span: span, log: log}
	return context.WithValue(ctx, invocationKey{}, inv), inv
}

// Logger returns the invocation's logger.
func (inv *Invocation) Logger() *slog.Logger {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.log
}

// Tag adds attributes (key, value pairs, as slog takes them) to every later
// line of the invocation and to its span (as costsync.KEY).
func (inv *Invocation) Tag(args ...any) *slog.Logger {
	inv.mu.Lock()
	inv.log = inv.log.With(args...)
	log := inv.log
	inv.mu.Unlock()
	var kv []attribute.KeyValue
	for i := 0; i+1 < len(args); i += 2 {
		k, ok := args[i].(string)
		if !ok {
			continue
		}
		k = "costsync." + k
		switch v := args[i+1].(type) {
		case string:
			kv = append(kv, attribute.String(k, v))
		case int:
			kv = append(kv, attribute.Int(k, v))
		case int64:
			kv = append(kv, attribute.Int64(k, v))
		case bool:
			kv = append(kv, attribute.Bool(k, v))
		default:
			kv = append(kv, attribute.String(k, fmt.Sprint(v)))
		}
	}
	inv.span.SetAttributes(kv...)
	return log
}

// AddBytes counts bytes the invocation copied or read.
func (inv *Invocation) AddBytes(n int64) { inv.bytes.Add(n) }

// AddPages counts pages of a paged API the invocation fetched.
func (inv *Invocation) AddPages(n int) { inv.pages.Add(int64(n)) }

// Span is the invocation's span.
func (inv *Invocation) Span() trace.Span { return inv.span }

// End ends the invocation with its outcome (Outcome*) and error: it records
// MetricInvocations, ends the span and returns the summary attributes —
// duration, rows, bytes, pages, API calls, 429s and the wait they imposed.
func (inv *Invocation) End(ctx context.Context, outcome string, err error) []any {
	d := time.Since(inv.start)
	inv.t.m.invocations.Record(ctx, d.Seconds(), attrs(attribute.String(AttrFunction, inv.function), attribute.String(AttrOutcome, outcome)))
	inv.span.SetAttributes(attribute.String("costsync.outcome", outcome))
	if err != nil {
		// Error texts are the ones the logs carry: no query strings.
		inv.span.SetStatus(codes.Error, err.Error())
	}
	inv.span.End()
	return []any{
		"outcome", outcome,
		"duration_ms", d.Milliseconds(),
		"rows", inv.rows.Load(),
		"bytes", inv.bytes.Load(),
		"pages", inv.pages.Load(),
		"api_calls", inv.apiCalls.Load(),
		"throttled", inv.throttled.Load(),
		"throttle_wait_s", time.Duration(inv.throttleWait.Load()).Seconds(),
	}
}

// NewTrace starts the trace of a piece of work that an invocation hands on
// (a planned window): a new root span named name, linked to the
// invocation's span, ended at once. It returns the traceparent the work's
// message carries, "" when telemetry is off.
func (t *Telemetry) NewTrace(ctx context.Context, name string, args ...any) string {
	link := trace.LinkFromContext(ctx)
	_, span := t.tracer.Start(ctx, name, trace.WithNewRoot(), trace.WithLinks(link), trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok {
			span.SetAttributes(attribute.String("costsync."+k, fmt.Sprint(args[i+1])))
		}
	}
	if !span.SpanContext().IsValid() {
		return ""
	}
	return Traceparent(trace.ContextWithSpan(ctx, span))
}

// Call is one HTTP request to an external API, measured from StartCall to
// End. A nil *Call (outside an invocation) measures nothing.
type Call struct {
	inv   *Invocation
	api   string
	span  trace.Span
	start time.Time
}

// StartCall starts measuring a request to api (e.g. "cost-details.request"):
// a client span under the invocation's. The request's URL is never
// recorded: a report link carries a SAS signature.
func StartCall(ctx context.Context, api, method string) (context.Context, *Call) {
	inv := From(ctx)
	if inv == nil {
		return ctx, nil
	}
	ctx, span := inv.t.tracer.Start(ctx, method+" "+api, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String(AttrAPI, api), attribute.String("http.request.method", method)))
	return ctx, &Call{inv: inv, api: api, span: span, start: time.Now()}
}

// End records the request: its latency by api and status (0 when no answer
// came, with errType saying why), and for a 429 the wait the service asked
// for.
func (c *Call) End(ctx context.Context, status int, retryAfter time.Duration, errType string) {
	if c == nil {
		return
	}
	d := time.Since(c.start)
	kv := []attribute.KeyValue{attribute.String(AttrAPI, c.api), attribute.Int(AttrStatus, status)}
	if errType != "" {
		kv = append(kv, attribute.String(AttrError, errType))
		c.span.SetStatus(codes.Error, errType)
	} else if status >= 500 || status == 429 {
		c.span.SetStatus(codes.Error, fmt.Sprintf("HTTP %d", status))
	}
	c.span.SetAttributes(kv[1:]...)
	c.span.End()
	m := &c.inv.t.m
	m.apiDuration.Record(ctx, d.Seconds(), attrs(kv...))
	c.inv.apiCalls.Add(1)
	if status == 429 {
		m.throttled.Add(ctx, 1, attrs(attribute.String(AttrAPI, c.api)))
		m.throttleWait.Add(ctx, retryAfter.Seconds(), attrs(attribute.String(AttrAPI, c.api)))
		c.inv.throttled.Add(1)
		c.inv.throttleWait.Add(int64(retryAfter))
	}
}
