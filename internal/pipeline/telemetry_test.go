package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/internal/otlprecv"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/telemetry"
)

// paygScope is a pay-as-you-go subscription: costsim answers its Cost
// Details requests 422, and the windows go through usage details, a paged
// API.
const paygScope = "subscriptions/3f2a9c1e-7b4d-4e21-9a96-0c3e2d1a9b70"

// costsimKind maps the handler's api names to costsim's request kinds.
var costsimKind = map[string]string{
	costapi.APIReportRequest:  "create",
	costapi.APIReportPoll:     "poll",
	costapi.APIReportDownload: "download",
	costapi.APIUsageDetails:   "usage-details",
}

// TestTelemetryOfOneRun runs the pipeline on the local stack with an OTLP
// receiver of its own, while costsim throttles, and checks what arrived:
// every planned window is one connected trace (PlanWindows → ProcessWindow
// → IngestManifest → IngestPart, through the queue messages and the
// manifest), and the metrics count what the ledger, costsim and devhost
// counted — requests per API and status, 429s and their waits, pages,
// rows, documents, quarantined lines, windows, invocations, freshness. The
// handler's log lines say the same.
func TestTelemetryOfOneRun(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the local stack")
	}
	dir := t.TempDir()
	recv, err := otlprecv.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	o := Options{Scopes: []string{DefaultScopes[0], paygScope}, Days: 2, Env: map[string]string{
		telemetry.KeyEndpoint: recv.URL, telemetry.KeyServiceName: "costsync-e2e",
	}}
	st := localstack.StartT(t, localstack.Options{
		Dir:        dir,
		Components: localstack.Components{Storage: true, Cosmos: true, Costsim: true, Devhost: true},
		// The run must see 429s: with about fifteen Cost Management calls, a
		// rate of 0.4 leaves a run without any at about 1 in 2,000.
		CostsimArgs: []string{"-seed", "5", "-rows-per-day", "60", "-blob-rows", "25", "-retry-after", "1", "-polls", "1",
			"-page-rows", "20", "-faults", `{"throttleRate":0.4}`},
		Env: Env(o),
	})
	ctx := context.Background()
	o.Stack = st
	p, err := StartPipeline(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	base, err := p.Baseline(ctx, o.Scopes)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.FirePlan(ctx); err != nil {
		t.Fatal(err)
	}
	want := len(o.Scopes) * o.Days
	ws, err := p.Wait(ctx, o.Scopes, want, base, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitIdle(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	sim, err := p.SimStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fns, _, err := p.HostStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Stopping the stack stops the handler, which flushes once more.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	f := ReadFigures(recv)
	var sb strings.Builder
	f.Print(&sb)
	t.Logf("telemetry of the run:\n%s", sb.String())

	rows, quarantined := int64(0), 0
	for _, w := range ws {
		if w.State != store.StateComplete {
			t.Fatalf("window %s %s is %s: %v", w.Scope, w.From, w.State, w.Errors)
		}
		rows += w.Rows
		quarantined += w.Quarantined
	}
	checkTraces(t, recv.Spans(), ws)

	// Requests per API and status: what costsim answered.
	for api, kind := range costsimKind {
		got := map[string]int{}
		for code, n := range f.Requests[api] {
			if code == "0" {
				code = "reset"
			}
			got[code] = n
		}
		if w := sim.Status[kind]; !maps.Equal(got, w) {
			t.Errorf("%s requests by status: telemetry %v, costsim %v", api, got, w)
		}
	}
	for api := range f.Requests {
		if _, ok := costsimKind[api]; !ok {
			t.Errorf("requests of an unexpected api %q: %v", api, f.Requests[api])
		}
	}
	// 429s and the waits they imposed: Cost Details asks for 4 or 5 s
	// (its largest rate-limit header), usage details for 2 s.
	throttled := 0
	for api, kind := range costsimKind {
		n := sim.Status[kind]["429"]
		throttled += n
		wait := recv.Sum(telemetry.MetricThrottleWait, map[string]string{telemetry.AttrAPI: api})
		lo, hi := 4.0, 5.0
		if api == costapi.APIUsageDetails {
			lo, hi = 2, 2
		}
		if wait < lo*float64(n) || wait > hi*float64(n) {
			t.Errorf("%s: %d answers 429 imposed %v s of waits, want %v to %v s each", api, n, wait, lo, hi)
		}
	}
	if f.Throttled != throttled || throttled == 0 {
		t.Errorf("throttled: telemetry %d, costsim %d (the run must be throttled to prove this)", f.Throttled, throttled)
	}
	if f.Tokens == 0 || recv.Has(telemetry.MetricTokenDuration, map[string]string{telemetry.AttrOutcome: "error"}) {
		t.Errorf("token acquisitions: %d, or some failed", f.Tokens)
	}
	// Pagination: each pay-as-you-go window's usage details, page by page.
	if f.PagedWindows != o.Days || f.Pages != sim.Status["usage-details"]["200"] || f.Pages <= f.PagedWindows {
		t.Errorf("pagination: %d windows, %d pages; want %d windows and costsim's %d pages, more than one each", f.PagedWindows, f.Pages, o.Days, sim.Status["usage-details"]["200"])
	}

	// Invocations: what devhost ran, by outcome.
	for fn, s := range fns {
		outcomes := f.Invocations[fn]
		total := 0
		for _, n := range outcomes {
			total += n
		}
		if total != s.Invocations || outcomes[telemetry.OutcomeRetry] != s.Failed {
			t.Errorf("%s: telemetry %v, devhost %d invocations, %d failed", fn, outcomes, s.Invocations, s.Failed)
		}
	}
	for _, fn := range []string{"PlanWindows", "ProcessWindow", "IngestManifest", "IngestPart"} {
		if fns[fn].Invocations == 0 {
			t.Errorf("devhost never ran %s", fn)
		}
	}
	ingestRetries := f.Invocations["IngestPart"][telemetry.OutcomeRetry] + f.Invocations["IngestManifest"][telemetry.OutcomeRetry]

	// Rows, documents and quarantined lines: what the ledger counted. A
	// part ingested twice (a retry) parses again and finds its documents
	// unchanged.
	written, unchanged := f.Documents[telemetry.DocWritten], f.Documents[telemetry.DocUnchanged]
	switch {
	case ingestRetries == 0 && (f.Rows != int(rows) || written != int(rows) || unchanged != 0):
		t.Errorf("rows parsed %d, documents written %d, unchanged %d; the ledger has %d rows", f.Rows, written, unchanged, rows)
	case f.Rows < int(rows) || written > int(rows) || written+unchanged < int(rows):
		t.Errorf("with %d ingestion retries: rows parsed %d, documents written %d, unchanged %d; the ledger has %d rows", ingestRetries, f.Rows, written, unchanged, rows)
	}
	if rows == 0 || f.Documents[telemetry.DocDeleted] != 0 || f.Documents[telemetry.DocStale] != 0 {
		t.Errorf("ledger rows %d, documents deleted %d, stale %d: a first run into an empty store deletes nothing", rows, f.Documents[telemetry.DocDeleted], f.Documents[telemetry.DocStale])
	}
	if !recv.Has(telemetry.MetricQuarantined, nil) || f.Quarantined != quarantined {
		t.Errorf("quarantined lines: telemetry %d, ledger %d", f.Quarantined, quarantined)
	}
	if f.Windows[telemetry.WindowComplete] != want || f.Windows[telemetry.WindowFailed] != 0 || f.Poisoned != 0 {
		t.Errorf("windows %v, poisoned %d; want %d complete", f.Windows, f.Poisoned, want)
	}
	if f.RowsRate <= 0 {
		t.Errorf("rows per second %v", f.RowsRate)
	}

	// Freshness: per scope, the age of its newest success, as the ledger
	// has it.
	for _, scope := range o.Scopes {
		var last time.Time
		for _, w := range ws {
			if w.Scope == scope && w.LastSuccessAt.After(last) {
				last = w.LastSuccessAt
			}
		}
		a, ok := f.Ages[scope+" ActualCost"]
		if d := a.LastSuccess().Sub(last); !ok || d > time.Second || d < -time.Second {
			t.Errorf("window age of %s: %+v (last success %s), the ledger's last success %s", scope, a, a.LastSuccess(), last)
		}
	}

	checkLogs(t, filepath.Join(dir, "logs", "devhost.log"), f, fns, throttled)
}

// checkTraces checks that every window is one connected trace from its
// planning to its completion.
func checkTraces(t *testing.T, spans []otlprecv.Span, ws []store.Window) {
	t.Helper()
	byTrace := map[string][]otlprecv.Span{}
	byID := map[string]otlprecv.Span{}
	for _, s := range spans {
		byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
		byID[s.SpanID] = s
	}
	windows := map[string]store.Window{}
	for _, w := range ws {
		windows[w.Scope+" "+w.From+".."+w.To] = w
	}
	seen := map[string]bool{}
	for id, trace := range byTrace {
		var root *otlprecv.Span
		names := map[string]int{}
		for i, s := range trace {
			names[s.Name]++
			if s.ParentID == "" {
				if root != nil {
					t.Errorf("trace %s has two roots: %s and %s", id, root.Name, s.Name)
				}
				root = &trace[i]
			}
		}
		if root == nil {
			t.Errorf("trace %s has no root: %v", id, names)
			continue
		}
		if root.Name == "PlanWindows" {
			continue // the timer's own invocation; each window links to it
		}
		key := root.Attrs["costsync.scope"] + " " + root.Attrs["costsync.window"]
		w, ok := windows[key]
		if root.Name != "PlanWindows window" || !ok || seen[key] {
			t.Errorf("trace %s starts at %s %q (%v): want one per planned window", id, root.Name, key, names)
			continue
		}
		seen[key] = true
		if len(root.Links) != 1 || byID[strings.Split(root.Links[0], "/")[1]].Name != "PlanWindows" {
			t.Errorf("window %s: its root is not linked to the PlanWindows invocation: %v", key, root.Links)
		}
		// Parent links: each function's span follows the one that sent its
		// message (or wrote its manifest); calls and tokens sit under an
		// invocation.
		allowed := map[string][]string{
			"ProcessWindow":  {"PlanWindows window", "ProcessWindow"},
			"IngestManifest": {"ProcessWindow"},
			"IngestPart":     {"IngestManifest", "IngestPart"},
		}
		for _, s := range trace {
			if s.SpanID == root.SpanID {
				continue
			}
			parent, ok := byID[s.ParentID]
			if !ok || parent.TraceID != id {
				t.Errorf("window %s: span %s has a parent %s outside the trace", key, s.Name, s.ParentID)
				continue
			}
			if want, ok := allowed[s.Name]; ok && !slices.Contains(want, parent.Name) {
				t.Errorf("window %s: %s follows %s, want one of %v", key, s.Name, parent.Name, want)
			}
			if _, fn := allowed[s.Name]; !fn && allowed[parent.Name] == nil {
				t.Errorf("window %s: %s sits under %s, not under an invocation", key, s.Name, parent.Name)
			}
		}
		if names["ProcessWindow"] < 2 || names["IngestManifest"] < 1 || names["IngestPart"] < w.PartsTotal || w.PartsTotal < 2 {
			t.Errorf("window %s (%d parts): spans %v; want request and poll, the manifest and every part", key, w.PartsTotal, names)
		}
	}
	if len(seen) != len(ws) {
		t.Errorf("%d window traces for %d windows", len(seen), len(ws))
	}
}

// checkLogs reads the handler's JSON lines (in devhost's log) and checks
// that each invocation logged its summary with its outcome and counts, that
// every line of an invocation names it, and that the summaries add up to
// the metrics.
func checkLogs(t *testing.T, path string, f Figures, fns map[string]FunctionStats, apiThrottled int) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	summaries := map[string]int{}
	var apiCalls, throttled, rows int
	deep := 0
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) != nil || l["invocation_id"] == nil {
			continue
		}
		fn, _ := l["function"].(string)
		msg, _ := l["msg"].(string)
		if devhostLine(msg) {
			continue
		}
		if fn == "" || l["trace_id"] == nil {
			t.Errorf("a line of an invocation without its function or trace: %s", sc.Text())
		}
		if msg == "request throttled" {
			deep++
			if l["scope"] == nil || l["window"] == nil || l["api"] == nil {
				t.Errorf("a throttled request's line lacks the scope, window or api: %s", sc.Text())
			}
		}
		if _, ok := l["outcome"]; !ok {
			continue
		}
		summaries[fn]++
		for _, k := range []string{"duration_ms", "rows", "bytes", "pages", "api_calls", "throttled", "throttle_wait_s"} {
			if _, ok := l[k]; !ok {
				t.Errorf("summary line without %s: %s", k, sc.Text())
			}
		}
		if fn == "IngestPart" && l["step"] == "part" && (l["part"] == nil || l["scope"] == nil || l["window"] == nil) {
			t.Errorf("an IngestPart summary lacks its part, scope or window: %s", sc.Text())
		}
		apiCalls += num(l["api_calls"])
		throttled += num(l["throttled"])
		rows += num(l["rows"])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for fn, s := range fns {
		if summaries[fn] != s.Invocations {
			t.Errorf("%s: %d summary lines for %d invocations", fn, summaries[fn], s.Invocations)
		}
	}
	calls := 0
	for _, m := range f.Requests {
		for _, n := range m {
			calls += n
		}
	}
	if apiCalls != calls || throttled != f.Throttled || rows != f.Rows || deep != apiThrottled {
		t.Errorf("summary lines: %d API calls, %d throttled, %d rows, %d lines of throttled requests; metrics: %d, %d, %d; costsim: %d 429s", apiCalls, throttled, rows, deep, calls, f.Throttled, f.Rows, apiThrottled)
	}
}

// devhostLine tells devhost's own lines about an invocation from the
// handler's lines it passes on.
func devhostLine(msg string) bool {
	return msg == "invocation" || msg == "handler log" || strings.Contains(msg, "Functions host") || strings.Contains(msg, "devhost")
}

func num(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	panic(fmt.Sprintf("not a number: %v", v))
}
