package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
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
	if f != (faultSettings{ThrottleRate: 0.3, ServerErrorRate: 0.1, ResetRate: 0.05, FailReportOnce: true, ExpireLinksOnce: true, NoDataAs: "204"}) {
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
