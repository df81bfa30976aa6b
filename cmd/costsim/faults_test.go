package main

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const week = `{"timePeriod":{"start":"2026-11-01","end":"2026-11-07"}}`

func (e *env) setFaults(body string) {
	e.t.Helper()
	resp, b := e.do("POST", "/_sim/faults", body, nil)
	if resp.StatusCode != 200 {
		e.t.Fatalf("set faults: %d %s", resp.StatusCode, b)
	}
}

func (e *env) stats() *stats {
	e.t.Helper()
	resp, b := e.do("GET", "/_sim/stats", "", nil)
	if resp.StatusCode != 200 {
		e.t.Fatalf("stats: %d %s", resp.StatusCode, b)
	}
	var st stats
	if err := json.Unmarshal(b, &st); err != nil {
		e.t.Fatal(err)
	}
	return &st
}

func TestThrottle(t *testing.T) {
	e := newEnv(t, func(c *config) { c.retryAfter = 7 })
	arm := e.armHeaders() // before faults: the token endpoint never gets them anyway
	e.setFaults(`{"throttleRate":1}`)
	for i := range 8 {
		resp, b := e.do("POST", "/"+subScope+"/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01", week, arm)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("status %d (%s)", resp.StatusCode, b)
		}
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		seen := map[string]bool{}
		largest := 0
		for _, n := range []string{"entity", "tenant", "clienttype"} {
			v, err := strconv.Atoi(resp.Header.Get("x-ms-ratelimit-microsoft.costmanagement-" + n + "-retry-after"))
			if err != nil {
				t.Fatalf("%s header: %v", n, err)
			}
			if seen[strconv.Itoa(v)] {
				t.Errorf("request %d: two headers say %d", i, v)
			}
			seen[strconv.Itoa(v)] = true
			largest = max(largest, v)
		}
		if c := resp.Header.Get("x-ms-ratelimit-microsoft.consumption-retry-after"); c != "" {
			v, _ := strconv.Atoi(c)
			largest = max(largest, v)
		}
		if ra != 7 || largest <= ra {
			t.Errorf("Retry-After %d, largest rate-limit header %d; want 7 and more than 7", ra, largest)
		}
		var ae armError
		if json.Unmarshal(b, &ae) != nil || ae.Error.Code != "429" {
			t.Errorf("body %s", b)
		}
	}
	// Never on the token endpoint or /_sim.
	e.token("https://management.azure.com/")
	e.truth(subScope, "ActualCost", "2026-11-01", "2026-11-01")
	st := e.stats()
	if st.Throttled != 8 || st.Status[kindCreate]["429"] != 8 || st.Status[kindToken]["200"] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestServerErrors(t *testing.T) {
	e := newEnv(t, nil)
	arm := e.armHeaders()
	e.setFaults(`{"serverErrorRate":1}`)
	codes := map[int]int{}
	for range 20 {
		resp, b := e.do("POST", "/"+subScope+"/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01", week, arm)
		codes[resp.StatusCode]++
		switch resp.StatusCode {
		case 500:
		case 503:
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
		default:
			t.Fatalf("status %d (%s)", resp.StatusCode, b)
		}
	}
	if codes[500] == 0 || codes[503] == 0 {
		t.Errorf("codes = %v, want both 500 and 503", codes)
	}
	if st := e.stats(); st.ServerErrors != 20 {
		t.Errorf("serverErrors = %d", st.ServerErrors)
	}
}

func TestReset(t *testing.T) {
	e := newEnv(t, nil)
	arm := e.armHeaders()
	e.setFaults(`{"resetRate":1}`)
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	c := &http.Client{Transport: tr}
	for range 3 {
		req, _ := http.NewRequest("POST", e.srv.URL+"/"+subScope+"/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01", strings.NewReader(week))
		for k, v := range arm {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want a dropped connection", resp.StatusCode)
		}
	}
	if st := e.stats(); st.Resets != 3 || st.Status[kindCreate]["reset"] != 3 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFailReportOnce(t *testing.T) {
	e := newEnv(t, func(c *config) { c.faults.FailReportOnce = true })
	first := e.report(subScope, week)
	if first.Status != "Failed" || first.Error == nil || first.Error.Code == "" || first.Error.Message == "" || first.Manifest != nil {
		t.Fatalf("first result = %+v", first)
	}
	// Polling the failed operation again says the same.
	resp, b := e.do("GET", "/"+subScope+"/providers/Microsoft.CostManagement/costDetailsOperationResults/"+first.Name+"?api-version=2024-08-01", "", e.armHeaders())
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"status":"Failed"`) {
		t.Errorf("re-poll: %d %s", resp.StatusCode, b)
	}
	if second := e.report(subScope, week); second.Status != "Completed" {
		t.Errorf("second result = %+v", second)
	}
	if other := e.report(subScope, `{"metric":"AmortizedCost","timePeriod":{"start":"2026-11-01","end":"2026-11-07"}}`); other.Status != "Failed" {
		t.Errorf("another window's first result = %q, want Failed", other.Status)
	}
	if st := e.stats(); st.FailedReports != 2 {
		t.Errorf("failedReports = %d", st.FailedReports)
	}
}

func TestExpireLinksOnce(t *testing.T) {
	e := newEnv(t, func(c *config) { c.blobRows = 100 })
	e.setFaults(`{"expireLinksOnce":true}`)
	res := e.report(subScope, week)
	for _, blob := range res.Manifest.Blobs {
		resp, b := e.do("GET", blob.BlobLink, "", nil)
		if resp.StatusCode != 403 {
			t.Fatalf("first download: %d", resp.StatusCode)
		}
		checkStorageError(t, resp.Header.Get("x-ms-error-code"), b, "AuthenticationFailed", "Signed expiry time")
	}
	// A new report of the same window downloads fine.
	res = e.report(subScope, week)
	for _, blob := range res.Manifest.Blobs {
		e.download(blob.BlobLink)
	}
	if st := e.stats(); st.ExpiredLinks != len(res.Manifest.Blobs) {
		t.Errorf("expiredLinks = %d, want %d", st.ExpiredLinks, len(res.Manifest.Blobs))
	}
}

func TestDownloadFaults(t *testing.T) {
	e := newEnv(t, nil)
	res := e.report(subScope, week)
	e.setFaults(`{"throttleRate":1}`)
	resp, b := e.do("GET", res.Manifest.Blobs[0].BlobLink, "", nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("throttled download: %d %v", resp.StatusCode, resp.Header)
	}
	checkStorageError(t, resp.Header.Get("x-ms-error-code"), b, "ServerBusy", "busy")
	e.setFaults(`{"serverErrorRate":1}`)
	resp, b = e.do("GET", res.Manifest.Blobs[0].BlobLink, "", nil)
	if resp.StatusCode != 500 {
		t.Fatalf("failed download: %d", resp.StatusCode)
	}
	checkStorageError(t, resp.Header.Get("x-ms-error-code"), b, "InternalError", "")
	e.setFaults(`{}`)
	e.download(res.Manifest.Blobs[0].BlobLink)
}

func TestFaultSettings(t *testing.T) {
	e := newEnv(t, nil)
	for _, bad := range []string{`{"throttleRate":2}`, `{"throttleRate":0.6,"resetRate":0.6}`, `{"noDataAs":"404"}`, `{"jitter":1}`, `nope`} {
		if resp, b := e.do("POST", "/_sim/faults", bad, nil); resp.StatusCode != 400 {
			t.Errorf("POST %s: %d %s, want 400", bad, resp.StatusCode, b)
		}
	}
	e.setFaults(`{"throttleRate":0.3,"serverErrorRate":0.1,"resetRate":0.05,"failReportOnce":true,"expireLinksOnce":true,"noDataAs":"204"}`)
	_, b := e.do("GET", "/_sim/faults", "", nil)
	var f faultSettings
	json.Unmarshal(b, &f)
	if !reflect.DeepEqual(f, faultSettings{ThrottleRate: 0.3, ServerErrorRate: 0.1, ResetRate: 0.05, HangSeconds: 30, FailReportOnce: true, ExpireLinksOnce: true, NoDataAs: "204"}) {
		t.Errorf("settings = %+v", f)
	}

	// A mix of faults is reproducible from the seed.
	run := func() []int {
		e := newEnv(t, nil)
		arm := e.armHeaders()
		e.setFaults(`{"throttleRate":0.3,"serverErrorRate":0.2}`)
		var codes []int
		for range 30 {
			resp, _ := e.do("POST", "/"+subScope+"/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01", week, arm)
			codes = append(codes, resp.StatusCode)
		}
		return codes
	}
	a, b2 := run(), run()
	if !slices.Equal(a, b2) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b2)
	}
	counts := map[int]int{}
	for _, c := range a {
		counts[c]++
	}
	if counts[202] == 0 || counts[429] == 0 || counts[500]+counts[503] == 0 {
		t.Errorf("codes %v, want a mix", counts)
	}
}

func TestEnforceQuota(t *testing.T) {
	e := newEnv(t, func(c *config) { c.enforceQuota = true })
	arm := e.armHeaders()
	create := func(scope string) int {
		resp, _ := e.do("POST", "/"+scope+"/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01", week, arm)
		return resp.StatusCode
	}
	if a, b, c := create(subScope), create(subScope), create(subScope); a != 202 || b != 202 || c != 429 {
		t.Errorf("three creates in a minute: %d %d %d, want 202 202 429", a, b, c)
	}
	if got := create(eaAccount); got != 202 {
		t.Errorf("another scope: %d", got)
	}
	e.clock.advance(61e9)
	if got := create(subScope); got != 202 {
		t.Errorf("a minute later: %d", got)
	}
	if st := e.stats(); st.QuotaRejected != 1 {
		t.Errorf("quotaRejected = %d", st.QuotaRejected)
	}
}

func TestStats(t *testing.T) {
	e := newEnv(t, nil)
	res := e.report(subScope, week)
	e.download(res.Manifest.Blobs[0].BlobLink)
	e.do("POST", "/"+subScope+"/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01", week,
		map[string]string{"Authorization": "Bearer " + e.token("https://management.azure.com/")})
	st := e.stats()
	want := map[string]int{kindCreate: 2, kindPoll: 3, kindDownload: 1}
	for k, n := range want {
		if st.Requests[k] != n {
			t.Errorf("requests[%s] = %d, want %d", k, st.Requests[k], n)
		}
	}
	if st.MissingClientType != 1 || st.ClientTypes["costsim-test"] != 4 || st.Status[kindPoll]["202"] != 2 || st.Status[kindPoll]["200"] != 1 || st.Operations != 2 {
		t.Errorf("stats = %+v", st)
	}
	if resp, _ := e.do("DELETE", "/_sim/stats", "", nil); resp.StatusCode != 204 {
		t.Errorf("reset: %d", resp.StatusCode)
	}
	if st := e.stats(); st.Requests[kindCreate] != 0 || st.Operations != 0 {
		t.Errorf("after reset: %+v", st)
	}
}

func TestTimeouts(t *testing.T) {
	e := newEnv(t, nil)
	res := e.report(subScope, week)
	arm := e.armHeaders()
	e.setFaults(`{"timeoutRate":1,"hangSeconds":0.05}`)
	resp, b := e.do("POST", "/"+subScope+"/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01", week, arm)
	var ae armError
	if resp.StatusCode != http.StatusGatewayTimeout || json.Unmarshal(b, &ae) != nil || ae.Error.Code != "GatewayTimeout" {
		t.Fatalf("hung create: %d %s", resp.StatusCode, b)
	}
	// A download sends half its body, stalls, and is reset.
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	c := &http.Client{Transport: tr}
	dl, err := c.Get(res.Manifest.Blobs[0].BlobLink)
	if err != nil {
		t.Fatalf("stalled download: no headers: %v", err)
	}
	got, err := io.ReadAll(dl.Body)
	dl.Body.Close()
	if err == nil || dl.StatusCode != 200 || int64(len(got)) != dl.ContentLength/2 {
		t.Errorf("stalled download: status %d, %d of %d bytes, err %v; want half the body and an error", dl.StatusCode, len(got), dl.ContentLength, err)
	}
	if st := e.stats(); st.Timeouts != 2 {
		t.Errorf("timeouts = %d", st.Timeouts)
	}
}

func TestScopeErrors(t *testing.T) {
	e := newEnv(t, nil)
	arm := e.armHeaders()
	e.setFaults(`{"scopeErrors":{"/` + strings.ToUpper(subScope) + `":401,"` + eaAccount + `":403,"` + mcaProfile + `":422}}`)
	for scope, want := range map[string]struct {
		status        int
		code, message string
	}{
		subScope:   {401, "InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer 'https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/'"},
		eaAccount:  {403, "AuthorizationFailed", "does not have authorization to perform action 'Microsoft.CostManagement/generateCostDetailsReport/action' over scope '/" + eaAccount + "'"},
		mcaProfile: {422, "422", "Unsupported request. offer type: WebDirect for get detailed report request is not supported."},
	} {
		resp, b := e.do("POST", "/"+scope+"/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01", week, arm)
		var ae armError
		if resp.StatusCode != want.status || json.Unmarshal(b, &ae) != nil || ae.Error.Code != want.code || !strings.Contains(ae.Error.Message, want.message) {
			t.Errorf("%s: %d %s, want %d %s %q", scope, resp.StatusCode, b, want.status, want.code, want.message)
		}
	}
	if resp, b := e.create("providers/Microsoft.Billing/departments/12345", week); resp.StatusCode != 202 {
		t.Errorf("another scope: %d %s", resp.StatusCode, b)
	}
	if st := e.stats(); st.ScopeErrors != 3 {
		t.Errorf("scopeErrors = %d", st.ScopeErrors)
	}
}

func TestCompleteOnCreate(t *testing.T) {
	e := newEnv(t, nil)
	e.setFaults(`{"completeOnCreate":true}`)
	resp, b := e.create(subScope, week)
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "" {
		t.Fatalf("create: %d %v", resp.StatusCode, resp.Header)
	}
	checkResultShape(t, b)
	var res operationResult
	if err := json.Unmarshal(b, &res); err != nil || res.Status != "Completed" || len(res.Manifest.Blobs) == 0 {
		t.Fatalf("result %s", b)
	}
	e.download(res.Manifest.Blobs[0].BlobLink)
	if st := e.stats(); st.CompletedOnCreate != 1 {
		t.Errorf("completedOnCreate = %d", st.CompletedOnCreate)
	}
}

func TestPastValidTillOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.setFaults(`{"pastValidTillOnce":true}`)
	res := e.report(subScope, week)
	till, err := time.Parse(time.RFC3339Nano, res.ValidTill)
	if err != nil || !till.Before(e.clock.now()) {
		t.Fatalf("validTill %q is not past (now %s)", res.ValidTill, e.clock.now())
	}
	resp, b := e.do("GET", res.Manifest.Blobs[0].BlobLink, "", nil)
	if resp.StatusCode != 403 {
		t.Fatalf("download of a dead link: %d", resp.StatusCode)
	}
	checkStorageError(t, resp.Header.Get("x-ms-error-code"), b, "AuthenticationFailed", "expired")
	res = e.report(subScope, week)
	if till, _ := time.Parse(time.RFC3339Nano, res.ValidTill); !till.After(e.clock.now()) {
		t.Errorf("second report validTill %q", res.ValidTill)
	}
	e.download(res.Manifest.Blobs[0].BlobLink)
	if st := e.stats(); st.PastValidTill != 1 {
		t.Errorf("pastValidTill = %d", st.PastValidTill)
	}
}

func TestLinkHost(t *testing.T) {
	e := newEnv(t, nil)
	e.setFaults(`{"linkHost":"evil.example.com"}`)
	resp, _ := e.create(subScope, week)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "https://evil.example.com/"+subScope+"/") {
		t.Errorf("Location %q", loc)
	}
	e.setFaults(`{}`)
	res := e.report(subScope, week)
	e.setFaults(`{"linkHost":"evil.example.com"}`)
	resp, b := e.do("GET", "/"+res.ID+"?api-version=2024-08-01", "", e.armHeaders())
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"blobLink":"https://evil.example.com/armreports/`) {
		t.Errorf("result: %d %s", resp.StatusCode, b)
	}
	if st := e.stats(); st.ForeignLinks < 2 {
		t.Errorf("foreignLinks = %d", st.ForeignLinks)
	}
}

func TestNewFaultSettingsValidation(t *testing.T) {
	e := newEnv(t, nil)
	for _, bad := range []string{
		`{"timeoutRate":0.6,"throttleRate":0.6}`,
		`{"hangSeconds":-1}`,
		`{"scopeErrors":{"` + subScope + `":500}}`,
		`{"scopeErrors":{"subscriptions/x/resourceGroups/y":403}}`,
		`{"linkHost":"evil.example/path"}`,
	} {
		if resp, b := e.do("POST", "/_sim/faults", bad, nil); resp.StatusCode != 400 {
			t.Errorf("POST %s: %d %s, want 400", bad, resp.StatusCode, b)
		}
	}
}
