package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const queueFunctionJSON = `{"bindings":[{"name":"msg","type":"queueTrigger","direction":"in","queueName":"%WINDOW_QUEUE%","connection":"AzureWebJobsStorage"}]}`

func TestLoadAppSettingsAndDefaults(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("host.json", `{"version":"2.0","functionTimeout":"00:10:00",
	  "customHandler":{"description":{"defaultExecutablePath":"handler","arguments":["--x","%ARG%","%UNSET%"]}},
	  "extensions":{"queues":{"batchSize":4,"visibilityTimeout":"00:00:30"},"http":{"routePrefix":""}}}`)
	write("local.settings.json", `{"IsEncrypted":false,"Values":{"WINDOW_QUEUE":"from-file","ARG":"a1","SCHEDULE":"0 */5 * * * *","OnlyInFile":"yes","Num":3}}`)
	write("functions/ProcessWindow/function.json", queueFunctionJSON)
	write("PlanWindows/function.json", `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"%SCHEDULE%","runOnStartup":true}]}`)
	write("Off/function.json", `{"disabled":true,"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"bad"}]}`)
	write("OffBySetting/function.json", `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 * * * * *"}]}`)

	s, added, err := loadSettings(dir, []string{"WINDOW_QUEUE=cost-windows", "AzureWebJobs.OffBySetting.Disabled=true",
		"AzureFunctionsJobHost__extensions__queues__maxDequeueCount=3"})
	if err != nil {
		t.Fatal(err)
	}
	if s["WINDOW_QUEUE"] != "cost-windows" {
		t.Errorf("the environment must win over local.settings.json: WINDOW_QUEUE = %q", s["WINDOW_QUEUE"])
	}
	if s["Num"] != "3" || strings.Join(added, ",") != "ARG,Num,OnlyInFile,SCHEDULE" {
		t.Errorf("added = %v, Num = %q", added, s["Num"])
	}
	a, err := loadApp(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range a.functions {
		names = append(names, f.name)
	}
	if got := strings.Join(names, ","); got != "PlanWindows,ProcessWindow" {
		t.Errorf("functions = %s, want PlanWindows,ProcessWindow", got)
	}
	if q := a.function("ProcessWindow").trigger.QueueName; q != "cost-windows" {
		t.Errorf("queueName = %q, want %%WINDOW_QUEUE%% expanded", q)
	}
	if sc := a.function("PlanWindows").trigger.Schedule; sc != "0 */5 * * * *" {
		t.Errorf("schedule = %q", sc)
	}
	h := a.host
	if h.functionTimeout != 10*time.Minute || h.handlerPath != "handler" || strings.Join(h.handlerArgs, " ") != "--x a1 %UNSET%" || h.routePrefix != "" {
		t.Errorf("host = %+v", h)
	}
	q := h.queues
	want := queueOptions{batchSize: 4, newBatchThreshold: 2, maxDequeueCount: 3, visibilityTimeout: 30 * time.Second, maxPollingInterval: 2 * time.Second, base64: true}
	if q != want {
		t.Errorf("queues = %+v, want %+v", q, want)
	}
	if h.blobs != (blobOptions{poisonBlobThreshold: 5, maxDegreeOfParallelism: 8}) {
		t.Errorf("blobs = %+v", h.blobs)
	}
}

func TestLoadAppErrors(t *testing.T) {
	for _, tc := range []struct {
		name, host, fn, want string
	}{
		{"missing setting", `{}`, queueFunctionJSON, "%WINDOW_QUEUE% does not resolve"},
		{"bad schedule", `{}`, `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"* *"}]}`, "six fields"},
		{"no trigger", `{}`, `{"bindings":[{"name":"o","type":"queue","direction":"out","queueName":"q"}]}`, "no trigger"},
		{"unsupported trigger", `{}`, `{"bindings":[{"name":"e","type":"eventHubTrigger","direction":"in"}]}`, "not supported"},
		{"blob path", `{}`, `{"bindings":[{"name":"b","type":"blobTrigger","direction":"in","path":"{c}/x"}]}`, "literal container"},
		{"bad encoding", `{"extensions":{"queues":{"messageEncoding":"utf8"}}}`, `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 * * * * *"}]}`, "messageEncoding"},
		{"bad timeout", `{"functionTimeout":"5 minutes"}`, `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 * * * * *"}]}`, "functionTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_ = os.WriteFile(filepath.Join(dir, "host.json"), []byte(tc.host), 0o644)
			_ = os.MkdirAll(filepath.Join(dir, "F"), 0o755)
			_ = os.WriteFile(filepath.Join(dir, "F", "function.json"), []byte(tc.fn), 0o644)
			_, err := loadApp(dir, settings{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseTimeSpan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"00:00:02":       2 * time.Second,
		"00:05:00":       5 * time.Minute,
		"1.02:00:00":     26 * time.Hour,
		"00:00:00.100":   100 * time.Millisecond,
		"00:00:00.25":    250 * time.Millisecond,
		"10:30":          10*time.Hour + 30*time.Minute,
		"00:00:01.00001": time.Second + 10*time.Microsecond,
	} {
		got, err := parseTimeSpan(in)
		if err != nil || got != want {
			t.Errorf("parseTimeSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseTimeSpan("5m"); err == nil {
		t.Error("5m must be refused")
	}
}

func TestConnectionResolution(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings settings
		conn     string
		wantErr  string
		blob     bool
		queue    bool
	}{
		{"identity", settings{"AzureWebJobsStorage__blobServiceUri": "https://a.blob.core.windows.net", "AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.windows.net", "IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token", "IDENTITY_HEADER": "x"}, "AzureWebJobsStorage", "", true, true},
		{"account name", settings{"AzureWebJobsStorage__accountName": "acct"}, "AzureWebJobsStorage", "", true, true},
		{"queue only", settings{"Reports__queueServiceUri": "https://a.queue.core.windows.net", "Reports__credential": "managedidentity"}, "Reports", "", false, true},
		{"connection string", settings{"AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"}, "AzureWebJobsStorage", "", true, true},
		{"AzureWebJobs prefix", settings{"AzureWebJobsReports": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net"}, "Reports", "", true, true},
		{"development storage", settings{"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, "AzureWebJobsStorage", "UseDevelopmentStorage=true is not supported", false, false},
		{"missing", settings{}, "AzureWebJobsStorage", "set AzureWebJobsStorage__blobServiceUri", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc, err := newAccounts(tc.settings, nil).get(tc.conn)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (acc.blobs != nil) != tc.blob || (acc.queues != nil) != tc.queue {
				t.Errorf("blob %v queue %v, want %v %v", acc.blobs != nil, acc.queues != nil, tc.blob, tc.queue)
			}
		})
	}
}
