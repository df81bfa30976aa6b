package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// testToday is the simulated date of every test.
var testToday = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a simulator behind a real TLS test server.
type env struct {
	t      *testing.T
	sim    *sim
	srv    *httptest.Server
	client *http.Client
	clock  *clock
}

func testConfig() config {
	return config{
		seed: 1, identityHeader: "test-secret", tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47",
		today: testToday, rowsPerDay: 40, retryAfter: 1, polls: 2, linkTTL: time.Hour,
	}
}

// newEnv starts a simulator; edit may change its configuration.
func newEnv(t *testing.T, edit func(*config)) *env {
	t.Helper()
	cfg := testConfig()
	if edit != nil {
		edit(&cfg)
	}
	s, err := newSim(cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("newSim: %v", err)
	}
	c := &clock{t: time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)}
	s.now = c.now
	srv := httptest.NewTLSServer(s)
	t.Cleanup(srv.Close)
	return &env{t: t, sim: s, srv: srv, client: srv.Client(), clock: c}
}

// do sends a request and returns the response with its body read.
func (e *env) do(method, rawURL string, body string, header map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	if strings.HasPrefix(rawURL, "/") {
		rawURL = e.srv.URL + rawURL
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return resp, b
}

// token gets a managed identity token for resource.
func (e *env) token(resource string) string {
	e.t.Helper()
	resp, b := e.do("GET", "/msi/token?api-version=2019-08-01&resource="+url.QueryEscape(resource), "",
		map[string]string{"X-IDENTITY-HEADER": "test-secret"})
	if resp.StatusCode != 200 {
		e.t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	var tr tokenResponse
	if err := json.Unmarshal(b, &tr); err != nil {
		e.t.Fatalf("decode token: %v", err)
	}
	return tr.AccessToken
}

func (e *env) armHeaders() map[string]string {
	return map[string]string{"Authorization": "Bearer " + e.token("https://management.azure.com/"), "ClientType": "costsim-test"}
}

// create posts a report request.
func (e *env) create(scope, body string) (*http.Response, []byte) {
	e.t.Helper()
	return e.do("POST", "/"+scope+"/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01", body, e.armHeaders())
}

// pollUntilDone polls a Location until it answers something other than 202.
func (e *env) pollUntilDone(loc string) (*http.Response, []byte) {
	e.t.Helper()
	h := e.armHeaders()
	for range 20 {
		resp, b := e.do("GET", loc, "", h)
		if resp.StatusCode != http.StatusAccepted {
			return resp, b
		}
		if resp.Header.Get("Location") == "" || resp.Header.Get("Retry-After") == "" {
			e.t.Fatalf("202 poll without Location or Retry-After: %v", resp.Header)
		}
		loc = resp.Header.Get("Location")
	}
	e.t.Fatalf("report never finished")
	return nil, nil
}

// report runs create → poll → result and returns the decoded result.
func (e *env) report(scope, body string) operationResult {
	e.t.Helper()
	resp, b := e.create(scope, body)
	if resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("create %s: %d %s", scope, resp.StatusCode, b)
	}
	resp, b = e.pollUntilDone(resp.Header.Get("Location"))
	if resp.StatusCode != 200 {
		e.t.Fatalf("poll: %d %s", resp.StatusCode, b)
	}
	var res operationResult
	if err := json.Unmarshal(b, &res); err != nil {
		e.t.Fatalf("decode result: %v", err)
	}
	return res
}

// download fetches a blob link with no credentials.
func (e *env) download(link string) []byte {
	e.t.Helper()
	resp, b := e.do("GET", link, "", nil)
	if resp.StatusCode != 200 {
		e.t.Fatalf("download: %d %s", resp.StatusCode, b)
	}
	return b
}

// truth asks for the ground truth.
func (e *env) truth(scope, metric, from, to string) truthResponse {
	e.t.Helper()
	resp, b := e.do("GET", "/_sim/truth?scope="+url.QueryEscape(scope)+"&metric="+metric+"&from="+from+"&to="+to, "", nil)
	if resp.StatusCode != 200 {
		e.t.Fatalf("truth: %d %s", resp.StatusCode, b)
	}
	var tr truthResponse
	if err := json.Unmarshal(b, &tr); err != nil {
		e.t.Fatalf("decode truth: %v", err)
	}
	return tr
}

// parsedCSV is one blob split into header and records.
type parsedCSV struct {
	header  []string
	records [][]string
}

// parseBlob checks the BOM and parses a blob as RFC 4180 CSV.
func parseBlob(t *testing.T, b []byte) parsedCSV {
	t.Helper()
	if !bytes.HasPrefix(b, []byte(utf8BOM)) {
		t.Fatalf("blob does not start with a UTF-8 BOM: %q", b[:min(len(b), 10)])
	}
	if bytes.Contains(b, []byte("\r\n")) {
		t.Errorf("blob has CRLF line ends")
	}
	r := csv.NewReader(bytes.NewReader(b[len(utf8BOM):]))
	all, err := r.ReadAll()
	if err != nil {
		t.Fatalf("parse CSV: %v", err)
	}
	if len(all) == 0 {
		t.Fatalf("blob has no header")
	}
	return parsedCSV{header: all[0], records: all[1:]}
}

// sumColumn sums a column in decimal.
func sumColumn(t *testing.T, p parsedCSV, col string) decimal.Decimal {
	t.Helper()
	idx := -1
	for i, h := range p.header {
		if h == col {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("no column %s in %v", col, p.header)
	}
	sum := decimal.Zero
	for _, rec := range p.records {
		v, err := decimal.NewFromString(rec[idx])
		if err != nil {
			t.Fatalf("column %s value %q: %v", col, rec[idx], err)
		}
		sum = sum.Add(v)
	}
	return sum
}

func column(p parsedCSV, col string) []string {
	idx := -1
	for i, h := range p.header {
		if h == col {
			idx = i
		}
	}
	var out []string
	for _, rec := range p.records {
		out = append(out, rec[idx])
	}
	return out
}
