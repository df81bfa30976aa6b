package inproc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/costsync/costsync/shared/invocation"
)

// The constants the in-process host applies are host.json's.
func TestHostJSON(t *testing.T) {
	raw, err := os.ReadFile("../../host.json")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		FunctionTimeout string `json:"functionTimeout"`
		Extensions      struct {
			Queues struct {
				MaxDequeueCount   int    `json:"maxDequeueCount"`
				VisibilityTimeout string `json:"visibilityTimeout"`
			} `json:"queues"`
			Blobs struct {
				PoisonBlobThreshold int `json:"poisonBlobThreshold"`
			} `json:"blobs"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	span := func(s string) time.Duration {
		var hh, mm, ss int
		if _, err := fmt.Sscanf(s, "%d:%d:%d", &hh, &mm, &ss); err != nil {
			t.Fatalf("TimeSpan %q: %v", s, err)
		}
		return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second
	}
	if h.Extensions.Queues.MaxDequeueCount != MaxDequeueCount || span(h.Extensions.Queues.VisibilityTimeout) != VisibilityTimeout ||
		h.Extensions.Blobs.PoisonBlobThreshold != PoisonBlobThreshold || span(h.FunctionTimeout) != FunctionTimeout {
		t.Errorf("host.json %+v differs from the in-process host's constants", h)
	}
}

// stub is a handler that records invocations and fails the functions
// named in fail.
type stub struct {
	mu    sync.Mutex
	calls []string
	reqs  map[string][]*invocation.Request
	fail  map[string]bool
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	b, _ := io.ReadAll(r.Body)
	req, _ := invocation.Decode(b)
	s.mu.Lock()
	s.calls = append(s.calls, name)
	s.reqs[name] = append(s.reqs[name], req)
	fail := s.fail[name]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if fail {
		w.WriteHeader(500)
	}
	w.Write([]byte(`{"Outputs":{},"Logs":[],"ReturnValue":null}`))
}

// A message that fails on every delivery is retried MaxDequeueCount times,
// VisibilityTimeout apart, then moved to the poison queue, whose function
// gets it; a manifest that fails PoisonBlobThreshold times becomes a
// webjobs-blobtrigger-poison message.
func TestPoisonPaths(t *testing.T) {
	clock := NewSimClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h, err := New(&Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	s := &stub{reqs: map[string][]*invocation.Request{}, fail: map[string]bool{"ProcessWindow": true, "IngestManifest": true}}
	h.Serve(s)
	ctx := context.Background()
	if err := h.Send(ctx, "cost-windows", map[string]string{"hello": "window"}, 0); err != nil {
		t.Fatal(err)
	}
	l := h.Landing(t.TempDir())
	l.host.putBlob("cost-manifests", "a/b/manifest.json", []byte(`{"x":1}`))
	if err := h.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	count := func(name string) int {
		n := 0
		for _, c := range s.calls {
			if c == name {
				n++
			}
		}
		return n
	}
	if count("ProcessWindow") != MaxDequeueCount || count("RecordPoison") != 1 || count("IngestManifest") != PoisonBlobThreshold || count("RecordBlobPoison") != 1 {
		t.Fatalf("calls %v", s.calls)
	}
	if got := clock.Now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); got != (MaxDequeueCount-1)*VisibilityTimeout {
		t.Errorf("retries took %s, want %d visibility timeouts", got, MaxDequeueCount-1)
	}
	q, _ := s.reqs["RecordPoison"][0].QueueTrigger("msg")
	if q.Message != `{"hello":"window"}` || q.DequeueCount != 1 {
		t.Errorf("poison message %+v", q)
	}
	last, _ := s.reqs["ProcessWindow"][MaxDequeueCount-1].QueueTrigger("msg")
	if last.DequeueCount != MaxDequeueCount {
		t.Errorf("last delivery had DequeueCount %d", last.DequeueCount)
	}
	b, _ := s.reqs["RecordBlobPoison"][0].QueueTrigger("msg")
	if !strings.Contains(b.Message, `"BlobName":"a/b/manifest.json"`) || !strings.Contains(b.Message, `"ContainerName":"cost-manifests"`) {
		t.Errorf("blob poison message %s", b.Message)
	}
	blob, _ := s.reqs["IngestManifest"][0].BlobTrigger("manifest", "name")
	if !bytes.Equal(blob.Content, []byte(`{"x":1}`)) || blob.Name != "a/b/manifest.json" {
		t.Errorf("blob trigger payload %+v", blob)
	}
}

// Every queue a function reads or writes is known to the host, and every
// trigger of the app is one the host can run.
func TestBindings(t *testing.T) {
	h, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, fn := range h.functions {
		switch strings.ToLower(fn.trigger.Type) {
		case "queuetrigger", "blobtrigger", "httptrigger", "timertrigger":
		default:
			t.Errorf("%s: trigger %q", name, fn.trigger.Type)
		}
	}
	for _, q := range []string{"cost-windows", "cost-windows-poison", "webjobs-blobtrigger-poison"} {
		if h.byQueue[q] == nil {
			t.Errorf("no function reads %s", q)
		}
	}
	if h.byBlob["cost-manifests"] == nil {
		t.Error("no function is triggered by cost-manifests")
	}
}
