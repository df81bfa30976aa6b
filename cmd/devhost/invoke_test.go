package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/costsync/costsync/shared/invocation"
)

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// sysOf extracts the sys entry of a captured payload.
func sysOf(t *testing.T, c captured) invocation.Sys {
	t.Helper()
	var sys invocation.Sys
	if err := json.Unmarshal(c.payload["Metadata"]["sys"], &sys); err != nil {
		t.Fatalf("sys: %v in %s", err, c.body)
	}
	return sys
}

func TestInvokeQueuePayloadBytesAndHeaders(t *testing.T) {
	a := testApp(t, `{}`, map[string]string{"ProcessWindow": `{"bindings":[{"name":"msg","type":"queueTrigger","direction":"in","queueName":"cost-windows"}]}`})
	th := newTestHost(t, a, okEmpty)
	fn := a.function("ProcessWindow")
	ins := time.Date(2025, 2, 18, 3, 6, 19, 0, time.UTC)
	m := queueMessage{ID: "52d53c5f-e212-487e-998b-abbe3b9d51e4", PopReceipt: "MThGZWIyMDI1MDM6MDY6MjA3NjM1", Text: base64.StdEncoding.EncodeToString([]byte(`{"reportId":"r1","attempt":1}`)),
		DequeueCount: 1, InsertionTime: ins, ExpirationTime: ins.Add(7 * 24 * time.Hour), NextVisibleTime: ins.Add(10*time.Minute + time.Second)}
	th.queues.CreateQueue(t.Context(), "cost-windows")
	l := newQueueListener(th.host, fn, th.queues)
	l.process(t.Context(), m)

	reqs := th.handler.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	c := reqs[0]
	if c.path != "/ProcessWindow" {
		t.Errorf("path = %s, want /ProcessWindow", c.path)
	}
	sys := sysOf(t, c)
	want := `{"Data":{"msg":"\"{\\\"reportId\\\":\\\"r1\\\",\\\"attempt\\\":1}\""},` +
		`"Metadata":{"DequeueCount":"1","ExpirationTime":"2025-02-25T03:06:19+00:00","Id":"\"52d53c5f-e212-487e-998b-abbe3b9d51e4\"",` +
		`"InsertionTime":"2025-02-18T03:06:19+00:00","NextVisibleTime":"2025-02-18T03:16:20+00:00","PopReceipt":"\"MThGZWIyMDI1MDM6MDY6MjA3NjM1\"",` +
		`"sys":{"MethodName":"ProcessWindow","UtcNow":"` + sys.UtcNow + `","RandGuid":"` + sys.RandGuid + `"}}}`
	if string(c.body) != want {
		t.Errorf("body:\n got %s\nwant %s", c.body, want)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`).MatchString(sys.UtcNow) || !uuidRe.MatchString(sys.RandGuid) {
		t.Errorf("sys = %+v", sys)
	}
	for k, want := range map[string]string{
		"X-Azure-Functions-HostVersion": "4.1036.1.23224",
		"User-Agent":                    "Azure-Functions-Host/4.1036.1.23224",
		"Content-Type":                  "application/json; charset=utf-8",
	} {
		if got := c.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if id := c.header.Get("X-Azure-Functions-InvocationId"); !uuidRe.MatchString(id) {
		t.Errorf("invocation id %q is not a uuid", id)
	}
	// The handler's payload decodes with the package the handler uses.
	req, err := invocation.Decode(c.body)
	if err != nil {
		t.Fatal(err)
	}
	q, err := req.QueueTrigger("msg")
	if err != nil || q.Message != `{"reportId":"r1","attempt":1}` || q.DequeueCount != 1 {
		t.Errorf("decoded %+v, %v", q, err)
	}
	// The log line carries no body.
	if strings.Contains(th.logText(), "reportId") {
		t.Errorf("a message body reached the log: %s", th.logText())
	}
}

func TestHandleResponseRules(t *testing.T) {
	a := testApp(t, `{}`, map[string]string{"F": `{"bindings":[{"name":"msg","type":"queueTrigger","direction":"in","queueName":"in"}]}`})
	th := newTestHost(t, a, okEmpty)
	fn := a.function("F")
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		wantErr     string
	}{
		{"ok", 200, "application/json", `{"Outputs":{},"Logs":["a","b"],"ReturnValue":null}`, ""},
		{"ok with charset", 200, "application/json; charset=utf-8", `{}`, ""},
		{"text/json", 200, "text/json", `{}`, ""},
		{"created", 201, "application/json", `{}`, ""},
		{"500", 500, "application/json", `{}`, "handler answered 500"},
		{"400", 400, "application/json", `{"Outputs":{}}`, "handler answered 400"},
		{"text/plain", 200, "text/plain; charset=utf-8", `{}`, "Content-Type"},
		{"no content type", 200, "", `{}`, "Content-Type"},
		{"invalid json", 200, "application/json", `{"Outputs":`, "not a JSON response object"},
		{"array", 200, "application/json", `[1,2]`, "not a JSON response object"},
		{"empty", 200, "application/json", ``, "empty body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := th.handleResponse(t.Context(), fn, "id", tc.status, tc.contentType, []byte(tc.body))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	if !strings.Contains(th.logText(), `"log":"b"`) {
		t.Errorf("Logs must become log lines: %s", th.logText())
	}
}

func TestQueueOutputMessages(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name     string
		raw      string
		dataType string
		want     []string
		decoded  bool
	}{
		{"object", `{"reportId":"r1","n":12345678901234567890}`, "", []string{`{"reportId":"r1","n":12345678901234567890}`}, false},
		{"object with spaces", `{ "a" : 1 }`, "", []string{`{"a":1}`}, false},
		{"json text", `"{\"a\":1}"`, "", []string{`{"a":1}`}, false},
		{"array of objects", `[{"a":1},{"b":2}]`, "", []string{`{"a":1}`, `{"b":2}`}, false},
		{"array of strings", `["queue message 1","queue message 2"]`, "", []string{"queue message 1", "queue message 2"}, false},
		{"array elements are not base64-decoded", `["aGVsbG8="]`, "", []string{"aGVsbG8="}, false},
		{"array text in a string", `"[\"x\",{\"a\":1}]"`, "", []string{"x", `{"a":1}`}, false},
		{"plain string", `"Order enqueued"`, "", []string{"Order enqueued"}, false},
		{"base64 string is decoded", `"` + b64("hello") + `"`, "", []string{"hello"}, true},
		{"token that happens to be base64", `"abcd1234"`, "", []string{"i\xb7\x1d\xd7m\xf8"}, true},
		{"binary keeps base64", `"` + b64("hello") + `"`, "binary", []string{b64("hello")}, false},
		{"number", `42`, "", []string{"42"}, false},
		{"bool", `[true,false,null]`, "", []string{"True", "False", ""}, false},
		{"null", `null`, "", nil, false},
		{"absent", ``, "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, decoded, err := queueOutputMessages(json.RawMessage(tc.raw), tc.dataType)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, string(m))
			}
			if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") || len(got) != len(tc.want) || decoded != tc.decoded {
				t.Errorf("got %q decoded=%v, want %q decoded=%v", got, decoded, tc.want, tc.decoded)
			}
		})
	}
	if _, _, err := queueOutputMessages(json.RawMessage(`"{not json}"`), ""); err == nil {
		t.Error("a string that looks like JSON but is not must fail the invocation, as JToken.Parse does")
	}
}

func TestOutputsToQueues(t *testing.T) {
	a := testApp(t, `{}`, map[string]string{"IngestHttp": `{"bindings":[
		{"name":"req","type":"httpTrigger","direction":"in","methods":["post"],"route":"ingest"},
		{"name":"res","type":"http","direction":"out"},
		{"name":"windows","type":"queue","direction":"out","queueName":"cost-windows"},
		{"name":"$return","type":"queue","direction":"out","queueName":"cost-returns"},
		{"name":"blobOut","type":"blob","direction":"out","path":"x/y"}]}`})
	respond := func(c captured, w http.ResponseWriter) {
		answer(w, 200, `{"Outputs":{"res":{"statusCode":"202","body":{"runId":"r1"}},
			"windows":[{"window":"2026-11-01"},{"window":"2026-11-02"}],"blobOut":"data"},
			"Logs":null,"ReturnValue":"aGVsbG8="}`)
	}
	th := newTestHost(t, a, respond)
	fn := a.function("IngestHttp")
	res, err := th.invoke(t.Context(), fn, nil, func(sys invocation.Sys) *invocation.Request {
		return invocation.NewHTTPRequest("req", invocation.HTTP{URL: "http://x/api/ingest", Method: "POST"}, sys)
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.http == nil || res.http.res.StatusCode != 202 || string(res.http.body) != `{"runId":"r1"}` {
		t.Errorf("http result = %+v", res.http)
	}
	want := []string{b64s(`{"window":"2026-11-01"}`), b64s(`{"window":"2026-11-02"}`)}
	if got := th.queues.texts("cost-windows"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("cost-windows = %q, want %q (base64 of each element)", got, want)
	}
	if got := th.queues.texts("cost-returns"); len(got) != 1 || got[0] != b64s("hello") {
		t.Errorf("cost-returns = %q, want the base64-decoded ReturnValue re-encoded", got)
	}
	logs := th.logText()
	for _, want := range []string{"valid base64", "not supported by devhost; value dropped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q: %s", want, logs)
		}
	}
}

func TestMessageEncodingNone(t *testing.T) {
	a := testApp(t, `{"extensions":{"queues":{"messageEncoding":"none"}}}`, map[string]string{"F": `{"bindings":[
		{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 0 * * * *"},
		{"name":"out","type":"queue","direction":"out","queueName":"q"}]}`})
	th := newTestHost(t, a, func(c captured, w http.ResponseWriter) {
		answer(w, 200, `{"Outputs":{"out":{"a":1}}}`)
	})
	if _, err := th.invoke(t.Context(), a.function("F"), nil, func(sys invocation.Sys) *invocation.Request {
		return invocation.NewTimerRequest("t", time.Time{}, time.Now(), false, sys)
	}); err != nil {
		t.Fatal(err)
	}
	if got := th.queues.texts("q"); len(got) != 1 || got[0] != `{"a":1}` {
		t.Errorf("q = %q, want the JSON text unencoded", got)
	}
}

func TestFunctionTimeoutRestartsHandler(t *testing.T) {
	a := testApp(t, `{"functionTimeout":"00:00:01"}`, map[string]string{"F": `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 0 * * * *"}]}`})
	release := make(chan struct{})
	th := newTestHost(t, a, func(c captured, w http.ResponseWriter) {
		<-release
		okEmpty(c, w)
	})
	defer close(release)
	a.host.functionTimeout = 50 * time.Millisecond
	_, err := th.invoke(context.Background(), a.function("F"), nil, func(sys invocation.Sys) *invocation.Request {
		return invocation.NewTimerRequest("t", time.Time{}, time.Now(), false, sys)
	})
	if err == nil || !strings.Contains(err.Error(), "function timeout") {
		t.Fatalf("err = %v, want a function timeout", err)
	}
	th.handler.mu.Lock()
	restarts := len(th.handler.restarts)
	th.handler.mu.Unlock()
	if restarts != 1 {
		t.Errorf("%d restarts, want 1", restarts)
	}
	if !strings.Contains(th.logText(), `"outcome":"timeout"`) {
		t.Errorf("log: %s", th.logText())
	}
}

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
