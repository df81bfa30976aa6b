package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/costsync/costsync/shared/invocation"
)

func serveTest(h http.Handler, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRouteTemplates(t *testing.T) {
	for _, tc := range []struct {
		template, path string
		want           map[string]string // nil: no match
	}{
		{"runs/{id}", "/runs/r-1", map[string]string{"id": "r-1"}},
		{"runs/{id}", "/RUNS/r-1/", map[string]string{"id": "r-1"}},
		{"runs/{id}", "/runs", nil},
		{"runs/{id}", "/runs/a/b", nil},
		{"coverage", "/coverage", map[string]string{}},
		{"coverage/{scope?}", "/coverage", map[string]string{}},
		{"coverage/{scope?}", "/coverage/sub1", map[string]string{"scope": "sub1"}},
		{"items/{n:int}", "/items/42", map[string]string{"n": "42"}},
		{"items/{n:int}", "/items/x", nil},
		{"files/{*path}", "/files/a/b/c.csv", map[string]string{"path": "a/b/c.csv"}},
		{"files/{*path}", "/files", map[string]string{}},
		{"f/{name}.{ext}", "/f/report.csv", map[string]string{"name": "report", "ext": "csv"}},
	} {
		r, err := parseRoute(tc.template)
		if err != nil {
			t.Fatalf("%s: %v", tc.template, err)
		}
		got, ok := r.match(tc.path)
		if ok != (tc.want != nil) {
			t.Errorf("%s ~ %s: match = %v", tc.template, tc.path, ok)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s ~ %s: params %v, want %v", tc.template, tc.path, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s ~ %s: %s = %q, want %q", tc.template, tc.path, k, got[k], v)
			}
		}
	}
	for _, bad := range []string{"a/{*x}/b", "a/{x?}/b", "a/{x}/{x}", "a/{1x}"} {
		if _, err := parseRoute(bad); err == nil {
			t.Errorf("parseRoute(%q) must fail", bad)
		}
	}
}

const statusFunctions = `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","methods":["get"],"route":"runs/{id}","authLevel":"function"},{"name":"res","type":"http","direction":"out"}]}`

func httpApp(t *testing.T, respond func(captured, http.ResponseWriter)) (*testHost, *server) {
	t.Helper()
	a := testApp(t, `{}`, map[string]string{
		"Status":     statusFunctions,
		"Coverage":   `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","route":"runs/coverage"},{"name":"res","type":"http","direction":"out"}]}`,
		"IngestHttp": `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","methods":["post"]},{"name":"res","type":"http","direction":"out"}]}`,
	})
	th := newTestHost(t, a, respond)
	return th, newServer(th.host, t.Context())
}

func TestHTTPTriggerRequestShape(t *testing.T) {
	th, srv := httpApp(t, func(c captured, w http.ResponseWriter) {
		answer(w, 200, `{"Outputs":{"res":{"statusCode":201,"headers":{"X-Run":"r1"},"body":{"ok":true}}}}`)
	})
	rec := serveTest(srv, "POST", "http://localhost:7071/api/IngestHttp?from=2026-01-01&tag=a&tag=b", `{"scope":"s1"}`,
		"Content-Type", "application/json", "X-Multi", "1", "X-Multi", "2")
	if rec.Code != 201 || rec.Header().Get("X-Run") != "r1" || rec.Body.String() != `{"ok":true}` || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("response %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	c := th.handler.requests()[0]
	if c.path != "/IngestHttp" {
		t.Errorf("path = %s", c.path)
	}
	var req struct {
		URL        string              `json:"Url"`
		Method     string              `json:"Method"`
		Query      map[string]string   `json:"Query"`
		Headers    map[string][]string `json:"Headers"`
		Params     map[string]string   `json:"Params"`
		Body       string              `json:"Body"`
		Identities []any               `json:"Identities"`
	}
	if err := json.Unmarshal(c.payload["Data"]["req"], &req); err != nil {
		t.Fatal(err)
	}
	if req.URL != "http://localhost:7071/api/IngestHttp?from=2026-01-01&tag=a&tag=b" || req.Method != "POST" || req.Body != `{"scope":"s1"}` {
		t.Errorf("req = %+v", req)
	}
	if req.Query["tag"] != "a,b" || req.Query["from"] != "2026-01-01" {
		t.Errorf("Query = %v, want single strings joined with commas", req.Query)
	}
	if got := req.Headers["X-Multi"]; len(got) != 2 || req.Headers["Content-Type"][0] != "application/json" {
		t.Errorf("Headers = %v, want arrays", req.Headers)
	}
	if req.Params == nil || req.Identities == nil {
		t.Errorf("Params and Identities must be present: %s", c.payload["Data"]["req"])
	}
	var meta struct{ Headers, Query map[string]string }
	_ = json.Unmarshal(c.payload["Metadata"]["Headers"], &meta.Headers)
	_ = json.Unmarshal(c.payload["Metadata"]["Query"], &meta.Query)
	if meta.Headers["Content-Type"] != "application/json" || meta.Query["tag"] != "a,b" {
		t.Errorf("Metadata = %+v", meta)
	}
}

func TestHTTPRoutingParamsAndMethods(t *testing.T) {
	th, srv := httpApp(t, func(c captured, w http.ResponseWriter) {
		answer(w, 200, `{"Outputs":{"res":{"statusCode":"200","body":"`+strings.TrimPrefix(c.path, "/")+`"}}}`)
	})
	rec := serveTest(srv, "GET", "/api/runs/r-42", "")
	if rec.Code != 200 || rec.Body.String() != "Status" || rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("GET /api/runs/r-42 = %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	var req invocation.HTTP
	_ = json.Unmarshal(th.handler.requests()[0].payload["Data"]["req"], &req)
	if req.Params["id"] != "r-42" {
		t.Errorf("Params = %v", req.Params)
	}
	if rec := serveTest(srv, "GET", "/api/runs/coverage", ""); rec.Body.String() != "Coverage" {
		t.Errorf("the literal route must win over {id}: %q", rec.Body)
	}
	if rec := serveTest(srv, "DELETE", "/api/runs/r-42", ""); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET" {
		t.Errorf("DELETE = %d %v, want 405", rec.Code, rec.Header())
	}
	if rec := serveTest(srv, "GET", "/api/nothing", ""); rec.Code != 404 {
		t.Errorf("unknown route = %d, want 404", rec.Code)
	}
	if rec := serveTest(srv, "GET", "/runs/r-42", ""); rec.Code != 404 {
		t.Errorf("no route prefix = %d, want 404", rec.Code)
	}
}

func TestHTTPResponseMapping(t *testing.T) {
	for _, tc := range []struct {
		name, handlerBody string
		handlerStatus     int
		wantStatus        int
		wantBody, wantCT  string
	}{
		{"string body", `{"Outputs":{"res":{"body":"Order enqueued"}}}`, 200, 200, "Order enqueued", "text/plain; charset=utf-8"},
		{"object body", `{"Outputs":{"res":{"statusCode":202,"body":{"runId":"r1"}}}}`, 200, 202, `{"runId":"r1"}`, "application/json; charset=utf-8"},
		{"header wins", `{"Outputs":{"res":{"statusCode":"200","headers":{"Content-Type":"text/csv"},"body":"a,b"}}}`, 200, 200, "a,b", "text/csv"},
		{"res as JSON text", `{"Outputs":{"res":"{\"statusCode\":404,\"body\":\"no\"}"}}`, 200, 404, "no", "text/plain; charset=utf-8"},
		{"base64-looking string body is kept", `{"Outputs":{"res":{"body":"abcd1234"}}}`, 200, 200, "abcd1234", "text/plain; charset=utf-8"},
		{"handler failure", `{}`, 500, 500, "", ""},
		{"bad res", `{"Outputs":{"res":"not json"}}`, 200, 500, "", ""},
		{"text/plain answer", ``, 200, 500, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := httpApp(t, func(c captured, w http.ResponseWriter) {
				if tc.handlerBody == "" {
					w.Header().Set("Content-Type", "text/plain")
					_, _ = io.WriteString(w, "hello")
					return
				}
				answer(w, tc.handlerStatus, tc.handlerBody)
			})
			rec := serveTest(srv, "POST", "/api/IngestHttp", "{}")
			if rec.Code != tc.wantStatus || rec.Body.String() != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body, tc.wantStatus, tc.wantBody)
			}
			if tc.wantCT != "" && rec.Header().Get("Content-Type") != tc.wantCT {
				t.Errorf("Content-Type = %q, want %q", rec.Header().Get("Content-Type"), tc.wantCT)
			}
		})
	}
}

func TestAdminEndpoints(t *testing.T) {
	a := testApp(t, `{"extensions":{"http":{"routePrefix":"x"}}}`, map[string]string{
		"PlanWindows": `{"bindings":[{"name":"myTimer","type":"timerTrigger","direction":"in","schedule":"0 0 0 1 1 *"}]}`,
		"Q":           windowsFunction,
	})
	th := newTestHost(t, a, okEmpty)
	srv := newServerWithTimers(th.host, t.Context())
	rec := serveTest(srv, "GET", "/admin/host/status", "")
	var st map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &st)
	if rec.Code != 200 || st["state"] != "Running" {
		t.Errorf("status = %d %s", rec.Code, rec.Body)
	}
	if rec := serveTest(srv, "POST", "/admin/functions/PlanWindows", `{"input":""}`); rec.Code != http.StatusAccepted {
		t.Errorf("admin invoke = %d %s", rec.Code, rec.Body)
	}
	eventually(t, "the manual timer run", func() bool { return len(th.handler.requests()) == 1 })
	c := th.handler.requests()[0]
	var timer struct {
		ScheduleStatus struct{ Last string } `json:"ScheduleStatus"`
		IsPastDue      bool                  `json:"IsPastDue"`
	}
	if err := json.Unmarshal(c.payload["Data"]["myTimer"], &timer); err != nil || timer.ScheduleStatus.Last != "0001-01-01T00:00:00" || timer.IsPastDue {
		t.Errorf("timer payload %s (%v)", c.payload["Data"]["myTimer"], err)
	}
	if rec := serveTest(srv, "POST", "/admin/functions/Q", `{"input":"x"}`); rec.Code != http.StatusBadRequest {
		t.Errorf("admin invoke of a queue function = %d", rec.Code)
	}
	if rec := serveTest(srv, "POST", "/admin/functions/Nope", `{}`); rec.Code != http.StatusNotFound {
		t.Errorf("admin invoke of an unknown function = %d", rec.Code)
	}
}

func TestHTTPForwardingMode(t *testing.T) {
	a := testApp(t, `{"customHandler":{"enableForwardingHttpRequest":true}}`, map[string]string{
		"Hello": `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","route":"hello/{who}"},{"name":"res","type":"http","direction":"out"}]}`,
		"Mixed": `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in"},{"name":"res","type":"http","direction":"out"},{"name":"q","type":"queue","direction":"out","queueName":"q"}]}`,
	})
	th := newTestHost(t, a, func(c captured, w http.ResponseWriter) {
		if c.path == "/Mixed" {
			okEmpty(c, w)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(418)
		_, _ = io.WriteString(w, "raw answer")
	})
	srv := newServer(th.host, t.Context())
	rec := serveTest(srv, "GET", "/api/hello/bob?x=1", "")
	if rec.Code != 418 || rec.Body.String() != "raw answer" {
		t.Errorf("forwarded = %d %q, want the handler's raw response", rec.Code, rec.Body)
	}
	reqs := th.handler.requests()
	if reqs[0].path != "/api/hello/bob" || !uuidRe.MatchString(reqs[0].header.Get("X-Azure-Functions-InvocationId")) || len(reqs[0].body) != 0 {
		t.Errorf("forwarded request %+v", reqs[0])
	}
	// A function with more bindings gets the JSON payload even with forwarding on.
	if rec := serveTest(srv, "POST", "/api/Mixed", "{}"); rec.Code != 200 || th.handler.requests()[1].path != "/Mixed" {
		t.Errorf("Mixed = %d, %s", rec.Code, th.handler.requests()[1].path)
	}
}
