package otlprecv

import (
	"bytes"
	"net/http"
	"testing"

	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	metrics "go.opentelemetry.io/proto/otlp/metrics/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func sumRequest(temporality metrics.AggregationTemporality, start, at uint64, v int64) *collmetrics.ExportMetricsServiceRequest {
	attr := []*common.KeyValue{{Key: "scope", Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: "s1"}}}}
	return &collmetrics.ExportMetricsServiceRequest{ResourceMetrics: []*metrics.ResourceMetrics{{
		Resource: &resource.Resource{Attributes: []*common.KeyValue{{Key: "service.name", Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: "x"}}}}},
		ScopeMetrics: []*metrics.ScopeMetrics{{Metrics: []*metrics.Metric{{Name: "rows", Data: &metrics.Metric_Sum{Sum: &metrics.Sum{
			AggregationTemporality: temporality, IsMonotonic: true,
			DataPoints: []*metrics.NumberDataPoint{{Attributes: attr, StartTimeUnixNano: start, TimeUnixNano: at, Value: &metrics.NumberDataPoint_AsInt{AsInt: v}}},
		}}}}}},
	}}}
}

// TestTemporalities: cumulative points of one series replace each other
// (a new start time is another series: a restarted process); delta points
// add up; protobuf and JSON requests both decode.
func TestTemporalities(t *testing.T) {
	r, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	post := func(m proto.Message, asJSON bool) {
		t.Helper()
		b, ct := []byte(nil), "application/x-protobuf"
		if asJSON {
			b, _ = protojson.Marshal(m)
			ct = "application/json"
		} else {
			b, _ = proto.Marshal(m)
		}
		resp, err := http.Post(r.URL+"/v1/metrics", ct, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("export answered %s", resp.Status)
		}
	}
	cum := metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
	post(sumRequest(cum, 100, 200, 5), false)
	post(sumRequest(cum, 100, 300, 8), true)
	post(sumRequest(cum, 100, 250, 6), false) // late: older than the latest
	post(sumRequest(cum, 400, 500, 2), false) // another process
	if got := r.Sum("rows", map[string]string{"scope": "s1"}); got != 10 {
		t.Errorf("cumulative: sum %v, want 8 + 2", got)
	}
	r2, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	r = r2
	delta := metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
	post(sumRequest(delta, 100, 200, 5), false)
	post(sumRequest(delta, 200, 300, 3), true)
	if got := r.Sum("rows", nil); got != 8 {
		t.Errorf("delta: sum %v, want 5 + 3", got)
	}
	if _, m := r.Exports(); m != 2 || r.Has("rows", map[string]string{"scope": "other"}) {
		t.Errorf("exports %d, or a series matched another scope", m)
	}
}
