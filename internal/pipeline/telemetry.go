package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/costsync/costsync/internal/otlprecv"
	"github.com/costsync/costsync/shared/telemetry"
)

// Figures are the telemetry of a local run as an OTLP receiver got it: the
// figures `make run` prints and the telemetry test checks against the
// ledger, costsim and devhost.
type Figures struct {
	Spans, Traces, TraceExports, MetricExports int
	// WindowTraces are the traces that start at a planned or requested
	// window ("PlanWindows window", "IngestHttp window").
	WindowTraces int
	// Invocations by function and outcome.
	Invocations map[string]map[string]int
	// Requests by api and status ("0": no answer), and their mean latency.
	Requests    map[string]map[string]int
	MeanLatency time.Duration
	// Throttled requests (429) and the wait they imposed; the governor's
	// own delays.
	Throttled              int
	ThrottleWait, Governor time.Duration
	// Tokens acquired and their mean duration.
	Tokens    int
	MeanToken time.Duration
	// PagedWindows took Pages pages in all.
	PagedWindows, Pages int
	// Rows parsed, and the mean of the invocations' rows per second.
	Rows     int
	RowsRate float64
	// Documents by outcome (telemetry.Doc*).
	Documents map[string]int
	// Quarantined lines; windows by outcome; poison messages; re-pulls
	// that changed a month after day 7.
	Quarantined     int
	Windows         map[string]int
	Poisoned        int
	LateRestatement int
	// Ages are the window age per "scope metric", as last exported.
	Ages map[string]AgePoint
}

// AgePoint is a window age gauge's last value and when it was taken.
type AgePoint struct {
	Age time.Duration
	At  time.Time
}

// LastSuccess is the success the age measures.
func (a AgePoint) LastSuccess() time.Time { return a.At.Add(-a.Age) }

func seconds(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }

// ReadFigures reads the figures from what r received.
func ReadFigures(r *otlprecv.Receiver) Figures {
	f := Figures{Invocations: map[string]map[string]int{}, Requests: map[string]map[string]int{}, Documents: map[string]int{},
		Windows: map[string]int{}, Ages: map[string]AgePoint{}}
	spans := r.Spans()
	f.Spans = len(spans)
	traces := map[string]bool{}
	for _, s := range spans {
		traces[s.TraceID] = true
		if s.ParentID == "" && strings.HasSuffix(s.Name, " window") {
			f.WindowTraces++
		}
	}
	f.Traces = len(traces)
	f.TraceExports, f.MetricExports = r.Exports()
	for _, p := range r.Points(telemetry.MetricInvocations, nil) {
		fn := f.Invocations[p.Attrs[telemetry.AttrFunction]]
		if fn == nil {
			fn = map[string]int{}
			f.Invocations[p.Attrs[telemetry.AttrFunction]] = fn
		}
		fn[p.Attrs[telemetry.AttrOutcome]] += int(p.Count)
	}
	var latency float64
	var calls uint64
	for _, p := range r.Points(telemetry.MetricAPIDuration, nil) {
		api := f.Requests[p.Attrs[telemetry.AttrAPI]]
		if api == nil {
			api = map[string]int{}
			f.Requests[p.Attrs[telemetry.AttrAPI]] = api
		}
		api[p.Attrs[telemetry.AttrStatus]] += int(p.Count)
		latency += p.Value
		calls += p.Count
	}
	if calls > 0 {
		f.MeanLatency = seconds(latency / float64(calls))
	}
	f.Throttled = int(r.Sum(telemetry.MetricThrottled, nil))
	f.ThrottleWait = seconds(r.Sum(telemetry.MetricThrottleWait, nil))
	f.Governor = seconds(r.Sum(telemetry.MetricGovernorWait, nil))
	if f.Tokens = int(r.Count(telemetry.MetricTokenDuration, nil)); f.Tokens > 0 {
		f.MeanToken = seconds(r.Sum(telemetry.MetricTokenDuration, nil) / float64(f.Tokens))
	}
	f.PagedWindows = int(r.Count(telemetry.MetricPaginationDepth, nil))
	f.Pages = int(r.Sum(telemetry.MetricPaginationDepth, nil))
	f.Rows = int(r.Sum(telemetry.MetricRowsParsed, nil))
	if n := r.Count(telemetry.MetricParseRate, nil); n > 0 {
		f.RowsRate = r.Sum(telemetry.MetricParseRate, nil) / float64(n)
	}
	for _, p := range r.Points(telemetry.MetricDocuments, nil) {
		f.Documents[p.Attrs[telemetry.AttrOutcome]] += int(p.Value)
	}
	f.Quarantined = int(r.Sum(telemetry.MetricQuarantined, nil))
	for _, p := range r.Points(telemetry.MetricWindows, nil) {
		f.Windows[p.Attrs[telemetry.AttrOutcome]] += int(p.Value)
	}
	f.Poisoned = int(r.Sum(telemetry.MetricPoisoned, nil))
	f.LateRestatement = int(r.Sum(telemetry.MetricRestatements, map[string]string{telemetry.AttrLate: "true"}))
	for _, p := range r.Points(telemetry.MetricWindowAge, nil) {
		k := p.Attrs[telemetry.AttrScope] + " " + p.Attrs[telemetry.AttrMetric]
		a := AgePoint{Age: seconds(p.Value), At: p.Time}
		// Several handler processes: the youngest age is the truth.
		if old, ok := f.Ages[k]; !ok || a.LastSuccess().After(old.LastSuccess()) {
			f.Ages[k] = a
		}
	}
	return f
}

// Print writes the figures for people, after a run's summary.
func (f Figures) Print(w io.Writer) {
	fmt.Fprintf(w, "  %d spans in %d traces (%d windows, each its own trace), %d span and %d metric exports\n",
		f.Spans, f.Traces, f.WindowTraces, f.TraceExports, f.MetricExports)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var inv []string
	for _, fn := range slices.Sorted(maps.Keys(f.Invocations)) {
		inv = append(inv, fn+" "+counts(f.Invocations[fn]))
	}
	fmt.Fprintf(tw, "  invocations\t%s\n", strings.Join(inv, "; "))
	var req []string
	total := 0
	for _, api := range slices.Sorted(maps.Keys(f.Requests)) {
		n := 0
		for _, c := range f.Requests[api] {
			n += c
		}
		total += n
		req = append(req, fmt.Sprintf("%s %d (HTTP %s)", api, n, counts(f.Requests[api])))
	}
	fmt.Fprintf(tw, "  API requests\t%d, mean latency %s: %s\n", total, f.MeanLatency.Round(time.Millisecond), strings.Join(req, ", "))
	fmt.Fprintf(tw, "  throttling\t%d answers 429, %s of waits imposed; rate governor delays %s\n", f.Throttled, f.ThrottleWait.Round(time.Second), f.Governor.Round(time.Second))
	fmt.Fprintf(tw, "  tokens\t%d acquisitions, mean %s\n", f.Tokens, f.MeanToken.Round(time.Millisecond))
	if f.PagedWindows == 0 {
		fmt.Fprintf(tw, "  pagination\tno paged source in this run\n")
	} else {
		fmt.Fprintf(tw, "  pagination\t%d paged windows, %d pages (mean depth %.1f)\n", f.PagedWindows, f.Pages, float64(f.Pages)/float64(f.PagedWindows))
	}
	fmt.Fprintf(tw, "  rows parsed\t%d, %.0f rows/s on average per ingestion invocation\n", f.Rows, f.RowsRate)
	fmt.Fprintf(tw, "  documents\t%d written, %d skipped as unchanged, %d skipped as stale, %d deleted by sweeps\n",
		f.Documents[telemetry.DocWritten], f.Documents[telemetry.DocUnchanged], f.Documents[telemetry.DocStale], f.Documents[telemetry.DocDeleted])
	fmt.Fprintf(tw, "  quarantined lines\t%d\n", f.Quarantined)
	fmt.Fprintf(tw, "  windows\t%d complete, %d failed; %d poison messages; %d months changed after day 7\n",
		f.Windows[telemetry.WindowComplete], f.Windows[telemetry.WindowFailed], f.Poisoned, f.LateRestatement)
	for _, k := range slices.Sorted(maps.Keys(f.Ages)) {
		fmt.Fprintf(tw, "  window age\t%s: %s\n", k, f.Ages[k].Age.Round(time.Second))
	}
	tw.Flush()
}

// counts writes a count map as "k×n, ...", largest key last.
func counts(m map[string]int) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		ai, aerr := strconv.Atoi(a)
		bi, berr := strconv.Atoi(b)
		if aerr == nil && berr == nil {
			return cmp.Compare(ai, bi)
		}
		return strings.Compare(a, b)
	})
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(out, ", ")
}

// FunctionStats are devhost's counters of one function.
type FunctionStats struct {
	Invocations int `json:"invocations"`
	Succeeded   int `json:"succeeded"`
	Failed      int `json:"failed"`
	InFlight    int `json:"inFlight"`
	Poisoned    int `json:"poisoned"`
}

// HostStats asks devhost for its counters: per function, and the
// approximate message count per queue.
func (p *Pipeline) HostStats(ctx context.Context) (map[string]FunctionStats, map[string]int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Stack.DevhostURL+"/admin/devhost/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("devhost stats: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Functions map[string]FunctionStats `json:"functions"`
		Queues    map[string]struct {
			Approximate int    `json:"approximate"`
			Error       string `json:"error"`
		} `json:"queues"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, nil, fmt.Errorf("devhost stats: %w", err)
	}
	queues := map[string]int{}
	for name, q := range body.Queues {
		if q.Error != "" {
			return nil, nil, fmt.Errorf("devhost stats: queue %s: %s", name, q.Error)
		}
		queues[name] = q.Approximate
	}
	return body.Functions, queues, nil
}

// WaitIdle waits until devhost runs no invocation and the pipeline's queues
// hold no message: everything the run set off has finished.
func (p *Pipeline) WaitIdle(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		fns, queues, err := p.HostStats(ctx)
		busy := err != nil
		for _, f := range fns {
			busy = busy || f.InFlight > 0
		}
		for name, n := range queues {
			if !strings.HasSuffix(name, "-poison") {
				busy = busy || n > 0
			}
		}
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the pipeline did not go idle in %s: functions %v, queues %v (%v)", timeout, fns, queues, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
