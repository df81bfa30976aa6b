//go:build unix

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"github.com/costsync/costsync/internal/localstack"
)

// TestIntegrationAzurite runs devhost in-process against Azurite (HTTPS,
// --oauth basic) with tokens from costsim's managed-identity endpoint, and
// the echo handler as a real process. It checks the exact payloads of a
// queue and a blob trigger, the poison paths of both, and that blob receipts
// survive a devhost restart. The stack comes from internal/localstack: a
// missing prerequisite skips the test, or fails it when CI is set.
func TestIntegrationAzurite(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Azurite and costsim")
	}
	exe := buildEchoHandler(t)
	s := localstack.StartT(t, localstack.Options{Components: localstack.Components{Storage: true, Costsim: true}})
	cred, err := s.Credential() // also puts IDENTITY_ENDPOINT/HEADER in this process, for devhost's azidentity
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	opts := azcore.ClientOptions{Transport: s.Transport()}
	qsvc, err := azqueue.NewServiceClient(s.QueueURL+"/", cred, &azqueue.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	bsvc, err := azblob.NewClient(s.BlobURL+"/", cred, &azblob.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}

	app := t.TempDir()
	echoLog := filepath.Join(t.TempDir(), "echo.jsonl")
	writeApp(t, app, `{"version":"2.0",
	  "customHandler":{"description":{"defaultExecutablePath":"handler"}},
	  "extensions":{"queues":{"maxDequeueCount":2,"maxPollingInterval":"00:00:00.200","visibilityTimeout":"00:00:00"},
	                "blobs":{"poisonBlobThreshold":2}}}`, map[string]string{
		"WindowQueue":  `{"bindings":[{"name":"msg","type":"queueTrigger","direction":"in","queueName":"devhost-it-in","connection":"AzureWebJobsStorage"}]}`,
		"FailQueue":    `{"bindings":[{"name":"msg","type":"queueTrigger","direction":"in","queueName":"devhost-it-fail"}]}`,
		"ManifestBlob": `{"bindings":[{"name":"manifest","type":"blobTrigger","direction":"in","path":"devhost-it-manifests/{name}","dataType":"binary"}]}`,
		"FailBlob":     `{"bindings":[{"name":"b","type":"blobTrigger","direction":"in","path":"devhost-it-poisonblobs/{stem}.json"}]}`,
	})
	environ := append(append(os.Environ(), s.Env...), "ECHO_LOG="+echoLog)
	cfg := runConfig{appDir: app, port: 0, listen: "127.0.0.1", handler: exe, environ: environ, transport: s.Transport()}

	// Create what the test writes to before devhost does.
	for _, q := range []string{"devhost-it-in", "devhost-it-fail"} {
		if _, err := qsvc.CreateQueue(ctx, q, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"devhost-it-manifests", "devhost-it-poisonblobs"} {
		if _, err := bsvc.CreateContainer(ctx, c, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			t.Fatal(err)
		}
	}

	d := startDevhost(t, cfg)

	good := base64.StdEncoding.EncodeToString([]byte("hello devhost"))
	enq, err := qsvc.NewQueueClient("devhost-it-in").EnqueueMessage(ctx, good, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgID := *enq.Messages[0].MessageID
	bad := base64.StdEncoding.EncodeToString([]byte(`{"window":"w-fails"}`))
	if _, err := qsvc.NewQueueClient("devhost-it-fail").EnqueueMessage(ctx, bad, nil); err != nil {
		t.Fatal(err)
	}
	manifest := []byte(`{"runId":"r1","parts":["part_1.csv"]}`)
	if _, err := bsvc.UploadBuffer(ctx, "devhost-it-manifests", "sub1/2026-11/manifest.json", manifest, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := bsvc.UploadBuffer(ctx, "devhost-it-poisonblobs", "broken.json", []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}

	d.waitStats(t, "the pipeline to go idle", 90*time.Second, func(st statsBody) bool {
		f := st.Functions
		return f["WindowQueue"].Succeeded == 1 && f["FailQueue"].Poisoned == 1 && f["ManifestBlob"].Succeeded == 1 &&
			f["FailBlob"].Poisoned == 1 && f["WindowQueue"].InFlight+f["FailQueue"].InFlight+f["ManifestBlob"].InFlight+f["FailBlob"].InFlight == 0
	})
	st := statsBody{}
	d.get(t, "/admin/devhost/stats", &st)
	if q := st.Queues["devhost-it-fail-poison"]; q.Visible != 1 || q.Error != "" {
		t.Errorf("stats of the poison queue = %+v", q)
	}

	byPath := map[string][]map[string]map[string]json.RawMessage{}
	for _, r := range readEchoLog(t, echoLog) {
		var p map[string]map[string]json.RawMessage
		if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
			t.Fatalf("payload %s: %v", r.Body, err)
		}
		byPath[r.Path] = append(byPath[r.Path], p)
		if r.Headers["X-Azure-Functions-Hostversion"][0] != hostVersion || !uuidRe.MatchString(r.Headers["X-Azure-Functions-Invocationid"][0]) {
			t.Errorf("headers %v", r.Headers)
		}
	}

	// The queue payload, exactly as the host sends it (functions-host.md §1.3).
	if n := len(byPath["/WindowQueue"]); n != 1 {
		t.Fatalf("%d WindowQueue invocations, want 1", n)
	}
	q := byPath["/WindowQueue"][0]
	offset := regexp.MustCompile(`^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"$`)
	for k, want := range map[string]string{"DequeueCount": `"1"`, "Id": `"\"` + msgID + `\""`} {
		if got := string(q["Metadata"][k]); got != want {
			t.Errorf("Metadata.%s = %s, want %s", k, got, want)
		}
	}
	if got := string(q["Data"]["msg"]); got != `"\"hello devhost\""` {
		t.Errorf("Data.msg = %s, want the decoded text, double-encoded", got)
	}
	if !regexp.MustCompile(`^"\\".+\\""$`).Match(q["Metadata"]["PopReceipt"]) {
		t.Errorf("PopReceipt = %s, want embedded quotes", q["Metadata"]["PopReceipt"])
	}
	for _, k := range []string{"InsertionTime", "ExpirationTime", "NextVisibleTime"} {
		if !offset.Match(q["Metadata"][k]) {
			t.Errorf("Metadata.%s = %s", k, q["Metadata"][k])
		}
	}
	if _, ok := q["Metadata"]["QueueTrigger"]; ok {
		t.Error("QueueTrigger must not be in Metadata")
	}

	// The failing message: tried maxDequeueCount times, then poisoned with its text unchanged.
	var counts []string
	for _, p := range byPath["/FailQueue"] {
		counts = append(counts, string(p["Metadata"]["DequeueCount"]))
	}
	if strings.Join(counts, ",") != `"1","2"` {
		t.Errorf("FailQueue DequeueCounts = %v, want \"1\",\"2\"", counts)
	}
	peek, err := qsvc.NewQueueClient("devhost-it-fail-poison").PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: to.Ptr(int32(32))})
	if err != nil {
		t.Fatal(err)
	}
	if len(peek.Messages) != 1 || *peek.Messages[0].MessageText != bad {
		t.Errorf("poison queue holds %d messages, want the original text", len(peek.Messages))
	}
	if props, err := qsvc.NewQueueClient("devhost-it-fail").GetProperties(ctx, nil); err != nil || *props.ApproximateMessagesCount != 0 {
		t.Errorf("the source queue must be empty: %v", err)
	}

	// The blob payload (§1.5).
	if n := len(byPath["/ManifestBlob"]); n != 1 {
		t.Fatalf("%d ManifestBlob invocations, want 1", n)
	}
	b := byPath["/ManifestBlob"][0]
	if got := string(b["Data"]["manifest"]); got != `"`+base64.StdEncoding.EncodeToString(manifest)+`"` {
		t.Errorf("Data.manifest = %s", got)
	}
	if got := string(b["Metadata"]["name"]); got != `"\"sub1/2026-11/manifest.json\""` {
		t.Errorf("Metadata.name = %s", got)
	}
	if got, want := string(b["Metadata"]["Uri"]), `"\"`+s.BlobURL+`/devhost-it-manifests/sub1/2026-11/manifest.json\""`; got != want {
		t.Errorf("Metadata.Uri = %s, want %s", got, want)
	}
	var props map[string]any
	_ = json.Unmarshal(b["Metadata"]["Properties"], &props)
	if props["ContentLength"] != float64(len(manifest)) {
		t.Errorf("Properties = %s", b["Metadata"]["Properties"])
	}

	// The failing blob: poisonBlobThreshold tries, then a poison message.
	if n := len(byPath["/FailBlob"]); n != 2 {
		t.Errorf("%d FailBlob invocations, want poisonBlobThreshold = 2", n)
	}
	if stem := string(byPath["/FailBlob"][0]["Metadata"]["stem"]); stem != `"\"broken\""` {
		t.Errorf("Metadata.stem = %s", stem)
	}
	pm, err := qsvc.NewQueueClient(blobPoisonQueue).PeekMessages(ctx, nil)
	if err != nil || len(pm.Messages) != 1 {
		t.Fatalf("blob poison queue: %v, %d messages", err, len(pm.Messages))
	}
	raw, _ := base64.StdEncoding.DecodeString(*pm.Messages[0].MessageText)
	var poison map[string]string
	if err := json.Unmarshal(raw, &poison); err != nil || poison["FunctionId"] != "Host.Functions.FailBlob" || poison["BlobName"] != "broken.json" ||
		poison["ContainerName"] != "devhost-it-poisonblobs" || poison["BlobType"] != "BlockBlob" || poison["ETag"] == "" {
		t.Errorf("blob poison message %s (%v)", raw, err)
	}

	// Receipts are in the storage account: a restarted devhost does not trigger again.
	pager := bsvc.NewListBlobsFlatPager(receiptContainer, &azblob.ListBlobsFlatOptions{Prefix: to.Ptr("blobreceipts/devhost/")})
	receipts := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		receipts += len(page.Segment.BlobItems)
	}
	if receipts != 2 {
		t.Errorf("%d receipts, want 2 (one success, one poisoned)", receipts)
	}
	d.stop(t)
	before := len(readEchoLog(t, echoLog))
	d2 := startDevhost(t, cfg)
	time.Sleep(3 * time.Second) // three scans
	d2.stop(t)
	if after := len(readEchoLog(t, echoLog)); after != before {
		t.Errorf("%d invocations after a restart, want none: receipts must prevent them", after-before)
	}
	if t.Failed() {
		t.Logf("devhost output:\n%s", d.output())
	}
}
