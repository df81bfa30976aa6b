package invocation

import (
	"encoding/json"
	"testing"
	"time"
)

// capturedQueue is the real payload captured from func 4.0.6610
// (functions-host.md §1.3).
const capturedQueue = `{
    "Data": {"queue": "\"hello!!\""},
    "Metadata": {
      "DequeueCount": "1",
      "ExpirationTime": "2025-02-25T03:06:19+00:00",
      "Id": "\"52d53c5f-e212-487e-998b-abbe3b9d51e4\"",
      "InsertionTime": "2025-02-18T03:06:19+00:00",
      "NextVisibleTime": "2025-02-18T03:16:20+00:00",
      "PopReceipt": "\"MThGZWIyMDI1MDM6MDY6MjA3NjM1\"",
      "sys": {"MethodName": "queue", "RandGuid": "e59556b5-892a-4465-a19d-4396f0978dab", "UtcNow": "2025-02-18T03:06:20.7562691Z"}
    }
}`

// capturedTimer is the real first-run timer payload (functions-host.md §1.4).
const capturedTimer = `{
    "Data": {"myTimer": {"Schedule": {"AdjustForDST": true},
        "ScheduleStatus": {"Last": "0001-01-01T00:00:00", "Next": "2024-11-30T14:45:51+00:00", "LastUpdated": "2024-11-30T14:43:50.403838+00:00"},
        "IsPastDue": false}},
    "Metadata": {"sys": {"MethodName": "uk-generation-mix", "UtcNow": "2024-11-30T14:43:50.46239Z", "RandGuid": "fa3b2fbc-26ed-4fcb-be75-82db8773b519"}}
}`

func TestQueueTriggerCaptured(t *testing.T) {
	req, err := Decode([]byte(capturedQueue))
	if err != nil {
		t.Fatal(err)
	}
	q, err := req.QueueTrigger("queue")
	if err != nil {
		t.Fatal(err)
	}
	if q.Message != "hello!!" || q.DequeueCount != 1 || q.ID != "52d53c5f-e212-487e-998b-abbe3b9d51e4" || q.PopReceipt != "MThGZWIyMDI1MDM6MDY6MjA3NjM1" {
		t.Errorf("got %+v", q)
	}
	if want := time.Date(2025, 2, 18, 3, 16, 20, 0, time.UTC); !q.NextVisibleTime.Equal(want) {
		t.Errorf("NextVisibleTime = %v, want %v", q.NextVisibleTime, want)
	}
	if _, err := req.QueueTrigger("other"); err == nil {
		t.Error("a missing binding must be an error")
	}
}

func TestDecodeJSONDoubleAndSingle(t *testing.T) {
	type msg struct {
		ReportID string `json:"reportId"`
		Attempt  int    `json:"attempt"`
	}
	for _, tc := range []struct {
		name, raw string
		wantErr   bool
	}{
		{"double", `"{\"reportId\":\"r1\",\"attempt\":1}"`, false},
		{"double quoted again", `"\"{\\\"reportId\\\":\\\"r1\\\",\\\"attempt\\\":1}\""`, false},
		{"object", `{"reportId":"r1","attempt":1}`, false},
		{"unknown field", `"{\"reportId\":\"r1\",\"attempt\":1,\"x\":2}"`, true},
		{"trailing data", `"{\"reportId\":\"r1\",\"attempt\":1} {}"`, true},
		{"not json", `"hello"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m msg
			err := DecodeJSON(json.RawMessage(tc.raw), &m)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && (m.ReportID != "r1" || m.Attempt != 1) {
				t.Errorf("got %+v", m)
			}
		})
	}
}

func TestTimerTriggerCaptured(t *testing.T) {
	req, err := Decode([]byte(capturedTimer))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := req.TimerTrigger("myTimer")
	if err != nil {
		t.Fatal(err)
	}
	if tm.ScheduleStatus == nil || !tm.ScheduleStatus.Last.IsZero() || tm.IsPastDue {
		t.Errorf("got %+v", tm)
	}
	nullStatus := `{"Data":{"t":{"Schedule":{},"ScheduleStatus":null,"IsPastDue":true}},"Metadata":{}}`
	req, _ = Decode([]byte(nullStatus))
	tm, err = req.TimerTrigger("t")
	if err != nil || tm.ScheduleStatus != nil || !tm.IsPastDue {
		t.Errorf("null ScheduleStatus: %+v, %v", tm, err)
	}
}

func TestBlobTrigger(t *testing.T) {
	// Shape of the real capture in functions-host.md §1.5.
	raw := `{"Data":{"file":"eyJhIjoxfQ=="},"Metadata":{"Uri":"\"https://acct.blob.core.windows.net/cost-manifests/x/y.json\"",
	  "Properties":{"ContentLength":7,"ETag":{}},"Metadata":{},"name":"\"x/y.json\"","sys":{"MethodName":"IngestManifest"}}}`
	req, err := Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	b, err := req.BlobTrigger("file", "name")
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Content) != `{"a":1}` || b.Name != "x/y.json" || b.URI != "https://acct.blob.core.windows.net/cost-manifests/x/y.json" {
		t.Errorf("got %+v", b)
	}
	bad := `{"Data":{"file":"%%%"},"Metadata":{}}`
	req, _ = Decode([]byte(bad))
	if _, err := req.BlobTrigger("file", "name"); err == nil {
		t.Error("content that is not base64 must be an error")
	}
}

func TestHTTPTrigger(t *testing.T) {
	// KarlGW/azfunc fixture shape (functions-host.md §1.6).
	raw := `{"Data":{"req":{"Url":"http://localhost:7071/api/ingest","Method":"POST","Body":"{\"message\":\"hello\"}",
	  "Params":{},"Query":{"dryRun":"true"},"Headers":{"Content-Type":["application/json"]},"Identities":[]}},
	  "Metadata":{"Params":{},"Query":{},"Headers":{"Content-Type":"application/json"},"sys":{}}}`
	req, err := Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	h, err := req.HTTPTrigger("req")
	if err != nil {
		t.Fatal(err)
	}
	if h.Method != "POST" || h.Body != `{"message":"hello"}` || h.Query["dryRun"] != "true" || h.Header("content-type") != "application/json" {
		t.Errorf("got %+v", h)
	}
}

// The builders must produce what the decoders of the real captures accept,
// with the same quirks: the round trip is the contract devhost relies on.
func TestBuildersRoundTrip(t *testing.T) {
	sys := Sys{MethodName: "F", UtcNow: "2026-11-22T10:00:00.1234567Z", RandGuid: "g"}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

	qr := NewQueueRequest("msg", QueueMessage{Text: `{"a":"b"}`, DequeueCount: 3, ID: "id1", PopReceipt: "pr", InsertionTime: now, ExpirationTime: now, NextVisibleTime: now}, sys)
	body, _ := json.Marshal(qr)
	var generic map[string]map[string]any
	_ = json.Unmarshal(body, &generic)
	if generic["Metadata"]["DequeueCount"] != "3" || generic["Metadata"]["Id"] != `"id1"` || generic["Data"]["msg"] != `"{\"a\":\"b\"}"` {
		t.Errorf("queue wire form wrong: %s", body)
	}
	if generic["Metadata"]["InsertionTime"] != "2026-11-22T10:00:00+00:00" {
		t.Errorf("time wire form wrong: %v", generic["Metadata"]["InsertionTime"])
	}
	req, _ := Decode(body)
	q, err := req.QueueTrigger("msg")
	if err != nil || q.Message != `{"a":"b"}` || q.DequeueCount != 3 || q.ID != "id1" {
		t.Errorf("queue round trip: %+v %v", q, err)
	}

	tr := NewTimerRequest("t", time.Time{}, now, false, sys)
	body, _ = json.Marshal(tr)
	req, _ = Decode(body)
	tm, err := req.TimerTrigger("t")
	if err != nil || !tm.ScheduleStatus.Last.IsZero() || !tm.ScheduleStatus.Next.Equal(now) {
		t.Errorf("timer round trip: %+v %v (%s)", tm, err, body)
	}

	br := NewBlobRequest("m", BlobInfo{Content: []byte("x"), URI: "https://h/c/a/b", Tokens: map[string]string{"name": "a/b"}}, sys)
	body, _ = json.Marshal(br)
	req, _ = Decode(body)
	b, err := req.BlobTrigger("m", "name")
	if err != nil || string(b.Content) != "x" || b.Name != "a/b" || b.URI != "https://h/c/a/b" {
		t.Errorf("blob round trip: %+v %v", b, err)
	}

	hr := NewHTTPRequest("req", HTTP{URL: "http://x/api/ingest", Method: "POST", Headers: map[string][]string{"A": {"1"}}, Body: "{}"}, sys)
	body, _ = json.Marshal(hr)
	req, _ = Decode(body)
	h, err := req.HTTPTrigger("req")
	if err != nil || h.Body != "{}" || h.Header("a") != "1" {
		t.Errorf("http round trip: %+v %v", h, err)
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{`"\"hello!!\""`, `"abc"`, `null`, `12`, `"\"\\\"x\\\"\""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = String(json.RawMessage(s))
		var v map[string]any
		_ = DecodeJSON(json.RawMessage(s), &v)
	})
}
