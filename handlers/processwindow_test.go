package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// ProcessWindow against costsim: the handler with the real Cost Details
// client on the simulator (the costsim binary, started by localstack), and
// in-memory landing, ledger and queue. Each test makes costsim misbehave on
// demand (POST /_sim/faults) and shows the window's fate.

const (
	simSub     = "subscriptions/6a1f3c2e-9b7d-4e21-8c55-0f3e2d1a9b77"
	simEA      = "providers/Microsoft.Billing/billingAccounts/8611537"
	simProfile = "providers/Microsoft.Billing/billingAccounts/5e98e158-1111-2222-3333-444455556666:a1b2c3d4-5555-6666-7777-888899990000_2019-05-31/billingProfiles/AB12-CD34-EF5-GH6"
)

// simRig is a rig whose Cost Management is costsim.
type simRig struct {
	*rig
	st  *localstack.Stack
	log *syncBuffer
	// before, when set, runs before the nth invocation of drive (from 1).
	before func(n int)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startCostsim starts costsim alone; reports of a day have a few blobs
// unless blobRows says otherwise.
func startCostsim(t *testing.T, blobRows int) *localstack.Stack {
	t.Helper()
	return localstack.StartT(t, localstack.Options{
		Components:  localstack.Components{Costsim: true},
		CostsimArgs: []string{"-seed", "5", "-rows-per-day", "40", "-blob-rows", fmt.Sprint(blobRows), "-retry-after", "1", "-polls", "1"},
	})
}

// newSimRig builds the handler on st's costsim; today "" is the real date.
func newSimRig(t *testing.T, st *localstack.Stack, today string) *simRig {
	t.Helper()
	host := strings.TrimPrefix(st.CostsimURL, "https://")
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			config.KeyBlobURL: "https://a.blob.core.windows.net", config.KeyQueueURL: "https://a.queue.core.windows.net",
			config.KeyCosmosEndpoint: "https://c.documents.azure.com", config.KeyScopes: simSub + ";" + simProfile,
			config.KeyARMEndpoint: st.CostsimURL, config.KeyAllowedHosts: host, config.KeyToday: today,
			// These tests drive the invocations back to back, without the
			// queue's delays: pacing is the governor's tests' business.
			config.KeyRateScope: "none", config.KeyRateTenant: "none", config.KeyRateBillingAccount: "none", config.KeyRateClient: "none",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := st.Credential()
	if err != nil {
		t.Fatal(err)
	}
	cost, err := costapi.New(cred, &costapi.Options{
		Endpoint: cfg.ARMEndpoint, AllowedHosts: cfg.AllowedHosts, Now: cfg.Now,
		ClientOptions: policy.ClientOptions{Transport: st.Transport(), Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 2 * time.Second}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &simRig{rig: &rig{
		land:  &fakeLanding{parts: map[string][]byte{}, manifests: map[string][]byte{}},
		queue: &fakeQueue{},
		store: store.NewMemory(),
	}, st: st, log: &syncBuffer{}}
	r.srv = New(Deps{Config: cfg, Cost: cost, Landing: r.land, Store: r.store, Queue: r.queue,
		Log: slog.New(slog.NewJSONHandler(r.log, nil))})
	return r
}

// sim calls costsim's /_sim API.
func (r *simRig) sim(t *testing.T, method, path, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, r.st.CostsimURL+path, strings.NewReader(body))
	resp, err := r.st.Transport().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

type simStats struct {
	Requests                                                               map[string]int
	Throttled, ServerErrors, Resets, Timeouts, FailedReports, ExpiredLinks int
	PastValidTill, CompletedOnCreate, NoContent, NoDataFound, ScopeErrors  int
	MissingClientType                                                      int
}

// faults installs fault settings and zeroes costsim's counters.
func (r *simRig) faults(t *testing.T, settings string) {
	t.Helper()
	r.sim(t, http.MethodPost, "/_sim/faults", settings, nil)
	r.sim(t, http.MethodDelete, "/_sim/stats", "", nil)
}

func (r *simRig) stats(t *testing.T) simStats {
	t.Helper()
	var st simStats
	r.sim(t, http.MethodGet, "/_sim/stats", "", &st)
	return st
}

// driven is what a window went through.
type driven struct {
	window      *store.Window
	invocations int
	delays      []time.Duration // of every re-enqueued message
	steps       []string
}

// drive runs ProcessWindow for a new window message and then for every
// message it enqueues, in order, without waiting out their delays (a
// throttled window waits in the queue, which the delays show); IngestManifest
// runs on each manifest it lands. Every invocation must answer 200.
func (r *simRig) drive(t *testing.T, w window.Window) driven {
	t.Helper()
	first, _ := json.Marshal(windowMessage{Version: messageVersion, Window: w, Step: stepRequest})
	pending := [][]byte{first}
	var d driven
	for len(pending) > 0 {
		if d.invocations++; d.invocations > 60 {
			t.Fatalf("window %v still going after 60 invocations; steps %v", w, d.steps)
		}
		if r.before != nil {
			r.before(d.invocations)
		}
		msg := pending[0]
		pending = pending[1:]
		var m windowMessage
		_ = json.Unmarshal(msg, &m)
		d.steps = append(d.steps, m.Step)
		if code, resp := r.post(t, "ProcessWindow", queueReq(msg, 1)); code != 200 {
			t.Fatalf("ProcessWindow answered %d %v: a window must wait in the queue, not fail the invocation", code, resp.Logs)
		}
		for _, s := range r.queue.take() {
			if s.queue != queue.Windows {
				t.Fatalf("ProcessWindow sent a message to %s: %s", s.queue, s.body)
			}
			pending = append(pending, s.body)
			d.delays = append(d.delays, s.delay)
		}
		r.land.mu.Lock()
		manifests := r.land.manifests
		r.land.manifests = map[string][]byte{}
		r.land.mu.Unlock()
		for name, b := range manifests {
			req := invocation.NewBlobRequest("manifest", invocation.BlobInfo{Content: b, Tokens: map[string]string{"name": name}}, sys)
			if code, resp := r.post(t, "IngestManifest", req); code != 200 {
				t.Fatalf("IngestManifest %s: %d %v", name, code, resp.Logs)
			}
			r.deliverParts(t)
		}
	}
	wd, err := r.store.GetWindow(context.Background(), w.Scope, store.WindowID(w.Scope, w.Metric, w.From, w.To))
	if err != nil {
		t.Fatal(err)
	}
	d.window = wd
	return d
}

// checkComplete checks that the window is complete with costsim's rows and
// exact total.
func (r *simRig) checkComplete(t *testing.T, d driven) {
	t.Helper()
	w := d.window
	var truth struct {
		Rows       int64  `json:"rows"`
		BilledCost string `json:"billedCost"`
	}
	q := url.Values{"scope": {w.Scope}, "metric": {w.Metric}, "from": {w.From}, "to": {w.To}}
	r.sim(t, http.MethodGet, "/_sim/truth?"+q.Encode(), "", &truth)
	total := decimal.Zero
	for _, c := range w.Totals {
		total = total.Add(c.BilledCost)
	}
	if w.State != store.StateComplete || w.Rows != truth.Rows || !total.Equal(decimal.RequireFromString(truth.BilledCost)) {
		t.Errorf("window %s %s: %s with %d rows costing %s (errors %v); costsim has %d rows costing %s",
			w.Scope, w.From, w.State, w.Rows, total, w.Errors, truth.Rows, truth.BilledCost)
	}
}

func yesterday() string { return time.Now().UTC().AddDate(0, 0, -1).Format(window.DateLayout) }

// Every kind of answer Cost Details gives on the way to a report, made by
// costsim on demand: the window ends complete with exactly costsim's rows
// and total, and shows how it got there.
func TestProcessWindowAgainstCostsim(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the costsim binary")
	}
	st := startCostsim(t, 12)
	day := yesterday()
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(window.DateLayout)
	for _, tc := range []struct {
		name   string
		faults string
		w      window.Window
		check  func(t *testing.T, d driven, st simStats)
	}{
		{"202, polls, several blobs", `{}`, window.Window{Scope: simSub, Metric: "ActualCost", From: day, To: day},
			func(t *testing.T, d driven, st simStats) {
				if d.window.PartsTotal < 2 || d.steps[0] != stepRequest || d.steps[1] != stepPoll || d.delays[0] != time.Second {
					t.Errorf("parts %d, steps %v, delays %v: want a poll after the service's Retry-After and several parts", d.window.PartsTotal, d.steps, d.delays)
				}
			}},
		{"an immediate 200", `{"completeOnCreate":true}`, window.Window{Scope: simProfile, Metric: "AmortizedCost", From: day, To: day},
			func(t *testing.T, d driven, st simStats) {
				if d.invocations != 1 || st.CompletedOnCreate != 1 {
					t.Errorf("%d invocations, %d immediate results", d.invocations, st.CompletedOnCreate)
				}
			}},
		{"NoDataFound", `{}`, window.Window{Scope: simSub, Metric: "ActualCost", From: tomorrow, To: tomorrow},
			func(t *testing.T, d driven, st simStats) {
				if st.NoDataFound != 1 || d.window.Rows != 0 || d.window.PartsTotal != 0 {
					t.Errorf("noDataFound %d, window %+v", st.NoDataFound, d.window)
				}
			}},
		{"204 on create", `{"noDataAs":"204"}`, window.Window{Scope: simProfile, Metric: "ActualCost", From: tomorrow, To: tomorrow},
			func(t *testing.T, d driven, st simStats) {
				if st.NoContent != 1 || d.invocations != 1 {
					t.Errorf("noContent %d, %d invocations", st.NoContent, d.invocations)
				}
			}},
		{"429 with rate-limit headers", `{"throttleRate":0.5}`, window.Window{Scope: simSub, Metric: "AmortizedCost", From: day, To: day},
			func(t *testing.T, d driven, st simStats) {
				// Retry-After says 1 s; the cost-management headers say 2 to 5.
				long := 0
				for _, dl := range d.delays {
					if dl >= 2*time.Second && dl <= 5*time.Second && dl%time.Second == 0 {
						long++
					}
				}
				if st.Throttled == 0 || d.window.Throttles == 0 || long < d.window.Throttles {
					t.Errorf("throttled %d times (ledger %d), delays %v: each must wait for the largest header", st.Throttled, d.window.Throttles, d.delays)
				}
			}},
		{"5xx", `{"serverErrorRate":0.5}`, window.Window{Scope: simProfile, Metric: "ActualCost", From: day, To: day},
			func(t *testing.T, d driven, st simStats) {
				if st.ServerErrors == 0 {
					t.Error("no server error was injected")
				}
			}},
		{"connection resets", `{"resetRate":0.5}`, window.Window{Scope: simSub, Metric: "ActualCost", From: day, To: day},
			func(t *testing.T, d driven, st simStats) {
				if st.Resets == 0 {
					t.Error("no connection was reset")
				}
			}},
		{"a report that fails once", `{"failReportOnce":true}`, window.Window{Scope: simSub, Metric: "ActualCost", From: day, To: day},
			func(t *testing.T, d driven, st simStats) {
				if st.FailedReports != 1 || d.window.Attempts != 2 || !strings.Contains(fmt.Sprint(d.window.Errors), "report failed") {
					t.Errorf("failed %d, attempts %d, errors %v", st.FailedReports, d.window.Attempts, d.window.Errors)
				}
			}},
		{"links expired when used", `{"expireLinksOnce":true}`, window.Window{Scope: simProfile, Metric: "ActualCost", From: day, To: day},
			func(t *testing.T, d driven, st simStats) {
				if st.ExpiredLinks != 1 || d.window.Attempts != 2 || !strings.Contains(fmt.Sprint(d.window.Errors), "link expired") {
					t.Errorf("expired %d, attempts %d, errors %v", st.ExpiredLinks, d.window.Attempts, d.window.Errors)
				}
			}},
		{"validTill passed before the copy", `{"pastValidTillOnce":true}`, window.Window{Scope: simSub, Metric: "ActualCost", From: day, To: day},
			func(t *testing.T, d driven, st simStats) {
				// Requested again without trying the dead links.
				if st.PastValidTill != 1 || st.ExpiredLinks != 0 || d.window.Attempts != 2 || !strings.Contains(fmt.Sprint(d.window.Errors), "expired before the copy") {
					t.Errorf("past validTill %d, expired downloads %d, attempts %d, errors %v", st.PastValidTill, st.ExpiredLinks, d.window.Attempts, d.window.Errors)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newSimRig(t, st, "")
			r.faults(t, tc.faults)
			d := r.drive(t, tc.w)
			r.checkComplete(t, d)
			st := r.stats(t)
			if st.MissingClientType != 0 {
				t.Errorf("%d requests without ClientType", st.MissingClientType)
			}
			tc.check(t, d, st)
		})
	}
}

// What no retry can fix is recorded at once: the window fails with the
// service's message (and the role the scope kind needs), the invocation
// answers 200, and nothing is enqueued again. A link to another host is
// refused and logged without its query string.
func TestProcessWindowPermanentAgainstCostsim(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the costsim binary")
	}
	st := startCostsim(t, 12)
	day := yesterday()
	// The handler's today is a month behind costsim's: its 13-month check
	// lets through a window that the service refuses.
	lagging := time.Now().UTC().AddDate(0, -1, 0)
	old := time.Date(lagging.Year(), lagging.Month()-13, 15, 0, 0, 0, 0, time.UTC).Format(window.DateLayout)
	for _, tc := range []struct {
		name, faults, today string
		w                   window.Window
		want                []string
	}{
		{"403 at a subscription", `{"scopeErrors":{"` + simSub + `":403}}`, "", window.Window{Scope: simSub, Metric: "ActualCost", From: day, To: day},
			[]string{"HTTP 403 AuthorizationFailed", "Cost Management Reader"}},
		{"401 at a billing profile", `{"scopeErrors":{"` + simProfile + `":401}}`, "", window.Window{Scope: simProfile, Metric: "ActualCost", From: day, To: day},
			[]string{"HTTP 401 InvalidAuthenticationTokenTenant", "billing profile reader"}},
		{"422 unsupported offer", `{"scopeErrors":{"` + simSub + `":422}}`, "", window.Window{Scope: simSub, Metric: "ActualCost", From: day, To: day},
			[]string{"HTTP 422", "offer type: WebDirect for get detailed report request is not supported"}},
		{"400 range error", `{}`, lagging.Format(window.DateLayout), window.Window{Scope: simSub, Metric: "ActualCost", From: old, To: old},
			[]string{"HTTP 400", "API only allows data to be pulled no older than 13 months from now."}},
		{"foreign links", `{"linkHost":"evil.example.com"}`, "", window.Window{Scope: simSub, Metric: "ActualCost", From: day, To: day},
			[]string{"refused link to https://evil.example.com/" + simSub + "/providers/Microsoft.CostManagement/costDetailsOperationResults/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newSimRig(t, st, tc.today)
			r.faults(t, tc.faults)
			d := r.drive(t, tc.w)
			errs := strings.Join(d.window.Errors, "\n")
			if d.window.State != store.StateFailed || d.invocations != 1 {
				t.Errorf("window %s after %d invocations: %s", d.window.State, d.invocations, errs)
			}
			logs := r.log.String()
			for _, w := range tc.want {
				if !strings.Contains(errs, w) || !strings.Contains(logs, w) {
					t.Errorf("ledger errors %q or the log do not say %q\nlog: %s", errs, w, logs)
				}
			}
			if strings.Contains(logs, "api-version") || strings.Contains(logs, "sig=") {
				t.Errorf("a query string reached the log: %s", logs)
			}
		})
	}
}

// Transient failures are retried in-process a bounded number of times (the
// client's retries, with azcore's jittered delay); when they all fail the
// window waits in the queue with a jittered backoff, and then completes.
func TestProcessWindowRetriesThenWaitsAgainstCostsim(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the costsim binary")
	}
	st := startCostsim(t, 0)
	r := newSimRig(t, st, "")
	r.before = func(n int) {
		switch n {
		case 1:
			r.faults(t, `{"resetRate":1}`)
		case 2:
			if s := r.stats(t); s.Resets != 3 || s.Requests["create"] != 3 {
				t.Errorf("%d resets in %d creates, want a try and 2 retries", s.Resets, s.Requests["create"])
			}
			r.faults(t, `{"serverErrorRate":1}`)
		case 3:
			if s := r.stats(t); s.ServerErrors != 3 {
				t.Errorf("%d server errors, want a try and 2 retries", s.ServerErrors)
			}
			r.faults(t, `{}`)
		}
	}
	day := yesterday()
	d := r.drive(t, window.Window{Scope: simSub, Metric: "ActualCost", From: day, To: day})
	r.checkComplete(t, d)
	// First failure 2-3 s, second 4-6 s: exponential with up to 50 % jitter.
	if len(d.delays) < 2 || d.delays[0] < 2*time.Second || d.delays[0] > 3*time.Second || d.delays[1] < 4*time.Second || d.delays[1] > 6*time.Second {
		t.Errorf("delays %v", d.delays)
	}
	if d.window.Attempts != 1 || d.window.Throttles != 0 || len(d.window.Errors) != 2 {
		t.Errorf("attempts %d, throttles %d, errors %v: transient failures are not report attempts", d.window.Attempts, d.window.Throttles, d.window.Errors)
	}
}

// A service that does not answer in time: the invocation gives up within
// its budget and the window waits in the queue, then completes.
func TestProcessWindowTimeoutsAgainstCostsim(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the costsim binary")
	}
	st := startCostsim(t, 0)
	r := newSimRig(t, st, "")
	// Rebuild the client with short timeouts, as a slow service would need.
	cred, _ := st.Credential()
	cost, err := costapi.New(cred, &costapi.Options{
		Endpoint: st.CostsimURL, AllowedHosts: []string{strings.TrimPrefix(st.CostsimURL, "https://")},
		TryTimeout: 500 * time.Millisecond, IdleTimeout: 500 * time.Millisecond,
		ClientOptions: policy.ClientOptions{Transport: st.Transport(), Retry: policy.RetryOptions{MaxRetries: 1, RetryDelay: 10 * time.Millisecond}},
	})
	if err != nil {
		t.Fatal(err)
	}
	normal := r.srv.d.Cost
	var timedOut time.Duration
	start := time.Now()
	r.before = func(n int) {
		switch n {
		case 1:
			// The service hangs far longer than the client waits, however
			// busy the machine is.
			r.srv.d.Cost = cost
			r.faults(t, `{"timeoutRate":1,"hangSeconds":60}`)
		case 2:
			timedOut = time.Since(start)
			if s := r.stats(t); s.Timeouts == 0 {
				t.Error("no request timed out")
			}
			r.faults(t, `{}`)
			r.srv.d.Cost = normal
		}
	}
	day := yesterday()
	d := r.drive(t, window.Window{Scope: simProfile, Metric: "ActualCost", From: day, To: day})
	r.checkComplete(t, d)
	if !strings.Contains(fmt.Sprint(d.window.Errors), "timed out") || !strings.Contains(fmt.Sprint(d.window.Errors), "deadline exceeded") || d.delays[0] < time.Second {
		t.Errorf("errors %v, delays %v: the window must wait in the queue after the timeouts", d.window.Errors, d.delays)
	}
	// The invocation gave up inside its call budget, not at the hang's end.
	if timedOut >= callBudget {
		t.Errorf("the timed-out invocation took %s", timedOut)
	}
}
