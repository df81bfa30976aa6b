// Package telemetry is costsync's instrumentation: OpenTelemetry traces and
// metrics, exported over OTLP/HTTP when an endpoint is configured and off at
// no cost otherwise (no-op providers: no goroutine, no network), and the
// per-invocation state the handlers' one summary line reports — the logger
// every line of an invocation is written with, its span, and its counts of
// rows, bytes, pages, API calls and throttling.
//
// An invocation's state travels in its context ([Telemetry.Begin] puts it
// there, [From] finds it), so code deep inside an invocation (the Cost
// Management client, the credential) logs and measures as part of it without
// globals. A window's trace context travels in our queue messages and
// manifests as a W3C traceparent ([Traceparent], [Telemetry.Begin]), so that
// one trace follows a window from planning to its completion.
package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// The settings Setup reads: the standard OpenTelemetry environment
// variables. Headers (OTEL_EXPORTER_OTLP_HEADERS), certificates, compression
// and timeouts are read by the OTLP exporters themselves from the process
// environment; their values are never logged.
const (
	KeyEndpoint           = "OTEL_EXPORTER_OTLP_ENDPOINT"
	KeyTracesEndpoint     = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	KeyMetricsEndpoint    = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
	KeyProtocol           = "OTEL_EXPORTER_OTLP_PROTOCOL"
	KeyTracesProtocol     = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	KeyMetricsProtocol    = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
	KeyServiceName        = "OTEL_SERVICE_NAME"
	KeyResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"
	KeySDKDisabled        = "OTEL_SDK_DISABLED"
	KeyTracesExporter     = "OTEL_TRACES_EXPORTER"
	KeyMetricsExporter    = "OTEL_METRICS_EXPORTER"
)

// DefaultServiceName is the service.name of costsync's telemetry.
const DefaultServiceName = "costsync"

// instrumentation is the name of the tracer and meter.
const instrumentation = "github.com/costsync/costsync"

// Telemetry holds the tracer and the instruments. It is safe for concurrent
// use; build it once (Setup) and pass it to the handlers. A nil *Telemetry
// is off.
type Telemetry struct {
	tracer  trace.Tracer
	m       instruments
	flush   []func(context.Context) error
	stop    []func(context.Context) error
	where   string
	enabled bool
	ages    *ages
	// pauseUntil (unix nanoseconds) skips Flush after a failed export, so
	// that an unreachable backend does not slow every invocation down.
	pauseUntil atomic.Int64
}

// flushPause is how long Flush is skipped after an export failed; the
// batching span processor and the periodic metric reader still export.
const flushPause = time.Minute

// Options build a Telemetry on given exporters (tests and tools); Setup
// builds them from the environment.
type Options struct {
	// ServiceName is service.name; default DefaultServiceName.
	ServiceName string
	// Attributes are added to the resource.
	Attributes []attribute.KeyValue
	// SpanExporter receives the spans (batched); nil: no traces.
	SpanExporter sdktrace.SpanExporter
	// SyncSpans exports each span as it ends instead of batching (tests).
	SyncSpans bool
	// MetricReader collects the metrics; nil: no metrics.
	MetricReader sdkmetric.Reader
	// Where describes the destination for people ("OTLP/HTTP to …").
	Where string
}

// Off returns telemetry that records nothing and costs nothing: no-op
// providers. Invocations still get their logger and counts.
func Off() *Telemetry {
	t := &Telemetry{tracer: tracenoop.NewTracerProvider().Tracer(instrumentation), where: "off", ages: newAges()}
	t.m = newInstruments(metricnoop.NewMeterProvider().Meter(instrumentation), t.ages)
	return t
}

// New builds telemetry on the exporters of o. The returned shutdown flushes
// and stops them.
func New(o Options) (*Telemetry, func(context.Context) error, error) {
	if o.SpanExporter == nil && o.MetricReader == nil {
		t := Off()
		return t, func(context.Context) error { return nil }, nil
	}
	name := o.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := append([]attribute.KeyValue{
		attribute.String("service.name", name),
		attribute.String("service.instance.id", instanceID()),
	}, o.Attributes...)
	res := resource.NewSchemaless(attrs...)
	t := &Telemetry{where: o.Where, enabled: true, ages: newAges()}
	if o.SpanExporter != nil {
		opt := sdktrace.WithBatcher(o.SpanExporter)
		if o.SyncSpans {
			opt = sdktrace.WithSyncer(o.SpanExporter)
		}
		tp := sdktrace.NewTracerProvider(opt, sdktrace.WithResource(res))
		t.tracer = tp.Tracer(instrumentation)
		t.flush = append(t.flush, tp.ForceFlush)
		t.stop = append(t.stop, tp.Shutdown)
	} else {
		t.tracer = tracenoop.NewTracerProvider().Tracer(instrumentation)
	}
	var meter metric.Meter
	if o.MetricReader != nil {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(o.MetricReader), sdkmetric.WithResource(res))
		meter = mp.Meter(instrumentation)
		t.flush = append(t.flush, mp.ForceFlush)
		t.stop = append(t.stop, mp.Shutdown)
	} else {
		meter = metricnoop.NewMeterProvider().Meter(instrumentation)
	}
	t.m = newInstruments(meter, t.ages)
	shutdown := func(ctx context.Context) error {
		var errs []error
		for _, f := range t.stop {
			errs = append(errs, f(ctx))
		}
		return errors.Join(errs...)
	}
	return t, shutdown, nil
}

// Setup builds telemetry from the OpenTelemetry settings that getenv
// returns: traces and metrics go over OTLP/HTTP (protobuf) to
// OTEL_EXPORTER_OTLP_ENDPOINT (with /v1/traces and /v1/metrics appended), or
// to the signal's own _TRACES_ / _METRICS_ endpoint, as service
// OTEL_SERVICE_NAME (default costsync). Without an endpoint, or with
// OTEL_SDK_DISABLED=true, telemetry is off (see Off). It makes no network
// calls; a setting it cannot use is an error that names it. The returned
// shutdown flushes what is buffered and stops the exporters.
func Setup(ctx context.Context, getenv func(string) string) (*Telemetry, func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	if strings.EqualFold(strings.TrimSpace(getenv(KeySDKDisabled)), "true") {
		return Off(), noop, nil
	}
	var errs []error
	tracesURL, err := signalURL(getenv, KeyTracesEndpoint, "/v1/traces", KeyTracesExporter, KeyTracesProtocol)
	errs = append(errs, err)
	metricsURL, err := signalURL(getenv, KeyMetricsEndpoint, "/v1/metrics", KeyMetricsExporter, KeyMetricsProtocol)
	errs = append(errs, err)
	attrs, err := resourceAttributes(getenv(KeyResourceAttributes))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("telemetry settings: %w", err)
	}
	if tracesURL == "" && metricsURL == "" {
		return Off(), noop, nil
	}
	o := Options{ServiceName: strings.TrimSpace(getenv(KeyServiceName)), Attributes: attrs}
	var where []string
	if tracesURL != "" {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(tracesURL),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: 250 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 3 * time.Second}))
		if err != nil {
			return nil, nil, fmt.Errorf("telemetry: trace exporter for %s: %w", redact(tracesURL), err)
		}
		o.SpanExporter = exp
		where = append(where, "traces to "+redact(tracesURL))
	}
	if metricsURL != "" {
		exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(metricsURL),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: true, InitialInterval: 250 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 3 * time.Second}))
		if err != nil {
			return nil, nil, fmt.Errorf("telemetry: metric exporter for %s: %w", redact(metricsURL), err)
		}
		// The period (OTEL_METRIC_EXPORT_INTERVAL, default 60 s) matters
		// little: every invocation flushes at its end.
		o.MetricReader = sdkmetric.NewPeriodicReader(exp)
		where = append(where, "metrics to "+redact(metricsURL))
	}
	o.Where = "OTLP/HTTP: " + strings.Join(where, ", ")
	return New(o)
}

// signalURL is the OTLP/HTTP URL of one signal, "" when it is not exported.
func signalURL(getenv func(string) string, key, path, exporterKey, protocolKey string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(getenv(exporterKey))); v {
	case "none":
		return "", nil
	case "", "otlp":
	default:
		return "", fmt.Errorf("%s %q: costsync exports otlp or none", exporterKey, v)
	}
	for _, k := range []string{protocolKey, KeyProtocol} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			if v != "http/protobuf" {
				return "", fmt.Errorf("%s %q: costsync exports OTLP over HTTP with protobuf (http/protobuf)", k, v)
			}
			break
		}
	}
	raw, from := strings.TrimSpace(getenv(key)), key
	if raw == "" {
		raw, from = strings.TrimSpace(getenv(KeyEndpoint)), KeyEndpoint
		if raw == "" {
			return "", nil
		}
		raw = strings.TrimRight(raw, "/") + path
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s %q is not an http(s) URL", from, redact(raw))
	}
	return u.String(), nil
}

// resourceAttributes parses OTEL_RESOURCE_ATTRIBUTES: key=value pairs
// separated by commas, values percent-encoded.
func resourceAttributes(s string) ([]attribute.KeyValue, error) {
	var out []attribute.KeyValue
	for _, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: %q is not key=value", KeyResourceAttributes, pair)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: value of %s: %w", KeyResourceAttributes, k, err)
		}
		out = append(out, attribute.String(k, val))
	}
	return out, nil
}

// redact is a URL without user info and query (neither belongs in a log).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

func instanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Enabled tells whether anything is exported.
func (t *Telemetry) Enabled() bool { return t != nil && t.enabled }

// Where says where the telemetry goes, for people: "off", or the OTLP
// endpoints (without credentials or query).
func (t *Telemetry) Where() string {
	if t == nil || t.where == "" {
		return "off"
	}
	return t.where
}

// Flush exports what is buffered: the spans that ended and the metrics as
// they stand. The handlers call it at the end of every invocation, because
// a function instance may be frozen between invocations.
// After a failed export it skips flushing for a minute.
func (t *Telemetry) Flush(ctx context.Context) error {
	if !t.Enabled() || time.Now().UnixNano() < t.pauseUntil.Load() {
		return nil
	}
	var errs []error
	for _, f := range t.flush {
		errs = append(errs, f(ctx))
	}
	err := errors.Join(errs...)
	if err != nil {
		t.pauseUntil.Store(time.Now().Add(flushPause).UnixNano())
	}
	return err
}

// ages is what this process knows of the latest success per scope and
// metric, for the window age gauge: the wall time of the success.
type ages struct {
	mu   sync.Mutex
	last map[[2]string]time.Time
}

func newAges() *ages { return &ages{last: map[[2]string]time.Time{}} }

// set records a success age old now, keeping the latest.
func (a *ages) set(scope, metric string, age time.Duration) {
	at := time.Now().Add(-age)
	a.mu.Lock()
	defer a.mu.Unlock()
	k := [2]string{scope, metric}
	if at.After(a.last[k]) {
		a.last[k] = at
	}
}

func (a *ages) each(f func(scope, metric string, age time.Duration)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for k, at := range a.last {
		f(k[0], k[1], now.Sub(at))
	}
}
