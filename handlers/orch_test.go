package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/status"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

const testScope2 = "providers/Microsoft.Billing/billingAccounts/8611537"

// orchRig is a server on the memory store with a clock the test moves.
type orchRig struct {
	*rig
	mu  sync.Mutex
	now time.Time
	log *bytes.Buffer
}

func (o *orchRig) clock() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.now
}

func (o *orchRig) set(t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.now = t
}

func newOrchRig(t *testing.T, now time.Time, settings map[string]string) *orchRig {
	t.Helper()
	env := map[string]string{
		config.KeyBlobURL: "https://a.blob.core.windows.net", config.KeyQueueURL: "https://a.queue.core.windows.net",
		config.KeyCosmosEndpoint: "https://c.documents.azure.com", config.KeyScopes: testScope,
		config.KeyTrailingDays: "2",
	}
	for k, v := range settings {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	o := &orchRig{now: now, log: &bytes.Buffer{}}
	o.rig = &rig{
		cost:  &fakeCost{readyAt: 0, status: costapi.StatusCompleted, blobs: map[string][]byte{}},
		land:  &fakeLanding{parts: map[string][]byte{}, manifests: map[string][]byte{}},
		queue: &fakeQueue{},
		store: store.NewMemory(),
	}
	o.srv = New(Deps{Config: cfg, Cost: o.cost, Landing: o.land, Store: o.store, Queue: o.queue, Now: o.clock,
		Log: slog.New(slog.NewJSONHandler(o.log, nil))})
	return o
}

func day(s string) time.Time {
	t, err := time.Parse(window.DateLayout, s)
	if err != nil {
		panic(err)
	}
	return t.Add(6 * time.Hour)
}

// plan fires the timer and returns the planned windows.
func (o *orchRig) plan(t *testing.T, pastDue bool) []windowMessage {
	t.Helper()
	code, resp := o.post(t, "PlanWindows", invocation.NewTimerRequest("timer", o.clock().Add(-24*time.Hour), o.clock(), pastDue, sys))
	if code != 200 {
		t.Fatalf("PlanWindows: %d %v", code, resp.Logs)
	}
	b, _ := json.Marshal(resp.Outputs["windows"])
	var msgs []windowMessage
	if err := json.Unmarshal(b, &msgs); err != nil {
		t.Fatalf("PlanWindows outputs %s: %v", b, err)
	}
	return msgs
}

func names(msgs []windowMessage) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Window.From+".."+m.Window.To)
	}
	return out
}

// complete writes a window's ledger as IngestManifest leaves it: a new
// generation, complete, with rows per day.
func (o *orchRig) complete(t *testing.T, w window.Window, rows int64, cost string) *store.Window {
	t.Helper()
	ctx := context.Background()
	wd, err := o.srv.loadWindow(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	gen := max(o.clock().UnixMilli(), wd.Generation+1)
	var days []store.DayTotal
	for _, d := range w.Days() {
		days = append(days, store.DayTotal{Date: d, Currency: "EUR", Rows: rows, BilledCost: decimal.RequireFromString(cost)})
	}
	if err := o.srv.updateWindow(ctx, wd, func(x *store.Window) {
		x.State, x.Generation, x.Days, x.Rows = store.StateComplete, gen, days, rows*int64(len(days))
	}); err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestPlanWindowsIdempotent: a timer that fires twice, or past due, plans
// nothing twice; after COSTSYNC_REPULL_AFTER the trailing days are pulled
// again; a window in flight is never planned again.
func TestPlanWindowsIdempotent(t *testing.T) {
	o := newOrchRig(t, day("2024-03-10"), nil)
	first := o.plan(t, false)
	// The two trailing days, and February's re-pull (its close days 1–5
	// passed unplanned: one pull covers them).
	if got := names(first); fmt.Sprint(got) != "[2024-03-08..2024-03-08 2024-03-09..2024-03-09 2024-02-01..2024-02-29]" {
		t.Fatalf("first plan = %v, want the two trailing days and February", got)
	}
	if again := o.plan(t, false); len(again) != 0 {
		t.Errorf("second firing planned %v; the windows are queued", names(again))
	}
	for _, m := range first {
		o.complete(t, m.Window, 3, "1.5")
	}
	o.set(o.clock().Add(time.Hour))
	if again := o.plan(t, true); len(again) != 0 {
		t.Errorf("a past-due firing an hour later planned %v; the reports were requested less than 4 h ago", names(again))
	}
	o.set(o.clock().Add(4 * time.Hour))
	if again := o.plan(t, false); len(again) != 2 || again[0].Window.From != "2024-03-08" || again[1].Window.From != "2024-03-09" {
		t.Errorf("five hours later planned %v, want both trailing days again (February's next close day is the 19th)", names(again))
	}
}

// TestPlanWindowsConcurrent: two planners at once enqueue each window once.
func TestPlanWindowsConcurrent(t *testing.T) {
	o := newOrchRig(t, day("2024-03-10"), map[string]string{config.KeyScopes: testScope + ";" + testScope2, config.KeyMetrics: "ActualCost,AmortizedCost"})
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		all []string
	)
	for range 4 {
		wg.Go(func() {
			msgs := o.plan(t, false)
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				all = append(all, m.Window.Scope+" "+m.Window.Metric+" "+m.Window.From)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, k := range all {
		seen[k]++
	}
	// 2 scopes × 2 metrics × (2 trailing days + February's first re-pull
	// is not due: 1 March is a close day and was missed, so it is).
	want := 2 * 2 * 3
	if len(seen) != want {
		t.Errorf("%d distinct windows planned, want %d: %v", len(seen), want, seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s planned %d times by concurrent firings", k, n)
		}
	}
}

// TestMonthClose walks a month through its close: open while it runs;
// closing from day 1 of the next, re-pulled on days 1–5 and 19 (once a
// day, whatever the timer does), each re-pull's restatement recorded
// against what was there before; final once the day-19 pull is in.
func TestMonthClose(t *testing.T) {
	o := newOrchRig(t, day("2024-03-31"), map[string]string{config.KeyTrailingDays: "1"})
	ctx := context.Background()
	march := func() *store.Month {
		m, err := o.store.GetMonth(ctx, testScope, "ActualCost", "2024-03")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// 31 March: the trailing day of 30 March; March is open.
	for _, m := range o.plan(t, false) {
		if m.Window.From != "2024-03-30" {
			continue
		}
		o.complete(t, m.Window, 4, "2.00")
	}
	if s := march().State; s != store.MonthOpen {
		t.Fatalf("March on 31 March is %s, want open", s)
	}
	// Every day of March was ingested by trailing windows: 4 rows a day.
	for d := day("2024-03-01"); d.Before(day("2024-03-30")); d = d.AddDate(0, 0, 1) {
		ds := d.Format(window.DateLayout)
		o.complete(t, window.Window{Scope: testScope, Metric: "ActualCost", From: ds, To: ds}, 4, "2.00")
	}

	marchWindow, _ := window.Month(testScope, "ActualCost", "2024-03")
	pulls := 0
	for d := day("2024-04-01"); !d.After(day("2024-04-21")); d = d.AddDate(0, 0, 1) {
		o.set(d)
		planned := o.plan(t, false)
		if d.Day() == 3 {
			planned = append(planned, o.plan(t, true)...) // fired twice on the 3rd
		}
		var month []windowMessage
		for _, m := range planned {
			if m.Window == marchWindow {
				month = append(month, m)
			}
		}
		closeDay := d.Day() <= 5 || d.Day() == 19
		if closeDay != (len(month) == 1) || len(month) > 1 {
			t.Fatalf("%s: planned March %d times, want %v", d.Format(window.DateLayout), len(month), closeDay)
		}
		if len(month) == 1 {
			pulls++
			// The first re-pull adds a row to 31 March (no trailing day
			// had it); the fourth restates 10 March.
			o.set(d.Add(2 * time.Hour))
			wd := o.complete(t, marchWindow, 4, "2.00")
			if pulls == 4 {
				for i := range wd.Days {
					if wd.Days[i].Date == "2024-03-10" {
						wd.Days[i].Rows, wd.Days[i].BilledCost = 5, decimal.RequireFromString("2.25")
					}
				}
				if err := o.srv.updateWindow(ctx, wd, func(*store.Window) {}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if st := march().State; d.Day() < 20 && st != store.MonthClosing {
			t.Fatalf("%s: March is %s, want closing", d.Format(window.DateLayout), st)
		}
	}
	m := march()
	if m.State != store.MonthFinal || m.FinalAt.IsZero() {
		t.Fatalf("March after its day-19 pull is %s (final at %v), want final", m.State, m.FinalAt)
	}
	if fmt.Sprint(m.Planned) != "[2024-04-01 2024-04-02 2024-04-03 2024-04-04 2024-04-05 2024-04-19]" || len(m.Pulls) != 6 {
		t.Fatalf("planned %v, %d pulls recorded", m.Planned, len(m.Pulls))
	}
	r0 := m.Pulls[0].Restatement
	if r0.RowsBefore != 30*4 || r0.RowsAfter != 31*4 || r0.RowsChanged != 4 || r0.DaysChanged != 1 || !r0.Totals[0].Delta.Equal(decimal.RequireFromString("2")) {
		t.Errorf("first re-pull restatement = %+v, want 4 new rows on 31 March", r0)
	}
	if r := m.Pulls[1].Restatement; r.Changed() {
		t.Errorf("second re-pull changed nothing but recorded %+v", r)
	}
	r3 := m.Pulls[3].Restatement
	if r3.RowsChanged != 1 || r3.DaysChanged != 1 || !r3.Totals[0].Delta.Equal(decimal.RequireFromString("0.25")) {
		t.Errorf("fourth re-pull restatement = %+v, want 10 March restated by one row and 0.25 EUR", r3)
	}
	if r := m.Pulls[4].Restatement; r.RowsChanged != 1 || !r.Totals[0].Delta.Equal(decimal.RequireFromString("-0.25")) {
		t.Errorf("fifth re-pull (back to 4 rows) restatement = %+v", r)
	}
	// April is open; a final month is never planned again.
	if a, err := o.store.GetMonth(ctx, testScope, "ActualCost", "2024-04"); err != nil || a.State != store.MonthOpen {
		t.Errorf("April = %+v, %v; want open", a, err)
	}
	o.set(day("2024-05-02"))
	for _, w := range o.plan(t, false) {
		if w.Window == marchWindow {
			t.Error("a final month was planned again")
		}
	}
}

// TestMonthCloseLostPull: a re-pull whose message was lost (or failed) is
// planned again once it is no longer in flight.
func TestMonthCloseLostPull(t *testing.T) {
	o := newOrchRig(t, day("2024-04-19"), map[string]string{config.KeyCloseDays: "19"})
	isMarch := func(ms []windowMessage) bool {
		for _, m := range ms {
			if m.Window.From == "2024-03-01" {
				return true
			}
		}
		return false
	}
	if !isMarch(o.plan(t, false)) {
		t.Fatal("the day-19 re-pull was not planned")
	}
	// The window is marked failed (say its message was poisoned).
	w, _ := window.Month(testScope, "ActualCost", "2024-03")
	wd, _ := o.srv.loadWindow(context.Background(), w)
	_ = o.srv.updateWindow(context.Background(), wd, func(x *store.Window) { x.State = store.StateFailed })
	o.set(day("2024-04-19").Add(time.Hour))
	if isMarch(o.plan(t, false)) {
		t.Error("planned again within the in-flight time")
	}
	o.set(day("2024-04-20"))
	if !isMarch(o.plan(t, false)) {
		t.Error("the failed final re-pull was not planned again the next day")
	}
}

// post an http trigger payload and decode the res output.
func (o *orchRig) http(t *testing.T, function, method, url string, params, query map[string]string, headers map[string][]string, body string) (invocation.HTTPResponse, []byte) {
	t.Helper()
	if headers == nil {
		headers = map[string][]string{}
	}
	req := invocation.NewHTTPRequest("req", invocation.HTTP{URL: url, Method: method, Params: params, Query: query, Headers: headers, Body: body}, sys)
	code, resp := o.post(t, function, req)
	if code != 200 {
		t.Fatalf("%s: invocation answered %d %v", function, code, resp.Logs)
	}
	b, _ := json.Marshal(resp.Outputs["res"])
	var res invocation.HTTPResponse
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("%s res %s: %v", function, b, err)
	}
	body2, _ := json.Marshal(res.Body)
	if s, ok := res.Body.(string); ok {
		body2 = []byte(s)
	}
	return res, body2
}

func TestIngestHTTPRunsAndIdempotency(t *testing.T) {
	o := newOrchRig(t, day("2024-03-10"), map[string]string{config.KeyScopes: testScope + ";" + testScope2})
	ingest := func(body string, headers map[string][]string) (invocation.HTTPResponse, ingestAnswer) {
		res, b := o.http(t, "IngestHttp", "POST", "https://app.example.net/api/ingest?code=secret", nil, nil, headers, body)
		var a ingestAnswer
		_ = json.Unmarshal(b, &a)
		return res, a
	}
	body := `{"scopes":["` + testScope + `"],"from":"2023-02-01","to":"2024-03-09"}`
	res, a := ingest(body, map[string][]string{"Idempotency-Key": {"backfill-1"}})
	if res.StatusCode != 202 || a.Windows != 14 || a.RunID == "" {
		t.Fatalf("backfill: %d %+v", res.StatusCode, a)
	}
	if want := "https://app.example.net/api/runs/" + a.RunID; a.StatusURL != want || res.Headers["Location"] != want {
		t.Errorf("status URL %q, Location %q, want %q (no key in it)", a.StatusURL, res.Headers["Location"], want)
	}
	sentMsgs := o.queue.take()
	if len(sentMsgs) != 14 {
		t.Fatalf("enqueued %d messages, want 14", len(sentMsgs))
	}
	for _, m := range sentMsgs {
		if !strings.Contains(string(m.body), `"runId":"`+a.RunID+`"`) || m.delay != 0 {
			t.Errorf("message %s delay %s", m.body, m.delay)
		}
	}
	run, err := o.store.GetRun(context.Background(), a.RunID)
	if err != nil || !run.Enqueued || len(run.Windows) != 14 || run.Windows[0].From != "2023-02-01" || run.Windows[13].To != "2024-03-09" || run.IdempotencyKey != "backfill-1" {
		t.Fatalf("run document %+v, %v", run, err)
	}

	// The same key in the body: the same run, nothing enqueued again.
	res, again := ingest(`{"scopes":["`+testScope+`"],"from":"2023-02-01","to":"2024-03-09","idempotencyKey":"backfill-1"}`, nil)
	if res.StatusCode != 202 || again.RunID != a.RunID || !again.Existing {
		t.Errorf("repeated request: %d %+v, want run %s", res.StatusCode, again, a.RunID)
	}
	if q := o.queue.take(); len(q) != 0 {
		t.Errorf("a repeated request enqueued %d messages", len(q))
	}
	// Without a key every request is a new run.
	_, other := ingest(body, nil)
	if other.RunID == a.RunID || other.RunID == "" {
		t.Errorf("a request without a key reused run %s", other.RunID)
	}
	o.queue.take()

	for _, tc := range []struct {
		body    string
		headers map[string][]string
		want    string
	}{
		{`{"from":"2024-01-01","to":"2024-01-02"}`, map[string][]string{"Idempotency-Key": {"backfill-1"}}, "was used for another request"},
		{`{"from":"2024-01-01","to":"2024-01-02","idempotencyKey":"a"}`, map[string][]string{"Idempotency-Key": {"b"}}, "differ"},
		{`{"to":"2024-01-02"}`, nil, "from and to are required"},
		{`{"scopes":["` + testScope + `","` + strings.ToUpper(testScope) + `"],"from":"2024-01-01","to":"2024-01-02"}`, nil, "listed twice"},
		{`{"from":"2024-01-01","to":"2024-01-02","metrics":["ActualCost","actualcost"]}`, nil, "listed twice"},
		{`{"from":"2024-01-01","to":"2024-01-02"} {}`, nil, "more than one JSON value"},
		{`[]`, nil, "invalid body"},
		{`{"scopes":["subscriptions/x/resourceGroups/rg"],"from":"2024-01-01","to":"2024-01-02"}`, nil, "resource group"},
		{`{"from":"2024-01-01","to":"2024-01-02","idempotencyKey":"` + strings.Repeat("k", 201) + `"}`, nil, "at most 200"},
	} {
		res, b := o.http(t, "IngestHttp", "POST", "https://app.example.net/api/ingest", nil, nil, tc.headers, tc.body)
		if res.StatusCode != 400 || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %s, want 400 naming %q", tc.body, res.StatusCode, b, tc.want)
		}
		if q := o.queue.take(); len(q) != 0 {
			t.Errorf("%s: enqueued %d", tc.body, len(q))
		}
	}
}

// failingQueue fails the first n sends.
type failingQueue struct {
	fakeQueue
	fail int
}

func (q *failingQueue) Send(ctx context.Context, name string, v any, delay time.Duration) error {
	q.mu.Lock()
	if q.fail > 0 {
		q.fail--
		q.mu.Unlock()
		return errors.New("queue unavailable")
	}
	q.mu.Unlock()
	return q.fakeQueue.Send(ctx, name, v, delay)
}

// TestIngestHTTPEnqueueFailure: a run whose windows could not all be
// enqueued answers 500 (the caller retries), and the retry with the same
// key enqueues them.
func TestIngestHTTPEnqueueFailure(t *testing.T) {
	o := newOrchRig(t, day("2024-03-10"), nil)
	fq := &failingQueue{fail: 1}
	o.srv.d.Queue = fq
	req := invocation.NewHTTPRequest("req", invocation.HTTP{URL: "http://localhost:7071/api/ingest", Method: "POST",
		Headers: map[string][]string{"Idempotency-Key": {"k"}}, Body: `{"from":"2024-01-01","to":"2024-02-10"}`}, sys)
	if code, _ := o.post(t, "IngestHttp", req); code != 500 {
		t.Fatalf("with the queue down: %d, want 500 so the caller retries", code)
	}
	fq.take()
	code, resp := o.post(t, "IngestHttp", req)
	if code != 200 || !strings.Contains(fmt.Sprint(resp.Outputs["res"]), "202") {
		t.Fatalf("retry: %d %v", code, resp.Outputs)
	}
	if q := fq.take(); len(q) != 2 {
		t.Errorf("retry enqueued %d windows, want 2", len(q))
	}
}

func TestIngestHTTPDryRunEstimate(t *testing.T) {
	o := newOrchRig(t, day("2024-03-10"), map[string]string{config.KeyScopes: testScope + ";" + testScope2, config.KeyMetrics: "ActualCost,AmortizedCost"})
	res, b := o.http(t, "IngestHttp", "POST", "http://localhost:7071/api/ingest", nil, nil, nil, `{"from":"2023-02-01","to":"2024-03-09","dryRun":true}`)
	var a ingestAnswer
	_ = json.Unmarshal(b, &a)
	// 2 scopes × 2 metrics × 14 months: 28 requests per scope, at 10 an
	// hour: 2 h (the 21st to 28th in the third hour's first minutes).
	if res.StatusCode != 200 || a.Requests != 56 || a.EstimateSeconds != 2*3600 || a.RunID != "" {
		t.Errorf("dry run = %d %s", res.StatusCode, b)
	}
	if q := o.queue.take(); len(q) != 0 {
		t.Errorf("dry run enqueued %d", len(q))
	}
}

func TestRunStatus(t *testing.T) {
	o := newOrchRig(t, day("2024-03-10"), nil)
	_, b := o.http(t, "IngestHttp", "POST", "http://localhost:7071/api/ingest", nil, nil, nil, `{"from":"2024-01-15","to":"2024-03-09"}`)
	var a ingestAnswer
	_ = json.Unmarshal(b, &a)
	msgs := o.queue.take()
	if len(msgs) != 3 {
		t.Fatalf("%d windows", len(msgs))
	}
	var ws []windowMessage
	for _, m := range msgs {
		var w windowMessage
		_ = json.Unmarshal(m.body, &w)
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b windowMessage) int { return strings.Compare(a.Window.From, b.Window.From) })
	o.set(o.clock().Add(time.Minute))
	o.complete(t, ws[0].Window, 2, "1")
	wd, _ := o.srv.loadWindow(context.Background(), ws[1].Window)
	_ = o.srv.updateWindow(context.Background(), wd, func(x *store.Window) {
		x.State, x.Generation = store.StateFailed, o.clock().UnixMilli()
		x.AddError("request report: HTTP 403: the principal needs Cost Management Reader")
	})

	get := func(id string) (int, status.Progress, string) {
		res, b := o.http(t, "RunStatus", "GET", "http://localhost:7071/api/runs/"+id, map[string]string{"id": id}, nil, nil, "")
		var p status.Progress
		_ = json.Unmarshal(b, &p)
		return res.StatusCode, p, string(b)
	}
	code, p, raw := get(a.RunID)
	if code != 200 || p.Total != 3 || p.Complete != 1 || p.Failed != 1 || p.Pending != 1 || p.State != status.RunRunning {
		t.Fatalf("run status %d %s", code, raw)
	}
	if p.Windows[0].State != "complete" || p.Windows[0].Rows != 17*2 || p.Windows[1].State != "failed" || p.Windows[2].State != "queued" || len(p.Errors) != 1 || !strings.Contains(p.Errors[0], "403") {
		t.Errorf("windows %+v errors %v", p.Windows, p.Errors)
	}
	if code, _, _ := get("run-missing"); code != 404 {
		t.Errorf("unknown run: %d, want 404", code)
	}
	if code, _, raw := get("nonsense"); code != 400 || !strings.Contains(raw, "run-") {
		t.Errorf("bad run id: %d %s, want 400", code, raw)
	}
}

func TestCoverageJSONAndHTML(t *testing.T) {
	o := newOrchRig(t, day("2024-03-10"), nil)
	w := func(from, to string) window.Window {
		return window.Window{Scope: testScope, Metric: "ActualCost", From: from, To: to}
	}
	o.set(day("2024-03-02"))
	o.complete(t, w("2024-02-01", "2024-02-29"), 3, "1.25")
	o.set(day("2024-03-10"))
	o.complete(t, w("2024-03-09", "2024-03-09"), 5, "2")
	// 1 March: its pull failed after no success.
	wd, _ := o.srv.loadWindow(context.Background(), w("2024-03-01", "2024-03-01"))
	_ = o.srv.updateWindow(context.Background(), wd, func(x *store.Window) {
		x.State, x.Generation = store.StateFailed, o.clock().UnixMilli()
		x.AddError("report failed")
	})
	query := map[string]string{"scope": "/" + strings.ToUpper(testScope), "from": "2024-02-01", "to": "2024-03-09"}
	res, b := o.http(t, "Coverage", "GET", "http://localhost:7071/api/coverage", nil, query, nil, "")
	var ans coverageAnswer
	if err := json.Unmarshal(b, &ans); err != nil || res.StatusCode != 200 || len(ans.Scopes) != 1 {
		t.Fatalf("coverage: %d %s", res.StatusCode, b)
	}
	c := ans.Scopes[0]
	// February: 29 days, closing on 10 March and pulled on 2 March (after
	// it ended): ingested. March 1 failed, 2–7 missing, 8 missing (the
	// trailing day was never pulled), 9 ingested.
	want := status.Counts{Ingested: 30, Missing: 7, Failed: 1}
	if c.Counts != want || ans.Counts != want {
		t.Errorf("counts %+v (total %+v), want %+v", c.Counts, ans.Counts, want)
	}
	if d := c.Days[0]; d.Rows != 3 || d.Totals[0].BilledCost.String() != "1.25" || d.State != status.Ingested {
		t.Errorf("1 February = %+v", d)
	}
	if d := c.Days[29]; d.State != status.Failed || d.Error != "report failed" {
		t.Errorf("1 March = %+v", d)
	}
	if len(c.Months) != 2 || c.Months[0].State != store.MonthClosing || c.Months[1].State != store.MonthOpen {
		t.Errorf("months = %+v", c.Months)
	}

	// After its final close day (the 19th) February is final, and a pull
	// from before that is stale.
	o.set(day("2024-03-21"))
	_, b = o.http(t, "Coverage", "GET", "http://localhost:7071/api/coverage", nil, map[string]string{"from": "2024-02-01", "to": "2024-02-29"}, nil, "")
	_ = json.Unmarshal(b, &ans)
	if ans.Counts != (status.Counts{Stale: 29}) || ans.Scopes[0].Months[0].State != store.MonthFinal {
		t.Errorf("February after its close day 19 without the final pull: %+v %+v", ans.Counts, ans.Scopes[0].Months)
	}

	res, page := o.http(t, "Coverage", "GET", "http://localhost:7071/api/coverage", nil, map[string]string{"from": "2024-02-01", "to": "2024-03-09"}, map[string][]string{"Accept": {"text/html,application/xhtml+xml"}}, "")
	if res.Headers["Content-Type"] != "text/html; charset=utf-8" || !bytes.Contains(page, []byte("<!DOCTYPE html>")) {
		t.Fatalf("html: %v %.200s", res.Headers, page)
	}
	if n := bytes.Count(page, []byte(`data-state="failed" style`)); n != 1 {
		t.Errorf("html has %d failed day cells, want 1", n)
	}
	for _, tc := range []struct{ q map[string]string }{
		{map[string]string{"scope": testScope2}},
		{map[string]string{"from": "2024-13-01"}},
		{map[string]string{"from": "2024-03-02", "to": "2024-03-01"}},
		{map[string]string{"metric": "Usage"}},
		{map[string]string{"format": "xml"}},
		{map[string]string{"from": "2020-01-01", "to": "2024-01-01"}},
	} {
		if res, b := o.http(t, "Coverage", "GET", "http://localhost:7071/api/coverage", nil, tc.q, nil, ""); res.StatusCode != 400 {
			t.Errorf("%v: %d %s, want 400", tc.q, res.StatusCode, b)
		}
	}
}

func TestRecordPoison(t *testing.T) {
	o := newOrchRig(t, day("2024-03-10"), nil)
	ctx := context.Background()
	w := window.Window{Scope: testScope, Metric: "ActualCost", From: "2024-03-08", To: "2024-03-08"}
	wd, _ := o.srv.loadWindow(ctx, w)
	_ = o.srv.updateWindow(ctx, wd, func(x *store.Window) {
		x.State, x.Generation = store.StatePolling, 1700000000000
		x.AddError("will retry: write manifest: connection reset")
	})
	msg := fmt.Sprintf(`{"v":1,"window":{"scope":%q,"metric":"ActualCost","from":"2024-03-08","to":"2024-03-08"},"step":"poll","generation":1700000000000,"location":"https://x","attempt":1}`, testScope)
	if code, resp := o.post(t, "RecordPoison", queueReq([]byte(msg), 1)); code != 200 {
		t.Fatalf("%d %v", code, resp.Logs)
	}
	got, _ := o.store.GetWindow(ctx, testScope, wd.ID)
	last := got.Errors[len(got.Errors)-1]
	if got.State != store.StateFailed || !strings.Contains(last, "cost-windows-poison") || !strings.Contains(last, "connection reset") {
		t.Errorf("window after poison: %s %q", got.State, got.Errors)
	}
	if !strings.Contains(o.log.String(), `"msg":"ALERT: poisoned message"`) || !strings.Contains(o.log.String(), `"alert":true`) {
		t.Errorf("no alert-level line in %s", o.log)
	}

	// A part message (IngestPart's) names its window too.
	w2 := window.Window{Scope: testScope, Metric: "ActualCost", From: "2024-03-07", To: "2024-03-07"}
	part := fmt.Sprintf(`{"v":1,"window":{"scope":%q,"metric":"ActualCost","from":"2024-03-07","to":"2024-03-07"},"part":2,"offset":1234}`, testScope)
	if code, _ := o.post(t, "RecordPartPoison", queueReq([]byte(part), 1)); code != 200 {
		t.Fatal(code)
	}
	got, _ = o.store.GetWindow(ctx, testScope, store.WindowID(w2.Scope, w2.Metric, w2.From, w2.To))
	if got == nil || got.State != store.StateFailed || !strings.Contains(fmt.Sprint(got.Errors), "cost-parts-poison") {
		t.Errorf("part poison: %+v", got)
	}

	// A poll of an attempt that a newer one superseded does not fail it.
	_ = o.srv.updateWindow(ctx, got, func(x *store.Window) { x.State, x.Generation = store.StatePolling, 1800000000000 })
	old := fmt.Sprintf(`{"v":1,"window":{"scope":%q,"metric":"ActualCost","from":"2024-03-07","to":"2024-03-07"},"step":"poll","generation":1700000000000,"location":"https://x","attempt":1}`, testScope)
	o.post(t, "RecordPoison", queueReq([]byte(old), 1))
	got, _ = o.store.GetWindow(ctx, testScope, got.ID)
	if got.State != store.StatePolling {
		t.Errorf("a superseded attempt's poison set the window %s", got.State)
	}

	// A manifest that could not be ingested.
	w3 := window.Window{Scope: testScope, Metric: "ActualCost", From: "2024-02-01", To: "2024-02-29"}
	blob := fmt.Sprintf(`{"FunctionId":"Host.Functions.IngestManifest","BlobType":"BlockBlob","ContainerName":"cost-manifests","BlobName":"%s","ETag":"\"0x1\""}`, "subscriptions/1caaa5a3-2b66-438e-8ab4-bce37d518c5d/ActualCost/2024-02-01_2024-02-29/1700000000000/manifest.json")
	if code, _ := o.post(t, "RecordBlobPoison", queueReq([]byte(blob), 1)); code != 200 {
		t.Fatal(code)
	}
	got, _ = o.store.GetWindow(ctx, testScope, store.WindowID(w3.Scope, w3.Metric, w3.From, w3.To))
	if got == nil || !strings.Contains(fmt.Sprint(got.Errors), "could not be ingested") {
		t.Errorf("blob poison: %+v", got)
	}

	// Garbage is still reported at alert level, and not retried.
	o.log.Reset()
	if code, _ := o.post(t, "RecordPoison", queueReq([]byte("not json"), 1)); code != 200 {
		t.Fatal(code)
	}
	if !strings.Contains(o.log.String(), "names no window") {
		t.Errorf("log %s", o.log)
	}
}

// TestGovernorHook: report requests of one scope beyond 2 a minute wait
// in the queue with the delay, and go when they come back.
func TestGovernorHook(t *testing.T) {
	o := newOrchRig(t, day("2024-03-10"), map[string]string{config.KeyRateSlack: "2s"})
	msg := func(d string) []byte {
		return []byte(fmt.Sprintf(`{"v":1,"window":{"scope":%q,"metric":"ActualCost","from":%q,"to":%q},"step":"request","attempt":0}`, testScope, d, d))
	}
	for _, d := range []string{"2024-03-01", "2024-03-02", "2024-03-03"} {
		if code, resp := o.post(t, "ProcessWindow", queueReq(msg(d), 1)); code != 200 {
			t.Fatalf("%d %v", code, resp.Logs)
		}
	}
	if o.cost.requests != 2 {
		t.Fatalf("%d report requests at once, want 2 (2 per minute per scope)", o.cost.requests)
	}
	var waiting *sent
	for _, m := range o.queue.take() {
		if strings.Contains(string(m.body), `"step":"request"`) {
			waiting = &m
		}
	}
	if waiting == nil || waiting.delay != 62*time.Second || !strings.Contains(string(waiting.body), `"ticket":"`) {
		t.Fatalf("the third request was not re-enqueued for a minute and the slack: %+v", waiting)
	}
	wd, _ := o.store.GetWindow(context.Background(), testScope, store.WindowID(testScope, "ActualCost", "2024-03-03", "2024-03-03"))
	if wd.Attempts != 0 || wd.Generation != 0 {
		t.Errorf("waiting for the quota counted as an attempt: %+v", wd)
	}
	o.set(o.clock().Add(waiting.delay))
	if code, _ := o.post(t, "ProcessWindow", queueReq(waiting.body, 1)); code != 200 || o.cost.requests != 3 {
		t.Errorf("back at its time: %d, %d requests", code, o.cost.requests)
	}
}
