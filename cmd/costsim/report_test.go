package main

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// TestReportEqualsServedReport: /_sim/report answers, part by part, the
// very bytes a Cost Details report of the same range serves, before and
// after a restatement of one of its days.
func TestReportEqualsServedReport(t *testing.T) {
	e := newEnv(t, func(c *config) { c.blobRows = 25 })
	const from, to = "2026-11-01", "2026-11-03"
	check := func(name string) {
		t.Helper()
		res := e.report(eaAccount, `{"timePeriod":{"start":"`+from+`","end":"`+to+`"}}`)
		for i, blob := range res.Manifest.Blobs {
			resp, b := e.do("GET", "/_sim/report?scope="+url.QueryEscape(eaAccount)+"&metric=ActualCost&from="+from+"&to="+to+"&part="+strconv.Itoa(i), "", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: part %d: %d %s", name, i, resp.StatusCode, b)
			}
			if n, _ := strconv.Atoi(resp.Header.Get("X-Sim-Parts")); n != len(res.Manifest.Blobs) {
				t.Errorf("%s: X-Sim-Parts %d, the report has %d blobs", name, n, len(res.Manifest.Blobs))
			}
			if !bytes.Equal(b, e.download(blob.BlobLink)) {
				t.Errorf("%s: part %d differs from the served blob", name, i)
			}
		}
		if len(res.Manifest.Blobs) < 2 {
			t.Errorf("%s: %d blobs, the test wants several", name, len(res.Manifest.Blobs))
		}
	}
	check("first")
	if resp, b := e.do("POST", "/_sim/restate", `{"scope":"`+eaAccount+`","metric":"ActualCost","date":"2026-11-02"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("restate: %d %s", resp.StatusCode, b)
	}
	check("after a restatement")
	for _, q := range []string{"part=-1", "part=x", "part=99"} {
		resp, _ := e.do("GET", "/_sim/report?scope="+url.QueryEscape(eaAccount)+"&metric=ActualCost&from="+from+"&to="+to+"&"+q, "", nil)
		if resp.StatusCode/100 != 4 {
			t.Errorf("%s: %d, want a 4xx", q, resp.StatusCode)
		}
	}
}
