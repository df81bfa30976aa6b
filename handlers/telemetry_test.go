package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/telemetry"
)

// withTelemetry gives the rig telemetry on in-memory exporters.
func (r *rig) withTelemetry(t *testing.T) (*tracetest.InMemoryExporter, *sdkmetric.ManualReader) {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	reader := sdkmetric.NewManualReader()
	tel, shutdown, err := telemetry.New(telemetry.Options{SpanExporter: spans, SyncSpans: true, MetricReader: reader})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	r.srv.d.Telemetry = tel
	return spans, reader
}

// counter sums a counter's points whose attributes include match.
func counter(t *testing.T, reader *sdkmetric.ManualReader, name string, match map[string]string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	matches := func(set attribute.Set) bool {
		for k, v := range match {
			if got, ok := set.Value(attribute.Key(k)); !ok || got.Emit() != v {
				return false
			}
		}
		return true
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if matches(p.Attributes) {
						total += p.Value
					}
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					if matches(p.Attributes) {
						total += int64(p.Value)
					}
				}
			default:
				t.Fatalf("%s is a %T", name, m.Data)
			}
		}
	}
	return total
}

// TestTelemetryFollowsTheWindow drives a window through the functions with
// the host's payloads, then a restatement of it, with telemetry on: one
// trace from the planned window to its last part (its context in every
// message and in the manifest), and the counts of rows, documents written,
// unchanged and deleted, quarantined lines and windows as the ledger has
// them.
func TestTelemetryFollowsTheWindow(t *testing.T) {
	const header = "SubscriptionId,Date,MeterId,Cost,BillingCurrency,ResourceId,ChargeType\n"
	line := func(meter, cost string) string {
		return "1caaa5a3-2b66-438e-8ab4-bce37d518c5d,09/21/2023," + meter + "," + cost + ",USD,/subscriptions/x/r-" + meter + ",Usage\n"
	}
	r := newRig(t, []byte(header+line("m1", "1.25")+line("m2", "not-a-number")+line("m3", "2")+line("m4", "3")))
	spans, reader := r.withTelemetry(t)

	code, resp := r.post(t, "PlanWindows", invocation.NewTimerRequest("timer", time.Time{}, time.Now(), false, sys))
	if code != 200 {
		t.Fatalf("PlanWindows: %d %v", code, resp.Logs)
	}
	planned, _ := json.Marshal(resp.Outputs["windows"])
	var msgs []windowMessage
	if err := json.Unmarshal(planned, &msgs); err != nil || len(msgs) == 0 {
		t.Fatalf("planned %s: %v", planned, err)
	}
	first, _ := json.Marshal(msgs[0])
	pull := func(msg []byte) {
		t.Helper()
		for range 10 {
			if code, resp := r.post(t, "ProcessWindow", queueReq(msg, 1)); code != 200 {
				t.Fatalf("ProcessWindow: %d %v", code, resp.Logs)
			}
			q := r.queue.take()
			if len(q) == 0 {
				break
			}
			msg = q[0].body
		}
		for name, man := range r.land.manifests {
			if code, resp := r.post(t, "IngestManifest", invocation.NewBlobRequest("manifest", invocation.BlobInfo{Content: man, Tokens: map[string]string{"name": name}}, sys)); code != 200 {
				t.Fatalf("IngestManifest: %d %v", code, resp.Logs)
			}
			delete(r.land.manifests, name)
		}
		r.deliverParts(t)
	}
	pull(first)
	wid := store.WindowID(testScope, "ActualCost", msgs[0].Window.From, msgs[0].Window.To)
	wd, err := r.store.GetWindow(context.Background(), testScope, wid)
	if err != nil || wd.State != store.StateComplete || wd.Rows != 3 || wd.Quarantined != 1 {
		t.Fatalf("window %+v: %v", wd, err)
	}

	// One trace: the planned window's root, then each function's span
	// under the invocation that sent its message or wrote its manifest.
	byID := map[string]string{}
	var trace string
	for _, s := range spans.GetSpans() {
		byID[s.SpanContext.SpanID().String()] = s.Name
		if s.Name == "PlanWindows window" && strings.Contains(string(first), s.SpanContext.TraceID().String()) {
			trace = s.SpanContext.TraceID().String()
		}
	}
	if trace == "" {
		t.Fatalf("the planned message %s carries no window trace", first)
	}
	follows := map[string]string{}
	for _, s := range spans.GetSpans() {
		if s.SpanContext.TraceID().String() != trace || !s.Parent.IsValid() {
			continue
		}
		follows[s.Name+" ← "+byID[s.Parent.SpanID().String()]] = s.Name
	}
	for _, want := range []string{"ProcessWindow ← PlanWindows window", "ProcessWindow ← ProcessWindow", "IngestManifest ← ProcessWindow", "IngestPart ← IngestManifest"} {
		if _, ok := follows[want]; !ok {
			t.Errorf("no span %s in the window's trace: %v", want, follows)
		}
	}

	check := func(what string, written, unchanged, deleted, quarantined, complete int64) {
		t.Helper()
		for _, c := range []struct {
			name  string
			match map[string]string
			want  int64
		}{
			{telemetry.MetricDocuments, map[string]string{"outcome": telemetry.DocWritten, "scope": testScope}, written},
			{telemetry.MetricDocuments, map[string]string{"outcome": telemetry.DocUnchanged}, unchanged},
			{telemetry.MetricDocuments, map[string]string{"outcome": telemetry.DocDeleted}, deleted},
			{telemetry.MetricQuarantined, map[string]string{"scope": testScope}, quarantined},
			{telemetry.MetricWindows, map[string]string{"outcome": telemetry.WindowComplete, "metric": "ActualCost"}, complete},
		} {
			if got := counter(t, reader, c.name, c.match); got != c.want {
				t.Errorf("%s: %s %v = %d, want %d", what, c.name, c.match, got, c.want)
			}
		}
	}
	check("first report", 3, 0, 0, 1, 1)

	// A restatement: m3 changes, m4 disappears, the bad line is fixed.
	r.cost.blobs = map[string][]byte{"part0.csv": []byte(header + line("m1", "1.25") + line("m2", "5") + line("m3", "2.5"))}
	r.cost.polls = 0
	again := msgs[0]
	again.Trace = ""
	body, _ := json.Marshal(again)
	pull(body)
	if wd, err = r.store.GetWindow(context.Background(), testScope, wid); err != nil || wd.Rows != 3 || wd.Quarantined != 0 {
		t.Fatalf("restated window %+v: %v", wd, err)
	}
	check("after the restatement", 3+2, 1, 1, 1, 2)
}

// TestMessagesDecodeWithAndWithoutTrace: the trace field is optional, so
// messages sent before it existed still decode; unknown fields do not.
func TestMessagesDecodeWithAndWithoutTrace(t *testing.T) {
	for _, tc := range []struct {
		msg string
		v   any
		ok  bool
	}{
		{`{"v":1,"window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"step":"request","attempt":0}`, &windowMessage{}, true},
		{`{"v":1,"window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"step":"request","attempt":0,"trace":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`, &windowMessage{}, true},
		{`{"v":1,"window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"step":"request","attempt":0,"traces":"x"}`, &windowMessage{}, false},
		{`{"v":1,"step":"part","window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"generation":1,"part":0,"blob":"a/part_00000.csv"}`, &partMessage{}, true},
		{`{"v":1,"step":"part","window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"generation":1,"part":0,"blob":"a/part_00000.csv","runId":"run-1","trace":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`, &partMessage{}, true},
		{`{"v":1,"source":"usage-details","window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"step":"start"}`, &sourceMessage{}, true},
	} {
		if err := invocation.DecodeJSON(json.RawMessage(tc.msg), tc.v); (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok %v", tc.msg, err, tc.ok)
		}
	}
	if _, err := landing.DecodeManifest([]byte(`{"version":1,"source":"cost-details","window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"generation":1,"parts":[],"landedAt":"2023-09-22T00:00:00Z"}`)); err != nil {
		t.Errorf("a manifest without trace: %v", err)
	}
}

// TestSummaryLine: every invocation logs one summary line with its outcome
// and counts, and the lines logged inside it carry its attributes.
func TestSummaryLine(t *testing.T) {
	r := newRig(t, nil)
	var logs strings.Builder
	r.srv.d.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	r.cost.reqErr = &costapi.Error{Op: "request report", StatusCode: 429, Retryable: true, Throttled: true, RetryAfter: 7 * time.Second}
	msg := `{"v":1,"window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"step":"request","attempt":0,"runId":"run-7"}`
	if code, resp := r.post(t, "ProcessWindow", queueReq([]byte(msg), 1)); code != 200 {
		t.Fatalf("ProcessWindow: %d %v", code, resp.Logs)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line); err != nil {
		t.Fatalf("%v: %s", err, logs.String())
	}
	for k, want := range map[string]any{"msg": "invocation re-enqueued with delay", "outcome": telemetry.OutcomeRequeued, "delay_s": 7.0,
		"function": "ProcessWindow", "invocation_id": "11111111-2222-3333-4444-555555555555", "scope": testScope, "run_id": "run-7",
		"window": "2023-09-21..2023-09-21", "rows": 0.0, "api_calls": 0.0, "throttled": 0.0} {
		if line[k] != want {
			t.Errorf("summary %s = %v, want %v: %s", k, line[k], want, logs.String())
		}
	}
}
