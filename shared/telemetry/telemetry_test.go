package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/costsync/costsync/internal/otlprecv"
	"github.com/costsync/costsync/shared/telemetry"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSetupOff(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, e := range []map[string]string{
		{},
		{telemetry.KeyEndpoint: "http://127.0.0.1:1", telemetry.KeySDKDisabled: "true"},
		{telemetry.KeyEndpoint: "http://127.0.0.1:1", telemetry.KeyTracesExporter: "none", telemetry.KeyMetricsExporter: "none"},
	} {
		tel, shutdown, err := telemetry.Setup(context.Background(), env(e))
		if err != nil {
			t.Fatal(err)
		}
		if tel.Enabled() || tel.Where() != "off" {
			t.Errorf("%v: enabled %v, where %q; want off", e, tel.Enabled(), tel.Where())
		}
		// An invocation still has its logger and summary; nothing is exported.
		var logs bytes.Buffer
		ctx, inv := tel.Begin(context.Background(), "ProcessWindow", "id-1", "", slog.New(slog.NewJSONHandler(&logs, nil)))
		telemetry.Logger(ctx).Info("deep")
		if got := telemetry.Traceparent(ctx); got != "" {
			t.Errorf("off: traceparent %q, want none", got)
		}
		inv.End(ctx, telemetry.OutcomeDone, nil)
		if err := tel.Flush(ctx); err != nil {
			t.Error(err)
		}
		if err := shutdown(ctx); err != nil {
			t.Error(err)
		}
		if !strings.Contains(logs.String(), `"invocation_id":"id-1"`) {
			t.Errorf("the deep line lacks the invocation: %s", logs.String())
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("telemetry off started %d goroutines", after-before)
	}
}

func TestSetupErrors(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{telemetry.KeyEndpoint: "localhost:4318"}, telemetry.KeyEndpoint},
		{map[string]string{telemetry.KeyTracesEndpoint: "ftp://h/x"}, telemetry.KeyTracesEndpoint},
		{map[string]string{telemetry.KeyEndpoint: "http://h:4318", telemetry.KeyProtocol: "grpc"}, telemetry.KeyProtocol},
		{map[string]string{telemetry.KeyEndpoint: "http://h:4318", telemetry.KeyMetricsExporter: "prometheus"}, telemetry.KeyMetricsExporter},
		{map[string]string{telemetry.KeyEndpoint: "http://h:4318", telemetry.KeyResourceAttributes: "novalue"}, telemetry.KeyResourceAttributes},
	} {
		_, _, err := telemetry.Setup(context.Background(), env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}

// TestExport sends an invocation's span, a throttled call and a few
// measures to a receiver over OTLP/HTTP, as the handler does.
func TestExport(t *testing.T) {
	recv, err := otlprecv.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	tel, shutdown, err := telemetry.Setup(context.Background(), env(map[string]string{
		telemetry.KeyEndpoint: recv.URL + "/", telemetry.KeyServiceName: "costsync-test", telemetry.KeyResourceAttributes: "deployment.environment=test%20one",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Enabled() || !strings.Contains(tel.Where(), recv.URL+"/v1/traces") {
		t.Fatalf("where %q", tel.Where())
	}
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	var logs bytes.Buffer
	ctx, inv := tel.Begin(context.Background(), "ProcessWindow", "inv-1", parent, slog.New(slog.NewJSONHandler(&logs, nil)))
	inv.Tag("scope", "subscriptions/x", "part", 2)
	tp := telemetry.Traceparent(ctx)
	if !strings.HasPrefix(tp, "00-0af7651916cd43dd8448eb211c80319c-") || tp == parent {
		t.Errorf("traceparent %q does not continue the trace of %q", tp, parent)
	}
	cctx, call := telemetry.StartCall(ctx, "cost-details.request", "POST")
	call.End(cctx, 429, 7*time.Second, "")
	_, call = telemetry.StartCall(ctx, "cost-details.poll", "GET")
	call.End(ctx, 0, 0, "timeout")
	tel.RowsParsed(ctx, "subscriptions/x", "cost-details", 500, time.Second)
	tel.Quarantined(ctx, "subscriptions/x", 0)
	tel.Window(ctx, "subscriptions/x", "ActualCost", telemetry.WindowComplete, 90*time.Second)
	next := tel.NewTrace(ctx, "PlanWindows window", "window", "2024-01-01..2024-01-01")
	telemetry.Logger(ctx).Info("deep inside")
	sum := inv.End(ctx, telemetry.OutcomeRequeued, nil)
	if err := tel.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	summary := map[string]any{}
	for i := 0; i+1 < len(sum); i += 2 {
		summary[sum[i].(string)] = sum[i+1]
	}
	if summary["api_calls"] != int64(2) || summary["throttled"] != int64(1) || summary["throttle_wait_s"] != 7.0 || summary["rows"] != int64(500) || summary["outcome"] != telemetry.OutcomeRequeued {
		t.Errorf("summary %v", summary)
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"function": "ProcessWindow", "invocation_id": "inv-1", "scope": "subscriptions/x", "trace_id": "0af7651916cd43dd8448eb211c80319c"} {
		if line[k] != want {
			t.Errorf("deep log line: %s = %v, want %v (%s)", k, line[k], want, logs.String())
		}
	}

	spans := map[string]otlprecv.Span{}
	for _, s := range recv.Spans() {
		spans[s.Name] = s
	}
	root := spans["ProcessWindow"]
	if root.TraceID != "0af7651916cd43dd8448eb211c80319c" || root.ParentID != "b7ad6b7169203331" || root.Attrs["costsync.scope"] != "subscriptions/x" ||
		root.Attrs["costsync.part"] != "2" || root.Attrs["faas.invocation_id"] != "inv-1" || root.Resource["service.name"] != "costsync-test" ||
		root.Resource["deployment.environment"] != "test one" {
		t.Errorf("invocation span %+v", root)
	}
	if c := spans["POST cost-details.request"]; c.ParentID != root.SpanID || c.Attrs["http.response.status_code"] != "429" || c.Status != "ERROR" {
		t.Errorf("call span %+v", c)
	}
	w := spans["PlanWindows window"]
	if w.TraceID == root.TraceID || w.ParentID != "" || len(w.Links) != 1 || w.Links[0] != root.TraceID+"/"+root.SpanID || !strings.Contains(next, w.TraceID) {
		t.Errorf("window trace %+v (traceparent %s): want a new root linked to %s", w, next, root.SpanID)
	}

	for _, c := range []struct {
		metric string
		match  map[string]string
		count  uint64
		sum    float64
	}{
		{telemetry.MetricAPIDuration, map[string]string{"api": "cost-details.request", "http.response.status_code": "429"}, 1, -1},
		{telemetry.MetricAPIDuration, map[string]string{"api": "cost-details.poll", "http.response.status_code": "0", "error.type": "timeout"}, 1, -1},
		{telemetry.MetricThrottled, map[string]string{"api": "cost-details.request"}, 0, 1},
		{telemetry.MetricThrottleWait, nil, 0, 7},
		{telemetry.MetricRowsParsed, map[string]string{"scope": "subscriptions/x"}, 0, 500},
		{telemetry.MetricParseRate, nil, 1, 500},
		{telemetry.MetricQuarantined, map[string]string{"scope": "subscriptions/x"}, 0, 0},
		{telemetry.MetricWindows, map[string]string{"outcome": "complete"}, 0, 1},
		{telemetry.MetricInvocations, map[string]string{"function": "ProcessWindow", "outcome": telemetry.OutcomeRequeued}, 1, -1},
	} {
		if !recv.Has(c.metric, c.match) {
			t.Errorf("%s %v: no series", c.metric, c.match)
			continue
		}
		if got := recv.Count(c.metric, c.match); got != c.count {
			t.Errorf("%s %v: count %d, want %d", c.metric, c.match, got, c.count)
		}
		if got := recv.Sum(c.metric, c.match); c.sum >= 0 && got != c.sum {
			t.Errorf("%s %v: sum %v, want %v", c.metric, c.match, got, c.sum)
		}
	}
	ages := recv.Points(telemetry.MetricWindowAge, map[string]string{"scope": "subscriptions/x", "metric": "ActualCost"})
	if len(ages) != 1 || ages[0].Value < 90 || ages[0].Value > 90+60 {
		t.Errorf("window age %+v, want about 90 s", ages)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestFlushPausesAfterAFailure: an unreachable backend costs one failed
// flush, not one per invocation.
func TestFlushPausesAfterAFailure(t *testing.T) {
	recv, err := otlprecv.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	url := recv.URL
	recv.Close() // nothing listens there any more
	tel, shutdown, err := telemetry.Setup(context.Background(), env(map[string]string{telemetry.KeyEndpoint: url}))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	ctx, inv := tel.Begin(context.Background(), "IngestPart", "id", "", slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
	inv.End(ctx, telemetry.OutcomeDone, nil)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tel.Flush(fctx); err == nil {
		t.Fatal("a flush to a closed port succeeded")
	}
	if err := tel.Flush(fctx); err != nil {
		t.Errorf("the flush after a failure was tried again: %v", err)
	}
}
