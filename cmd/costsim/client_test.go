package main

// costsync's Cost Management client (shared/costapi) against this simulator,
// in-process: every behaviour of the real service that costsim reproduces
// on demand, and the client's reaction to it. The client is built as
// costsync builds it, with the test server's loopback host allowed
// explicitly.

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/costsync/costsync/shared/costapi"
)

// simCredential gets tokens from the simulator's identity endpoint, for the
// resource the client asks for.
type simCredential struct{ e *env }

func (c simCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	resource := strings.TrimSuffix(o.Scopes[0], "/.default")
	return azcore.AccessToken{Token: c.e.token(resource), ExpiresOn: c.e.clock.now().Add(time.Hour)}, nil
}

// lastResponse records the headers of the latest response a client got.
type lastResponse struct {
	base http.RoundTripper
	mu   sync.Mutex
	h    http.Header
}

func (l *lastResponse) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	if err == nil {
		l.mu.Lock()
		l.h = resp.Header.Clone()
		l.mu.Unlock()
	}
	return resp, err
}

func (l *lastResponse) header() http.Header {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h
}

// costClient is a costapi.Client on the simulator; edit may change its options.
func (e *env) costClient(edit func(*costapi.Options)) (*costapi.Client, *lastResponse) {
	e.t.Helper()
	tr := &lastResponse{base: e.srv.Client().Transport}
	o := &costapi.Options{
		Endpoint:      e.srv.URL,
		AllowedHosts:  []string{strings.TrimPrefix(e.srv.URL, "https://")},
		Now:           e.clock.now,
		ClientOptions: policy.ClientOptions{Transport: &http.Client{Transport: tr}, Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 2 * time.Second}},
	}
	if edit != nil {
		edit(o)
	}
	c, err := costapi.New(simCredential{e}, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return c, tr
}

func mustParse(t *testing.T, s string) costapi.Scope {
	t.Helper()
	sc, err := costapi.ParseScope(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// runReport requests a report and polls it until it is done, as
// ProcessWindow does (without the queue in between).
func runReport(t *testing.T, c *costapi.Client, sc costapi.Scope, r costapi.ReportRequest) *costapi.Report {
	t.Helper()
	ctx := context.Background()
	rep, err := c.RequestReport(ctx, sc, r)
	for i := 0; err == nil && !rep.Done; i++ {
		if i == 10 {
			t.Fatalf("report of %s not done after 10 polls", sc)
		}
		if rep.Location == "" || rep.RetryAfter != time.Second {
			t.Fatalf("not done without Location and the service's Retry-After: %+v", rep)
		}
		rep, err = c.PollReport(ctx, sc, rep.Location)
	}
	if err != nil {
		t.Fatalf("report of %s: %v", sc, err)
	}
	return rep
}

// readReport downloads every blob of a report and returns its data rows.
func readReport(t *testing.T, c *costapi.Client, rep *costapi.Report) [][]string {
	t.Helper()
	var rows [][]string
	for _, b := range rep.Blobs {
		rc, err := c.OpenBlob(context.Background(), b.Link)
		if err != nil {
			t.Fatalf("open blob: %v", err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read blob: %v", err)
		}
		if int64(len(data)) != b.Bytes {
			t.Errorf("blob has %d bytes, manifest says %d", len(data), b.Bytes)
		}
		recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte(utf8BOM)))).ReadAll()
		if err != nil || len(recs) == 0 {
			t.Fatalf("blob is not CSV with a header: %v", err)
		}
		rows = append(rows, recs[1:]...)
	}
	return rows
}

// The whole cycle at every scope kind and with each kind of period: 202 with
// Location and Retry-After, polls, a manifest of several blobs, downloads
// without the bearer token, and every row costsim's ground truth holds. The
// ClientType header is on every ARM request.
func TestClientReportCycle(t *testing.T) {
	e := newEnv(t, func(c *config) { c.blobRows = 25; c.rowsPerDay = 20 })
	c, _ := e.costClient(nil)
	inv := ""
	for _, tc := range []struct {
		name, scope string
		req         costapi.ReportRequest
		from, to    string
	}{
		{"subscription", subScope, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-01", To: "2026-11-03"}, "2026-11-01", "2026-11-03"},
		{"subscription amortized", subScope, costapi.ReportRequest{Metric: costapi.AmortizedCost, From: "2026-11-01", To: "2026-11-03"}, "2026-11-01", "2026-11-03"},
		{"EA billing period", eaAccount, costapi.ReportRequest{Metric: costapi.ActualCost, BillingPeriod: "202610"}, "2026-10-01", "2026-10-31"},
		{"EA department", eaAccount + "/departments/4242", costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-19", To: "2026-11-20"}, "2026-11-19", "2026-11-20"},
		{"EA department short form", "providers/Microsoft.Billing/departments/4242", costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-19", To: "2026-11-19"}, "2026-11-19", "2026-11-19"},
		{"EA enrollment account", "providers/Microsoft.Billing/enrollmentAccounts/1234", costapi.ReportRequest{Metric: costapi.AmortizedCost, From: "2026-09-01", To: "2026-09-02"}, "2026-09-01", "2026-09-02"},
		{"MCA billing account", mcaAccount, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-10-31", To: "2026-11-01"}, "2026-10-31", "2026-11-01"},
		{"MCA billing profile", mcaProfile, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-09-05", To: "2026-09-05"}, "2026-09-05", "2026-09-05"},
		{"MCA invoice", mcaProfile, costapi.ReportRequest{Metric: costapi.ActualCost, InvoiceID: "set below"}, "2026-09-01", "2026-09-30"},
		{"MCA invoice section", mcaProfile + "/invoiceSections/XY12-AB34-CD5-EF6", costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-10", To: "2026-11-11"}, "2026-11-10", "2026-11-11"},
		{"MCA customer", mcaAccount + "/customers/13579", costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-10", To: "2026-11-10"}, "2026-11-10", "2026-11-10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.InvoiceID != "" {
				if inv == "" {
					t.Fatal("no invoice id from the billing profile's September report")
				}
				tc.req.InvoiceID = inv
			}
			sc := mustParse(t, tc.scope)
			rep := runReport(t, c, sc, tc.req)
			if rep.Status != costapi.StatusCompleted || rep.ValidTill.IsZero() || rep.Expired(e.clock.now(), 5*time.Minute) {
				t.Fatalf("report %+v", rep)
			}
			rows := readReport(t, c, rep)
			truth := e.truth(tc.scope, tc.req.Metric, tc.from, tc.to)
			if len(rows) != truth.Rows || truth.Rows == 0 {
				t.Errorf("report has %d rows, truth %d", len(rows), truth.Rows)
			}
			if want := (truth.Rows + 24) / 25; len(rep.Blobs) != want {
				t.Errorf("%d blobs, want %d", len(rep.Blobs), want)
			}
			if tc.name == "MCA billing profile" {
				inv = rows[0][0] // invoiceId is the first MCA column
			}
		})
	}
	st := e.stats()
	if st.MissingClientType != 0 || st.ClientTypes[costapi.DefaultClientType] != st.Requests[kindCreate]+st.Requests[kindPoll] {
		t.Errorf("ClientType: missing %d, %v for %d creates and %d polls", st.MissingClientType, st.ClientTypes, st.Requests[kindCreate], st.Requests[kindPoll])
	}
}

// Requests that break a documented limit are refused before any call, with
// the rule in the message; the boundary cases the client lets through are
// the ones the service accepts.
func TestClientEnforcesLimitsBeforeCalling(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.costClient(nil)
	for _, tc := range []struct {
		scope string
		req   costapi.ReportRequest
		rule  string
	}{
		{subScope, costapi.ReportRequest{Metric: "Usage", From: "2026-11-01", To: "2026-11-01"}, "ActualCost or AmortizedCost"},
		{subScope, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-10-01", To: "2026-11-01"}, "at most 1 month per request"},
		{subScope, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-01-31", To: "2026-02-28"}, "at most 1 month per request"},
		{subScope, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2025-09-30", To: "2025-10-05"}, "more than 13 months back"},
		{eaAccount, costapi.ReportRequest{Metric: costapi.ActualCost, BillingPeriod: "202509"}, "more than 13 months back"},
		{eaAccount, costapi.ReportRequest{Metric: costapi.ActualCost, BillingPeriod: "2026-10"}, "YYYYMM"},
		{eaAccount, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-10-01", To: "2026-10-02", BillingPeriod: "202610"}, "only one of timePeriod, billingPeriod or invoiceId"},
		{eaAccount, costapi.ReportRequest{Metric: costapi.ActualCost}, "exactly one of"},
		{mcaProfile, costapi.ReportRequest{Metric: costapi.ActualCost, BillingPeriod: "202610"}, "billingPeriod can only be used at Enterprise Agreement scopes"},
		{subScope, costapi.ReportRequest{Metric: costapi.ActualCost, InvoiceID: "M1234567"}, "invoiceId can only be used at an MCA billing profile or customer scope"},
		{mcaProfile + "/invoiceSections/XY12", costapi.ReportRequest{Metric: costapi.ActualCost, InvoiceID: "M1234567"}, "invoiceId can only be used at an MCA billing profile or customer scope"},
		{subScope, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-05", To: "2026-11-01"}, "end is before the start"},
	} {
		_, err := c.RequestReport(context.Background(), mustParse(t, tc.scope), tc.req)
		if e, ok := costapi.AsError(err); !ok || !e.Invalid || e.Retryable || !strings.Contains(err.Error(), tc.rule) {
			t.Errorf("%s %+v: %v, want a refusal naming %q", tc.scope, tc.req, err, tc.rule)
		}
	}
	if st := e.stats(); st.Requests[kindCreate] != 0 {
		t.Errorf("%d requests reached the service", st.Requests[kindCreate])
	}
	for _, ok := range []costapi.ReportRequest{
		{Metric: costapi.ActualCost, From: "2025-10-01", To: "2025-10-31"},
		{Metric: costapi.ActualCost, From: "2026-01-31", To: "2026-02-27"},
		{Metric: costapi.ActualCost, From: "2026-10-15", To: "2026-11-14"},
	} {
		if _, err := c.RequestReport(context.Background(), mustParse(t, subScope), ok); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

// The service's own refusals are permanent and carry its message: a range
// error (here the simulator's "today" is a month ahead of the client's, so
// the client's 13-month check passes and the service's does not), an
// unsupported offer (422), a missing role (403) and a token of another
// tenant (401), both naming the role the scope kind needs.
func TestClientPermanentErrors(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.costClient(func(o *costapi.Options) { o.Now = func() time.Time { return e.clock.now().AddDate(0, -1, 0) } })
	_, err := c.RequestReport(context.Background(), mustParse(t, subScope), costapi.ReportRequest{Metric: costapi.ActualCost, From: "2025-09-15", To: "2025-09-30"})
	if ae, ok := costapi.AsError(err); !ok || ae.Retryable || ae.Invalid || ae.StatusCode != 400 ||
		!strings.Contains(err.Error(), "Start date must be after 2025-09-30. API only allows data to be pulled no older than 13 months from now.") {
		t.Errorf("range error: %v", err)
	}

	c, _ = e.costClient(nil)
	e.setFaults(`{"scopeErrors":{"` + subScope + `":403,"` + eaAccount + `/departments/7":403,"` + mcaProfile + `":401,"` + mcaAccount + `/customers/9":422}}`)
	for scope, want := range map[string][]string{
		subScope:                     {"AuthorizationFailed", "Cost Management Reader"},
		eaAccount + "/departments/7": {"AuthorizationFailed", "department reader"},
		mcaProfile:                   {"InvalidAuthenticationTokenTenant", "billing profile reader"},
		mcaAccount + "/customers/9":  {"Unsupported request. offer type: WebDirect for get detailed report request is not supported."},
	} {
		_, err := c.RequestReport(context.Background(), mustParse(t, scope), costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-01", To: "2026-11-01"})
		ae, ok := costapi.AsError(err)
		if !ok || ae.Retryable || ae.StatusCode < 400 {
			t.Errorf("%s: %v, want a permanent error", scope, err)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v does not name %q", scope, err, w)
			}
		}
	}
	if st := e.stats(); st.ScopeErrors != 4 || st.Requests[kindCreate] != 5 {
		t.Errorf("permanent errors were retried in-process: %d scope errors in %d creates", st.ScopeErrors, st.Requests[kindCreate])
	}
}

// A 429 is not retried in-process: the error carries the largest wait of
// Retry-After and every rate-limit header, for the caller to wait in the
// queue.
func TestClientThrottle(t *testing.T) {
	e := newEnv(t, func(c *config) { c.retryAfter = 5 })
	c, last := e.costClient(nil)
	sc := mustParse(t, subScope)
	rep, err := c.RequestReport(context.Background(), sc, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-01", To: "2026-11-01"})
	if err != nil {
		t.Fatal(err)
	}
	e.setFaults(`{"throttleRate":1}`)
	for i := range 6 {
		var err error
		if i%2 == 0 {
			_, err = c.RequestReport(context.Background(), sc, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-01", To: "2026-11-01"})
		} else {
			_, err = c.PollReport(context.Background(), sc, rep.Location)
		}
		ae, ok := costapi.AsError(err)
		if !ok || !ae.Throttled || !ae.Retryable {
			t.Fatalf("throttled call: %v", err)
		}
		h := last.header()
		largest, headers := 0, 0
		for k, vs := range h {
			if k := strings.ToLower(k); k == "retry-after" || strings.HasPrefix(k, "x-ms-ratelimit-") && strings.HasSuffix(k, "-retry-after") {
				n, _ := strconv.Atoi(vs[0])
				largest = max(largest, n)
				headers++
			}
		}
		if headers < 4 || ae.RetryAfter != time.Duration(largest)*time.Second || ae.RetryAfter <= 5*time.Second {
			t.Errorf("RetryAfter %s from %d headers %v, want the largest, %d s", ae.RetryAfter, headers, h, largest)
		}
		if ae.QuotaRemaining != 0 {
			t.Errorf("QuotaRemaining = %d, want 0 from x-ms-ratelimit-remaining-*", ae.QuotaRemaining)
		}
	}
	if st := e.stats(); st.Throttled != 6 {
		t.Errorf("throttled %d times for 6 calls: 429 must not be retried in-process", st.Throttled)
	}
}

// 5xx and connection resets are retried a bounded number of times; then the
// error is retryable, for the caller to re-enqueue. A reset download's error
// holds no part of the SAS link.
func TestClientTransientErrors(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.costClient(nil)
	sc := mustParse(t, subScope)
	rep := runReport(t, c, sc, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-01", To: "2026-11-01"})
	for _, faults := range []string{`{"serverErrorRate":1}`, `{"resetRate":1}`} {
		e.setFaults(faults)
		e.sim.stats.reset()
		_, err := c.RequestReport(context.Background(), sc, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-01", To: "2026-11-01"})
		if ae, ok := costapi.AsError(err); !ok || !ae.Retryable || ae.Throttled {
			t.Errorf("%s create: %v", faults, err)
		}
		_, err = c.OpenBlob(context.Background(), rep.Blobs[0].Link)
		if ae, ok := costapi.AsError(err); !ok || !ae.Retryable || ae.LinkExpired {
			t.Errorf("%s download: %v", faults, err)
		}
		if strings.Contains(err.Error(), "sig=") || strings.Contains(err.Error(), "se=") {
			t.Errorf("%s download error shows the SAS: %v", faults, err)
		}
		if st := e.stats(); st.Requests[kindCreate] != 3 || st.Requests[kindDownload] != 3 {
			t.Errorf("%s: %d creates and %d downloads, want 1 + 2 retries each", faults, st.Requests[kindCreate], st.Requests[kindDownload])
		}
	}
	// With some calls failing, the retries get through.
	e.setFaults(`{"serverErrorRate":0.3,"resetRate":0.2}`)
	rows := readReport(t, c, runReport(t, c, sc, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-02", To: "2026-11-02"}))
	if truth := e.truth(subScope, "ActualCost", "2026-11-02", "2026-11-02"); len(rows) != truth.Rows {
		t.Errorf("%d rows, truth %d", len(rows), truth.Rows)
	}
	if st := e.stats(); st.ServerErrors+st.Resets == 0 {
		t.Error("no fault was injected")
	}
}

// A service that does not answer is given up on: an ARM call after its try
// timeout, a download that stalls after its idle timeout. Both errors are
// retryable.
func TestClientTimeouts(t *testing.T) {
	e := newEnv(t, nil)
	normal, _ := e.costClient(nil)
	sc := mustParse(t, subScope)
	rep := runReport(t, normal, sc, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-01", To: "2026-11-01"})
	// The simulator hangs far longer than the client waits, however busy
	// the machine is.
	c, _ := e.costClient(func(o *costapi.Options) {
		o.TryTimeout, o.IdleTimeout = 300*time.Millisecond, 300*time.Millisecond
		o.ClientOptions.Retry.MaxRetries = -1
	})
	e.setFaults(`{"timeoutRate":1,"hangSeconds":60}`)
	_, err := c.RequestReport(context.Background(), sc, costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-01", To: "2026-11-01"})
	if ae, ok := costapi.AsError(err); !ok || !ae.Retryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung create: %v", err)
	}
	// The download stalls half way (on a very busy machine the headers
	// may already come too late; that is a timeout too).
	rc, err := c.OpenBlob(context.Background(), rep.Blobs[0].Link)
	if err == nil {
		var got []byte
		got, err = io.ReadAll(rc)
		rc.Close()
		if int64(len(got)) >= rep.Blobs[0].Bytes {
			t.Errorf("stalled download read %d of %d bytes", len(got), rep.Blobs[0].Bytes)
		}
	}
	if ae, ok := costapi.AsError(err); !ok || !ae.Retryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stalled download: %v", err)
	}
	if st := e.stats(); st.Timeouts != 2 {
		t.Errorf("timeouts = %d", st.Timeouts)
	}
}

// The report's other endings: NoDataFound, 204 on create, an immediate 200,
// Failed with the service's message, a validTill that has passed, and a link
// that is refused as expired.
func TestClientReportEndings(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.costClient(nil)
	sc := mustParse(t, subScope)
	future := costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-12-01", To: "2026-12-02"}
	day := costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-03", To: "2026-11-03"}
	if rep := runReport(t, c, sc, future); rep.Status != costapi.StatusNoDataFound || len(rep.Blobs) != 0 {
		t.Errorf("no data: %+v", rep)
	}
	e.setFaults(`{"noDataAs":"204"}`)
	if rep, err := c.RequestReport(context.Background(), sc, future); err != nil || !rep.Done || rep.Status != costapi.StatusNoDataFound {
		t.Errorf("204: %+v %v", rep, err)
	}
	e.setFaults(`{"completeOnCreate":true}`)
	if rep, err := c.RequestReport(context.Background(), sc, day); err != nil || !rep.Done || rep.Status != costapi.StatusCompleted || len(readReport(t, c, rep)) == 0 {
		t.Errorf("immediate 200: %+v %v", rep, err)
	}
	e.setFaults(`{"failReportOnce":true}`)
	if rep := runReport(t, c, sc, day); rep.Status != costapi.StatusFailed || !strings.Contains(rep.Message, "Please request the report again") {
		t.Errorf("failed: %+v", rep)
	}
	if rep := runReport(t, c, sc, day); rep.Status != costapi.StatusCompleted {
		t.Errorf("requested again: %+v", rep)
	}
	e.setFaults(`{"pastValidTillOnce":true}`)
	rep := runReport(t, c, sc, day)
	if !rep.Expired(e.clock.now(), 0) {
		t.Errorf("validTill %s has passed at %s, Expired says no", rep.ValidTill, e.clock.now())
	}
	_, err := c.OpenBlob(context.Background(), rep.Blobs[0].Link)
	if ae, ok := costapi.AsError(err); !ok || !ae.LinkExpired || ae.Retryable {
		t.Errorf("download past validTill: %v", err)
	}
	e.setFaults(`{"expireLinksOnce":true}`)
	rep = runReport(t, c, sc, day)
	_, err = c.OpenBlob(context.Background(), rep.Blobs[0].Link)
	if ae, ok := costapi.AsError(err); !ok || !ae.LinkExpired || strings.Contains(err.Error(), "sig=") {
		t.Errorf("expired link: %v", err)
	}
	st := e.stats()
	if st.NoDataFound != 1 || st.NoContent != 1 || st.CompletedOnCreate != 1 || st.FailedReports != 1 || st.PastValidTill != 1 || st.ExpiredLinks != 2 {
		t.Errorf("stats %+v", st)
	}
}

// Location and blobLink pointing at another host are refused, and the
// refusal does not repeat their query strings.
func TestClientRefusesForeignLinks(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.costClient(nil)
	sc := mustParse(t, subScope)
	day := costapi.ReportRequest{Metric: costapi.ActualCost, From: "2026-11-03", To: "2026-11-03"}
	e.setFaults(`{"linkHost":"evil.example.com"}`)
	_, err := c.RequestReport(context.Background(), sc, day)
	if ae, ok := costapi.AsError(err); !ok || !ae.Untrusted || !strings.Contains(err.Error(), "https://evil.example.com/"+subScope) || strings.Contains(err.Error(), "api-version") {
		t.Errorf("foreign Location: %v", err)
	}
	e.setFaults(`{}`)
	rep, err := c.RequestReport(context.Background(), sc, day)
	for err == nil && !rep.Done {
		loc := rep.Location
		if rep, err = c.PollReport(context.Background(), sc, loc); err == nil && rep.Done {
			// Read the finished result again, now with foreign links.
			e.setFaults(`{"linkHost":"evil.example.com"}`)
			_, err = c.PollReport(context.Background(), sc, loc)
		}
	}
	if ae, ok := costapi.AsError(err); !ok || !ae.Untrusted || !strings.Contains(err.Error(), "https://evil.example.com/armreports/") || strings.Contains(err.Error(), "sig") {
		t.Errorf("foreign blobLink: %v", err)
	}
	// The client's own cloud's hosts would be fine; costsim's loopback host
	// is allowed only because the test listed it.
	c2, err := costapi.New(simCredential{e}, &costapi.Options{Endpoint: e.srv.URL})
	if err == nil || c2 != nil || !strings.Contains(err.Error(), "allowed hosts") {
		t.Errorf("a loopback endpoint not listed in AllowedHosts: %v", err)
	}
}
