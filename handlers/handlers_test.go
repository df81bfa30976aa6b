package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/costsync/costsync/internal/realdata"
	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// fakeCost serves one report: 202 on request, 202 then 200 on polls.
type fakeCost struct {
	mu       sync.Mutex
	requests int
	polls    int
	readyAt  int // polls answered 202 before the result
	blobs    map[string][]byte
	status   string
	reqErr   error // returned by the next RequestReport, once
}

func (f *fakeCost) RequestReport(ctx context.Context, s costapi.Scope, r costapi.ReportRequest) (*costapi.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if err := f.reqErr; err != nil {
		f.reqErr = nil
		return nil, err
	}
	return &costapi.Report{Location: fmt.Sprintf("https://arm.test/op/%d", f.requests), RetryAfter: 20 * time.Second}, nil
}

func (f *fakeCost) PollReport(ctx context.Context, s costapi.Scope, loc string) (*costapi.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	if f.polls <= f.readyAt {
		return &costapi.Report{Location: loc, RetryAfter: 30 * time.Second}, nil
	}
	rep := &costapi.Report{Done: true, Status: f.status}
	for name, b := range f.blobs {
		rep.Blobs = append(rep.Blobs, costapi.Blob{Link: "https://blob.test/" + name, Bytes: int64(len(b))})
	}
	return rep, nil
}

func (f *fakeCost) OpenBlob(ctx context.Context, link string) (io.ReadCloser, error) {
	b, ok := f.blobs[strings.TrimPrefix(link, "https://blob.test/")]
	if !ok {
		return nil, errors.New("no such blob")
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

type fakeLanding struct {
	mu        sync.Mutex
	parts     map[string][]byte
	manifests map[string][]byte
}

func (l *fakeLanding) PutPart(ctx context.Context, w window.Window, gen int64, i int, r io.Reader) (landing.Part, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return landing.Part{}, err
	}
	name := fmt.Sprintf("%s/part_%05d.csv", landing.Dir(w, gen), i)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.parts[name] = b
	return landing.Part{Blob: name, Bytes: int64(len(b))}, nil
}

func (l *fakeLanding) PutManifest(ctx context.Context, m *landing.Manifest) (string, error) {
	b, _ := json.Marshal(m)
	name := landing.ManifestName(m.Window, m.Generation)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.manifests[name] = b
	return name, nil
}

func (l *fakeLanding) OpenPart(ctx context.Context, p landing.Part) (io.ReadCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.parts[p.Blob]
	if !ok {
		return nil, landing.ErrPartMissing
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

type sent struct {
	queue string
	body  []byte
	delay time.Duration
}

type fakeQueue struct {
	mu   sync.Mutex
	msgs []sent
}

func (q *fakeQueue) Send(ctx context.Context, name string, v any, delay time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, sent{name, b, delay})
	return nil
}

func (q *fakeQueue) take() []sent {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.msgs
	q.msgs = nil
	return out
}

const testScope = "subscriptions/1caaa5a3-2b66-438e-8ab4-bce37d518c5d"

type rig struct {
	srv   *Server
	cost  *fakeCost
	land  *fakeLanding
	queue *fakeQueue
	store *store.Memory
}

func newRig(t *testing.T, csv []byte) *rig {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			config.KeyBlobURL: "https://a.blob.core.windows.net", config.KeyQueueURL: "https://a.queue.core.windows.net",
			config.KeyCosmosEndpoint: "https://c.documents.azure.com", config.KeyScopes: testScope,
			config.KeyTrailingDays: "1", config.KeyToday: "2023-09-22",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{
		cost:  &fakeCost{readyAt: 1, status: costapi.StatusCompleted, blobs: map[string][]byte{"part0.csv": csv}},
		land:  &fakeLanding{parts: map[string][]byte{}, manifests: map[string][]byte{}},
		queue: &fakeQueue{},
		store: store.NewMemory(),
	}
	r.srv = New(Deps{Config: cfg, Cost: r.cost, Landing: r.land, Store: r.store, Queue: r.queue})
	return r
}

// post sends a payload as the host does and checks the reply is JSON.
// ingestOnePart lands csv as the one part of a window of 2023-09-21, posts
// its manifest to IngestManifest, checks that the host got 200 and returns
// the window, the part and the window's ledger document.
func (r *rig) ingestOnePart(t *testing.T, csv string) (window.Window, landing.Part, *store.Window) {
	t.Helper()
	w := window.Window{Scope: testScope, Metric: "ActualCost", From: "2023-09-21", To: "2023-09-21"}
	const gen = 1700000000000
	part, _ := r.land.PutPart(context.Background(), w, gen, 0, strings.NewReader(csv))
	man, _ := json.Marshal(landing.Manifest{Version: landing.ManifestVersion, Source: "cost-details", Window: w, Generation: gen, Parts: []landing.Part{part}})
	code, resp := r.post(t, "IngestManifest", invocation.NewBlobRequest("manifest", invocation.BlobInfo{Content: man, Tokens: map[string]string{"name": landing.ManifestName(w, gen)}}, sys))
	if code != 200 {
		t.Fatalf("IngestManifest answered %d %v", code, resp.Logs)
	}
	r.deliverParts(t)
	wd, err := r.store.GetWindow(context.Background(), w.Scope, store.WindowID(w.Scope, w.Metric, w.From, w.To))
	if err != nil {
		t.Fatal(err)
	}
	return w, part, wd
}

func (r *rig) post(t *testing.T, function string, req *invocation.Request) (int, invocation.Response) {
	t.Helper()
	body, _ := json.Marshal(req)
	hr := httptest.NewRequest(http.MethodPost, "/"+function, bytes.NewReader(body))
	hr.Header.Set("X-Azure-Functions-InvocationId", "11111111-2222-3333-4444-555555555555")
	rec := httptest.NewRecorder()
	r.srv.ServeHTTP(rec, hr)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s answered Content-Type %q, the host needs application/json", function, ct)
	}
	var resp invocation.Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("%s answered a body that is not JSON: %s", function, rec.Body.String())
	}
	return rec.Code, resp
}

var sys = invocation.Sys{MethodName: "x", UtcNow: "2023-09-22T06:00:00.1234567Z", RandGuid: "e59556b5-892a-4465-a19d-4396f0978dab"}

func queueReq(body []byte, dequeue int64) *invocation.Request {
	now := time.Now().UTC()
	return invocation.NewQueueRequest("msg", invocation.QueueMessage{Text: string(body), DequeueCount: dequeue, ID: "52d53c5f-e212-487e-998b-abbe3b9d51e4", PopReceipt: "MThGZWIyMDI1", InsertionTime: now, ExpirationTime: now.Add(7 * 24 * time.Hour), NextVisibleTime: now.Add(time.Minute)}, sys)
}

// TestPipelineInMemory drives the four functions with the host's exact
// payloads: the timer plans a window, the queue trigger requests, polls by
// re-enqueueing with the service's delay, lands the part and writes the
// manifest, and the blob trigger ingests it. The real FinOps toolkit EA file
// must arrive with every row and its exact total. (reference/cost-apis.md
// gives 8.545007786741936: a float64 sum, 2e-17 short of the exact one.)
func TestPipelineInMemory(t *testing.T) {
	csv, err := os.ReadFile(realdata.Path(t, "finops-toolkit/powershell-test-assets/EA_ActualCost_Small.csv"))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, csv)

	// The timer's first run: Last without offset.
	code, resp := r.post(t, "PlanWindows", invocation.NewTimerRequest("timer", time.Time{}, time.Now(), false, sys))
	if code != 200 {
		t.Fatalf("PlanWindows: %d %v", code, resp.Logs)
	}
	planned, _ := json.Marshal(resp.Outputs["windows"])
	var msgs []json.RawMessage
	_ = json.Unmarshal(planned, &msgs)
	// The trailing day, and August's final re-pull (due since 19 September).
	if len(msgs) != 2 {
		t.Fatalf("want 2 planned windows, got %s", planned)
	}
	// The window is 2023-09-21, the day before COSTSYNC_TODAY.
	if !strings.Contains(string(msgs[0]), `"from":"2023-09-21"`) || !strings.Contains(string(msgs[1]), `"from":"2023-08-01","metric":"ActualCost","scope":"`+testScope+`","to":"2023-08-31"`) {
		t.Errorf("planned %s", planned)
	}

	// request → 202: a poll message is enqueued with the Retry-After delay.
	if code, resp = r.post(t, "ProcessWindow", queueReq(msgs[0], 1)); code != 200 {
		t.Fatalf("request: %d %v", code, resp.Logs)
	}
	q := r.queue.take()
	if len(q) != 1 || q[0].delay != 20*time.Second || !strings.Contains(string(q[0].body), `"step":"poll"`) {
		t.Fatalf("after request, queue = %+v", q)
	}
	// poll → 202 again: re-enqueued with the new delay, never a sleep.
	if code, _ = r.post(t, "ProcessWindow", queueReq(q[0].body, 1)); code != 200 {
		t.Fatal(code)
	}
	q = r.queue.take()
	if len(q) != 1 || q[0].delay != 30*time.Second {
		t.Fatalf("after first poll, queue = %+v", q)
	}
	// poll → 200: the part is landed, then the manifest.
	if code, resp = r.post(t, "ProcessWindow", queueReq(q[0].body, 1)); code != 200 {
		t.Fatalf("final poll: %d %v", code, resp.Logs)
	}
	if len(r.land.manifests) != 1 || len(r.land.parts) != 1 {
		t.Fatalf("landed %d manifests, %d parts", len(r.land.manifests), len(r.land.parts))
	}
	var name string
	var man []byte
	for name, man = range r.land.manifests {
	}
	blob := func() *invocation.Request {
		return invocation.NewBlobRequest("manifest", invocation.BlobInfo{Content: man, URI: "https://a.blob.core.windows.net/cost-manifests/" + name, Tokens: map[string]string{"name": name}, ContentLength: int64(len(man))}, sys)
	}
	if code, resp = r.post(t, "IngestManifest", blob()); code != 200 {
		t.Fatalf("IngestManifest: %d %v", code, resp.Logs)
	}
	r.deliverParts(t)
	wid := store.WindowID(testScope, "ActualCost", "2023-09-21", "2023-09-21")
	wd, err := r.store.GetWindow(context.Background(), testScope, wid)
	if err != nil {
		t.Fatal(err)
	}
	if wd.State != store.StateComplete || wd.Rows != 11 || len(wd.Totals) != 1 || wd.Totals[0].BilledCost.String() != "8.5450077867419368" {
		t.Fatalf("ledger = state %s rows %d totals %+v errors %v", wd.State, wd.Rows, wd.Totals, wd.Errors)
	}
	// The file's lines are dated over several days: every day is reconciled.
	stored, _ := r.store.CountWindow(context.Background(), testScope, "ActualCost", dayList(wd.Days))
	if fmt.Sprint(stored) != fmt.Sprint(wd.Days) {
		t.Errorf("stored %v, ledger %v", stored, wd.Days)
	}

	// Delivered again (the host may): the same state, nothing rewritten.
	if code, _ = r.post(t, "IngestManifest", blob()); code != 200 {
		t.Fatal(code)
	}
	r.deliverParts(t)
	again, _ := r.store.CountWindow(context.Background(), testScope, "ActualCost", dayList(wd.Days))
	if fmt.Sprint(again) != fmt.Sprint(stored) {
		t.Errorf("second delivery changed the documents: %v then %v", stored, again)
	}
}

func dayList(days []store.DayTotal) []string {
	var out []string
	for _, d := range days {
		out = append(out, d.Date)
	}
	return out
}

func TestThrottleReenqueuesWithTheLargestWait(t *testing.T) {
	r := newRig(t, nil)
	r.cost.reqErr = &costapi.Error{Op: "request report", StatusCode: 429, Retryable: true, Throttled: true, RetryAfter: 97 * time.Second}
	msg := []byte(`{"v":1,"window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"step":"request","attempt":0}`)
	code, resp := r.post(t, "ProcessWindow", queueReq(msg, 1))
	if code != 200 {
		t.Fatalf("a throttled window must wait in the queue, not fail the invocation: %d %v", code, resp.Logs)
	}
	q := r.queue.take()
	if len(q) != 1 || q[0].delay != 97*time.Second || !strings.Contains(string(q[0].body), `"step":"request"`) {
		t.Fatalf("queue = %+v", q)
	}
	wd, _ := r.store.GetWindow(context.Background(), testScope, store.WindowID(testScope, "ActualCost", "2023-09-21", "2023-09-21"))
	if wd.Throttles != 1 {
		t.Errorf("throttles = %d", wd.Throttles)
	}
}

// Bad input is permanent: answered 200 (no pointless host retries) with the
// reason logged, and nothing enqueued.
func TestBadMessagesArePermanent(t *testing.T) {
	r := newRig(t, nil)
	for name, body := range map[string]string{
		"unknown field": `{"v":1,"window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"step":"request","attempt":0,"extra":1}`,
		"bad scope":     `{"v":1,"window":{"scope":"subscriptions/x/resourceGroups/y","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"step":"request","attempt":0}`,
		"bad date":      `{"v":1,"window":{"scope":"` + testScope + `","metric":"ActualCost","from":"21/09/2023","to":"2023-09-21"},"step":"request","attempt":0}`,
		"not json":      `hello`,
	} {
		t.Run(name, func(t *testing.T) {
			code, resp := r.post(t, "ProcessWindow", queueReq([]byte(body), 1))
			if code != 200 || len(resp.Logs) == 0 {
				t.Errorf("code %d logs %v", code, resp.Logs)
			}
			if q := r.queue.take(); len(q) != 0 {
				t.Errorf("enqueued %v", q)
			}
		})
	}
}

func TestIngestHTTPValidation(t *testing.T) {
	r := newRig(t, nil)
	post := func(body string) (int, invocation.HTTPResponse, []sent) {
		req := invocation.NewHTTPRequest("req", invocation.HTTP{URL: "http://localhost:7071/api/ingest", Method: "POST", Headers: map[string][]string{"Content-Type": {"application/json"}}, Body: body}, sys)
		code, resp := r.post(t, "IngestHttp", req)
		var res invocation.HTTPResponse
		b, _ := json.Marshal(resp.Outputs["res"])
		_ = json.Unmarshal(b, &res)
		ws := r.queue.take() // IngestHttp enqueues with the queue client
		if code != 200 {
			t.Fatalf("the host needs 200 with the http output, got %d", code)
		}
		return code, res, ws
	}
	for _, tc := range []struct{ body, want string }{
		{`{"from":"2023-09-01","to":"2023-08-01"}`, "before from"},
		{`{"from":"2023-09-01","to":"2023-10-01"}`, "future"},
		{`{"from":"2022-01-01","to":"2023-09-01"}`, "13 months"},
		{`{"scopes":["subscriptions/00000000-0000-0000-0000-000000000009"],"from":"2023-09-01","to":"2023-09-02"}`, "not configured"},
		{`{"from":"09/01/2023","to":"2023-09-02"}`, "YYYY-MM-DD"},
		{`{"from":"2023-09-01","to":"2023-09-02","metrics":["Usage"]}`, "metric"},
		{`{"from":"2023-09-01","to":"2023-09-02","extra":1}`, "unknown field"},
	} {
		_, res, ws := post(tc.body)
		if res.StatusCode != 400 || !strings.Contains(fmt.Sprint(res.Body), tc.want) || len(ws) != 0 {
			t.Errorf("%s: got %d %v (windows %d), want 400 naming %q", tc.body, res.StatusCode, res.Body, len(ws), tc.want)
		}
	}
	_, res, ws := post(`{"from":"2023-07-15","to":"2023-09-21"}`)
	if res.StatusCode != 202 || len(ws) != 3 {
		t.Fatalf("backfill: %d %v, %d windows", res.StatusCode, res.Body, len(ws))
	}
	_, res, ws = post(`{"from":"2023-07-15","to":"2023-09-21","dryRun":true}`)
	if res.StatusCode != 200 || len(ws) != 0 || !strings.Contains(fmt.Sprint(res.Body), "requests:3") {
		t.Fatalf("dry run: %d %v, %d windows", res.StatusCode, res.Body, len(ws))
	}
}

func TestReadinessAndBadManifest(t *testing.T) {
	r := newRig(t, nil)
	rec := httptest.NewRecorder()
	r.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 200 {
		t.Errorf("GET / = %d", rec.Code)
	}
	code, resp := r.post(t, "IngestManifest", &invocation.Request{Data: map[string]json.RawMessage{"manifest": json.RawMessage(`"bm90IGpzb24="`)}, Metadata: map[string]json.RawMessage{"name": invocation.Encode("x.json")}})
	if code != 200 || len(resp.Logs) == 0 || !strings.Contains(resp.Logs[0], "manifest") {
		t.Errorf("a manifest that is not JSON is permanent: %d %v", code, resp.Logs)
	}
}

// A bad line is quarantined with its file, line and column; the rest of the
// part is ingested and the window still completes and reconciles.
func TestIngestQuarantinesBadLines(t *testing.T) {
	r := newRig(t, nil)
	csv := "SubscriptionId,Date,MeterId,Cost,BillingCurrency,ResourceId,ChargeType\n" +
		"1caaa5a3-2b66-438e-8ab4-bce37d518c5d,09/21/2023,m1,1.25,USD,/subscriptions/x/r1,Usage\n" +
		"1caaa5a3-2b66-438e-8ab4-bce37d518c5d,09/21/2023,m2,not-a-number,USD,/subscriptions/x/r2,Usage\n" +
		"1caaa5a3-2b66-438e-8ab4-bce37d518c5d,09/21/2023,m3,0.000000000000000001,USD,/subscriptions/x/r3,Usage\n"
	w, part, wd := r.ingestOnePart(t, csv)
	if wd.State != store.StateComplete || wd.Rows != 2 || wd.Quarantined != 1 || wd.Totals[0].BilledCost.String() != "1.250000000000000001" {
		t.Fatalf("window: state %s rows %d quarantined %d totals %v errors %v", wd.State, wd.Rows, wd.Quarantined, wd.Totals, wd.Errors)
	}
	q, err := r.store.ListQuarantine(context.Background(), w.Scope, wd.ID)
	if err != nil || len(q) != 1 {
		t.Fatalf("quarantine: %v %v", q, err)
	}
	if q[0].Line != 3 || q[0].File != part.Blob || !strings.EqualFold(q[0].Column, "Cost") || q[0].Reason == "" {
		t.Errorf("quarantine entry %+v: want line 3, column Cost, file %s", q[0], part.Blob)
	}
}

// A corrupt part (here a quote left open to the end) fails the window
// permanently: answered 200 and recorded, not retried until poisoned.
func TestIngestCorruptPartIsPermanent(t *testing.T) {
	r := newRig(t, nil)
	csv := "Date,Cost,BillingCurrency,ResourceId\n" +
		"09/21/2023,1.25,USD,\"/subscriptions/x/r1\n" +
		"09/21/2023,2,USD,/subscriptions/x/r2\n"
	_, _, wd := r.ingestOnePart(t, csv) // answered 200: not retried
	if wd.State != store.StateFailed || len(wd.Errors) == 0 || !strings.Contains(wd.Errors[len(wd.Errors)-1], "quoted field still open") {
		t.Errorf("window: state %s, errors %v; want failed, naming the open quote", wd.State, wd.Errors)
	}
}

// A transient failure (5xx, reset) waits in the queue with a growing,
// jittered backoff, and the request is not counted as an attempt.
func TestServerErrorBacksOff(t *testing.T) {
	r := newRig(t, nil)
	msg := []byte(`{"v":1,"window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"step":"request","attempt":0,"retries":3}`)
	r.cost.reqErr = &costapi.Error{Op: "request report", StatusCode: 503, Retryable: true}
	if code, resp := r.post(t, "ProcessWindow", queueReq(msg, 1)); code != 200 {
		t.Fatalf("%d %v", code, resp.Logs)
	}
	q := r.queue.take()
	if len(q) != 1 {
		t.Fatalf("queue = %+v", q)
	}
	// Fourth failure in a row: 16 s plus up to half of it in jitter.
	if q[0].delay < 16*time.Second || q[0].delay > 24*time.Second {
		t.Errorf("delay = %s, want 16-24 s", q[0].delay)
	}
	if !strings.Contains(string(q[0].body), `"retries":4`) || !strings.Contains(string(q[0].body), `"attempt":0`) {
		t.Errorf("message = %s", q[0].body)
	}
}
