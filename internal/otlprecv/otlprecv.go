// Package otlprecv is a small OTLP/HTTP receiver for the local stack: the
// end-to-end telemetry test and `make run` point the handler's exporters at
// it (OTEL_EXPORTER_OTLP_ENDPOINT) and read what arrived — spans with their
// parent links, and metric points — without a collector. It decodes the
// OTLP protobuf (or JSON) requests with go.opentelemetry.io/proto/otlp.
//
// Metric points are kept as the exporters' temporality says: a cumulative
// series (one process, one start time) keeps its latest point, a delta
// series adds its points up; so Sum and Count are the totals since each
// exporting process started, whatever the temporality.
package otlprecv

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	metrics "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// maxRequest bounds one export request.
const maxRequest = 64 << 20

// Span is one received span.
type Span struct {
	TraceID  string            `json:"traceId"`
	SpanID   string            `json:"spanId"`
	ParentID string            `json:"parentId,omitempty"`
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	Attrs    map[string]string `json:"attrs,omitempty"`
	// Links are the spans this one is linked to, as traceId/spanId.
	Links    []string          `json:"links,omitempty"`
	Status   string            `json:"status,omitempty"`
	Message  string            `json:"statusMessage,omitempty"`
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	Resource map[string]string `json:"resource,omitempty"`
}

// Point is the state of one metric series: a sum's or gauge's value, or a
// histogram's count and sum.
type Point struct {
	Metric   string            `json:"metric"`
	Kind     string            `json:"kind"` // sum, gauge or histogram
	Attrs    map[string]string `json:"attrs,omitempty"`
	Resource map[string]string `json:"resource,omitempty"`
	Value    float64           `json:"value"`
	Count    uint64            `json:"count,omitempty"`
	Time     time.Time         `json:"time"`
}

// Receiver is a running receiver. It is safe for concurrent use.
type Receiver struct {
	// URL is the base URL to give as OTEL_EXPORTER_OTLP_ENDPOINT.
	URL string

	srv  *http.Server
	done chan struct{}

	mu      sync.Mutex
	spans   []Span
	series  map[string]*Point
	order   []string
	exports struct{ traces, metrics int }
	dump    io.Writer
}

// Options configure a Receiver; nil means none.
type Options struct {
	// Dump, when set, receives every span and every metric point as it
	// arrives, one JSON object per line (the secret scan reads it).
	Dump io.Writer
}

// Start listens on a free loopback port.
func Start(o *Options) (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("otlp receiver: %w", err)
	}
	r := &Receiver{URL: "http://" + ln.Addr().String(), series: map[string]*Point{}, done: make(chan struct{})}
	if o != nil {
		r.dump = o.Dump
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveTraces)
	mux.HandleFunc("POST /v1/metrics", r.serveMetrics)
	mux.HandleFunc("POST /v1/logs", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(ln)
	}()
	return r, nil
}

// Close stops the receiver; what it received stays readable.
func (r *Receiver) Close() error {
	err := r.srv.Close()
	<-r.done
	return err
}

// read decodes an export request body into m: protobuf, or JSON when the
// request says so; gzip when it is compressed.
func read(req *http.Request, m proto.Message) (isJSON bool, err error) {
	var body io.Reader = io.LimitReader(req.Body, maxRequest+1)
	if strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return false, err
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxRequest+1)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return false, err
	}
	if len(b) > maxRequest {
		return false, errors.New("request too large")
	}
	if strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		return true, protojson.Unmarshal(b, m)
	}
	return false, proto.Unmarshal(b, m)
}

func answer(w http.ResponseWriter, isJSON bool, m proto.Message) {
	var b []byte
	if isJSON {
		b, _ = protojson.Marshal(m)
		w.Header().Set("Content-Type", "application/json")
	} else {
		b, _ = proto.Marshal(m)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	_, _ = w.Write(b)
}

func (r *Receiver) serveTraces(w http.ResponseWriter, req *http.Request) {
	var in colltrace.ExportTraceServiceRequest
	isJSON, err := read(req, &in)
	if err != nil {
		http.Error(w, "decode traces: "+err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range in.ResourceSpans {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := Span{TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId), Name: s.Name,
					Kind: strings.TrimPrefix(s.Kind.String(), "SPAN_KIND_"), Attrs: attrMap(s.Attributes), Resource: res,
					Start: time.Unix(0, int64(s.StartTimeUnixNano)).UTC(), End: time.Unix(0, int64(s.EndTimeUnixNano)).UTC()}
				if len(s.ParentSpanId) > 0 {
					sp.ParentID = hex.EncodeToString(s.ParentSpanId)
				}
				for _, l := range s.Links {
					sp.Links = append(sp.Links, hex.EncodeToString(l.TraceId)+"/"+hex.EncodeToString(l.SpanId))
				}
				if s.Status != nil {
					sp.Status = strings.TrimPrefix(s.Status.Code.String(), "STATUS_CODE_")
					sp.Message = s.Status.Message
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.exports.traces++
	dumpLines(r, "span", got)
	r.mu.Unlock()
	answer(w, isJSON, &colltrace.ExportTraceServiceResponse{})
}

func (r *Receiver) serveMetrics(w http.ResponseWriter, req *http.Request) {
	var in collmetrics.ExportMetricsServiceRequest
	isJSON, err := read(req, &in)
	if err != nil {
		http.Error(w, "decode metrics: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exports.metrics++
	var got []Point
	for _, rm := range in.ResourceMetrics {
		res := attrMap(rm.GetResource().GetAttributes())
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				got = append(got, r.addMetric(res, m)...)
			}
		}
	}
	dumpLines(r, "point", got)
	answer(w, isJSON, &collmetrics.ExportMetricsServiceResponse{})
}

// addMetric merges the points of m into the series; r.mu is held.
func (r *Receiver) addMetric(res map[string]string, m *metrics.Metric) []Point {
	var got []Point
	add := func(kind string, attrs []*common.KeyValue, start, t uint64, delta bool, value float64, count uint64) {
		p := Point{Metric: m.Name, Kind: kind, Attrs: attrMap(attrs), Resource: res, Value: value, Count: count, Time: time.Unix(0, int64(t)).UTC()}
		got = append(got, p)
		key := seriesKey(m.Name, res, p.Attrs)
		if kind == "sum" || kind == "histogram" {
			if !delta {
				key += fmt.Sprintf("|start=%d", start)
			}
		}
		cur, ok := r.series[key]
		switch {
		case !ok:
			r.series[key] = &p
			r.order = append(r.order, key)
		case delta:
			cur.Value += value
			cur.Count += count
			cur.Time = p.Time
		case !p.Time.Before(cur.Time):
			*cur = p
		}
	}
	switch d := m.Data.(type) {
	case *metrics.Metric_Sum:
		delta := d.Sum.AggregationTemporality == metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
		for _, dp := range d.Sum.DataPoints {
			add("sum", dp.Attributes, dp.StartTimeUnixNano, dp.TimeUnixNano, delta, number(dp), 0)
		}
	case *metrics.Metric_Gauge:
		for _, dp := range d.Gauge.DataPoints {
			add("gauge", dp.Attributes, dp.StartTimeUnixNano, dp.TimeUnixNano, false, number(dp), 0)
		}
	case *metrics.Metric_Histogram:
		delta := d.Histogram.AggregationTemporality == metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
		for _, dp := range d.Histogram.DataPoints {
			add("histogram", dp.Attributes, dp.StartTimeUnixNano, dp.TimeUnixNano, delta, dp.GetSum(), dp.Count)
		}
	}
	return got
}

func number(dp *metrics.NumberDataPoint) float64 {
	if v, ok := dp.Value.(*metrics.NumberDataPoint_AsInt); ok {
		return float64(v.AsInt)
	}
	return dp.GetAsDouble()
}

func seriesKey(name string, res, attrs map[string]string) string {
	var b strings.Builder
	b.WriteString(name)
	for _, m := range []map[string]string{res, attrs} {
		b.WriteString("|")
		for _, k := range slices.Sorted(mapKeys(m)) {
			fmt.Fprintf(&b, "%s=%s,", k, m[k])
		}
	}
	return b.String()
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func attrMap(kvs []*common.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		out[kv.Key] = anyText(kv.Value)
	}
	return out
}

func anyText(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *common.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *common.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case nil:
		return ""
	}
	b, _ := protojson.Marshal(v)
	return string(b)
}

// dumpLines writes items as JSON lines to the dump; r.mu is held.
func dumpLines[T any](r *Receiver, kind string, items []T) {
	if r.dump == nil {
		return
	}
	var buf bytes.Buffer
	for _, it := range items {
		b, _ := json.Marshal(map[string]any{kind: it})
		buf.Write(b)
		buf.WriteByte('\n')
	}
	_, _ = r.dump.Write(buf.Bytes())
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Exports counts the export requests received.
func (r *Receiver) Exports() (traces, metrics int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exports.traces, r.exports.metrics
}

// Points returns the series of a metric whose attributes include match.
func (r *Receiver) Points(metric string, match map[string]string) []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Point
	for _, k := range r.order {
		p := r.series[k]
		if p.Metric != metric || !includes(p.Attrs, match) {
			continue
		}
		out = append(out, *p)
	}
	return out
}

func includes(attrs, match map[string]string) bool {
	for k, v := range match {
		if attrs[k] != v {
			return false
		}
	}
	return true
}

// Sum adds up the values of a metric's series that match: a counter's
// total, a histogram's sum.
func (r *Receiver) Sum(metric string, match map[string]string) float64 {
	total := 0.0
	for _, p := range r.Points(metric, match) {
		total += p.Value
	}
	return total
}

// Count adds up the counts of a histogram's series that match.
func (r *Receiver) Count(metric string, match map[string]string) uint64 {
	var total uint64
	for _, p := range r.Points(metric, match) {
		total += p.Count
	}
	return total
}

// Has tells whether any series of the metric matches.
func (r *Receiver) Has(metric string, match map[string]string) bool {
	return len(r.Points(metric, match)) > 0
}
