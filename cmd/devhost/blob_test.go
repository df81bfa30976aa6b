package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/costsync/costsync/shared/invocation"
)

func TestBlobPattern(t *testing.T) {
	for _, tc := range []struct {
		path, blob string
		want       map[string]string // nil: no match
		prefix     string
	}{
		{"cost-manifests/{name}", "scope/2026-11/manifest.json", map[string]string{"name": "scope/2026-11/manifest.json"}, ""},
		{"c/{name}.json", "a/b.json", map[string]string{"name": "a/b"}, ""},
		{"c/{name}.json", "a/b.csv", nil, ""},
		{"c/in/{name}", "in/x", map[string]string{"name": "x"}, "in/"},
		{"c/in/{name}", "out/x", nil, "in/"},
		{"input/{blobname}.{blobextension}", "a.b.json", map[string]string{"blobname": "a.b", "blobextension": "json"}, ""},
		{"c", "anything/at/all", map[string]string{}, ""},
		{"c/exact.json", "exact.json", map[string]string{}, "exact.json"},
		{"c/exact.json", "exact.jsonx", nil, "exact.json"},
	} {
		p, err := parseBlobPath(tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if p.prefix != tc.prefix {
			t.Errorf("%s: prefix %q, want %q", tc.path, p.prefix, tc.prefix)
		}
		got, ok := p.match(tc.blob)
		if ok != (tc.want != nil) {
			t.Errorf("%s ~ %s: match %v", tc.path, tc.blob, ok)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s ~ %s: %s = %q, want %q", tc.path, tc.blob, k, got[k], v)
			}
		}
	}
}

const manifestFunction = `{"bindings":[{"name":"manifest","type":"blobTrigger","direction":"in","path":"cost-manifests/{name}","dataType":"binary"}]}`

func TestBlobTriggerPayloadAndReceipt(t *testing.T) {
	a := testApp(t, `{}`, map[string]string{"IngestManifest": manifestFunction})
	th := newTestHost(t, a, okEmpty)
	fn := a.function("IngestManifest")
	content := []byte(`{"parts":["p1.csv"]}`)
	etag := th.blobs.put("cost-manifests", "sub1/2026-11/manifest.json", "application/json", content)
	l := newBlobListener(th.host, fn, th.blobs, th.queues, th.blobs)
	sem := make(chan struct{}, 1)
	l.scan(t.Context(), t.Context(), sem)
	eventually(t, "one invocation", func() bool { return th.stats.snapshot()["IngestManifest"].Succeeded == 1 })

	c := th.handler.requests()[0]
	if got := string(c.payload["Data"]["manifest"]); got != `"`+base64.StdEncoding.EncodeToString(content)+`"` {
		t.Errorf("Data.manifest = %s, want base64 content", got)
	}
	if got := string(c.payload["Metadata"]["name"]); got != `"\"sub1/2026-11/manifest.json\""` {
		t.Errorf("Metadata.name = %s, want double-encoded", got)
	}
	if got := string(c.payload["Metadata"]["Uri"]); got != `"\"https://devstoreaccount1.blob.core.windows.net/cost-manifests/sub1/2026-11/manifest.json\""` {
		t.Errorf("Metadata.Uri = %s", got)
	}
	if _, ok := c.payload["Metadata"]["BlobTrigger"]; ok {
		t.Error("BlobTrigger must not be in Metadata")
	}
	var props map[string]any
	_ = json.Unmarshal(c.payload["Metadata"]["Properties"], &props)
	if props["ContentType"] != "application/json" || props["ContentLength"] != float64(len(content)) || props["LastModified"] != "2026-11-22T10:00:00+00:00" {
		t.Errorf("Properties = %v", props)
	}
	req, _ := invocation.Decode(c.body)
	if b, err := req.BlobTrigger("manifest", "name"); err != nil || string(b.Content) != string(content) {
		t.Errorf("decoded %+v, %v", b, err)
	}

	receipt := "azure-webjobs-hosts/blobreceipts/devhost/IngestManifest/cost-manifests/sub1/2026-11/manifest.json/" + strings.Trim(etag, `"`)
	eventually(t, "the receipt", func() bool {
		ok, _ := th.blobs.Exists(t.Context(), "azure-webjobs-hosts", strings.TrimPrefix(receipt, "azure-webjobs-hosts/"))
		return ok
	})
	// The same listener, and a new one (a devhost restart), do not trigger again.
	l.scan(t.Context(), t.Context(), sem)
	l2 := newBlobListener(th.host, fn, th.blobs, th.queues, th.blobs)
	l2.scan(t.Context(), t.Context(), sem)
	if n := len(th.handler.requests()); n != 1 {
		t.Errorf("%d invocations after rescans, want 1", n)
	}
	// A new version (new ETag) triggers again.
	th.blobs.put("cost-manifests", "sub1/2026-11/manifest.json", "application/json", []byte(`{}`))
	l2.scan(t.Context(), t.Context(), sem)
	eventually(t, "the new version", func() bool { return len(th.handler.requests()) == 2 })
}

func TestBlobPoisonAfterThreshold(t *testing.T) {
	a := testApp(t, `{"extensions":{"blobs":{"poisonBlobThreshold":3}}}`, map[string]string{"IngestManifest": manifestFunction})
	th := newTestHost(t, a, func(c captured, w http.ResponseWriter) { answer(w, 500, `{}`) })
	fn := a.function("IngestManifest")
	etag := th.blobs.put("cost-manifests", "m.json", "application/json", []byte(`{}`))
	l := newBlobListener(th.host, fn, th.blobs, th.queues, th.blobs)
	_ = th.queues.CreateQueue(t.Context(), blobPoisonQueue)
	sem := make(chan struct{}, 1)
	for i := 1; i <= 5; i++ {
		l.scan(t.Context(), t.Context(), sem)
		eventually(t, "the scan's invocation to finish", func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return len(l.running) == 0
		})
	}
	if n := len(th.handler.requests()); n != 3 {
		t.Errorf("%d invocations, want poisonBlobThreshold = 3", n)
	}
	msgs := th.queues.texts(blobPoisonQueue)
	if len(msgs) != 1 {
		t.Fatalf("poison queue = %q", msgs)
	}
	raw, _ := base64.StdEncoding.DecodeString(msgs[0])
	var got map[string]string
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"FunctionId": "Host.Functions.IngestManifest", "BlobType": "BlockBlob", "ContainerName": "cost-manifests", "BlobName": "m.json", "ETag": etag}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("poison %s = %q, want %q", k, got[k], v)
		}
	}
	if st := th.stats.snapshot()["IngestManifest"]; st.Poisoned != 1 || st.Failed != 3 {
		t.Errorf("stats = %+v", st)
	}
}
