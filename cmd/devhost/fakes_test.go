package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeQueues is an in-memory queueStore with the service's visibility and
// dequeue-count behaviour.
type fakeQueues struct {
	mu      sync.Mutex
	now     func() time.Time
	queues  map[string][]*fakeMessage
	nextID  int
	created []string
}

type fakeMessage struct {
	queueMessage
	visibleAt time.Time
}

func newFakeQueues() *fakeQueues {
	return &fakeQueues{now: time.Now, queues: map[string][]*fakeMessage{}}
}

func (f *fakeQueues) CreateQueue(_ context.Context, q string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.queues[q]; !ok {
		f.queues[q] = nil
	}
	f.created = append(f.created, q)
	return nil
}

func (f *fakeQueues) Dequeue(_ context.Context, q string, n int, vis time.Duration) ([]queueMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	var out []queueMessage
	for _, m := range f.queues[q] {
		if len(out) == n {
			break
		}
		if m.visibleAt.After(now) {
			continue
		}
		m.DequeueCount++
		m.visibleAt = now.Add(vis)
		m.NextVisibleTime = m.visibleAt
		f.nextID++
		m.PopReceipt = fmt.Sprintf("pop-%d", f.nextID)
		out = append(out, m.queueMessage)
	}
	return out, nil
}

func (f *fakeQueues) find(q, id, pop string) (int, error) {
	for i, m := range f.queues[q] {
		if m.ID == id {
			if m.PopReceipt != pop {
				return 0, errors.New("PopReceiptMismatch")
			}
			return i, nil
		}
	}
	return 0, errors.New("MessageNotFound")
}

func (f *fakeQueues) Delete(_ context.Context, q, id, pop string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.find(q, id, pop)
	if err != nil {
		return err
	}
	f.queues[q] = append(f.queues[q][:i], f.queues[q][i+1:]...)
	return nil
}

func (f *fakeQueues) SetVisibility(_ context.Context, q, id, pop, text string, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.find(q, id, pop)
	if err != nil {
		return err
	}
	m := f.queues[q][i]
	m.Text = text
	m.visibleAt = f.now().Add(d)
	f.nextID++
	m.PopReceipt = fmt.Sprintf("pop-%d", f.nextID)
	return nil
}

func (f *fakeQueues) Enqueue(_ context.Context, q, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.queues[q]; !ok {
		return fmt.Errorf("QueueNotFound: %s", q)
	}
	f.nextID++
	now := f.now().UTC().Truncate(time.Second)
	f.queues[q] = append(f.queues[q], &fakeMessage{queueMessage: queueMessage{
		ID: fmt.Sprintf("msg-%d", f.nextID), Text: text,
		InsertionTime: now, ExpirationTime: now.Add(7 * 24 * time.Hour),
	}})
	return nil
}

func (f *fakeQueues) Counts(_ context.Context, q string) (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vis := 0
	for _, m := range f.queues[q] {
		if !m.visibleAt.After(f.now()) {
			vis++
		}
	}
	return min(vis, 32), len(f.queues[q]), nil
}

// texts returns the stored texts of a queue.
func (f *fakeQueues) texts(q string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.queues[q] {
		out = append(out, m.Text)
	}
	return out
}

// fakeBlobs is an in-memory blobStore.
type fakeBlobs struct {
	mu       sync.Mutex
	blobs    map[string]*fakeBlob // container/name
	etag     int
	listErr  error
	uploaded []string
}

type fakeBlob struct {
	item blobItem
	data []byte
}

func newFakeBlobs() *fakeBlobs { return &fakeBlobs{blobs: map[string]*fakeBlob{}} }

func (f *fakeBlobs) CreateContainer(context.Context, string) error { return nil }

func (f *fakeBlobs) put(cont, name, contentType string, data []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.etag++
	t := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	it := blobItem{Name: name, ETag: fmt.Sprintf(`"0x8DD%06d"`, f.etag), ContentType: contentType, ContentLength: int64(len(data)),
		LastModified: t, CreatedOn: t, Metadata: map[string]string{}}
	f.blobs[cont+"/"+name] = &fakeBlob{item: it, data: data}
	return it.ETag
}

func (f *fakeBlobs) List(_ context.Context, cont, prefix string) ([]blobItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []blobItem
	for k, b := range f.blobs {
		if strings.HasPrefix(k, cont+"/"+prefix) {
			out = append(out, b.item)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeBlobs) Download(_ context.Context, cont, name, etag string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blobs[cont+"/"+name]
	if !ok || b.item.ETag != etag {
		return nil, errBlobChanged
	}
	return b.data, nil
}

func (f *fakeBlobs) Exists(_ context.Context, cont, name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.blobs[cont+"/"+name]
	return ok, nil
}

func (f *fakeBlobs) Upload(_ context.Context, cont, name string, data []byte) error {
	f.mu.Lock()
	f.uploaded = append(f.uploaded, cont+"/"+name)
	f.mu.Unlock()
	f.put(cont, name, "application/octet-stream", data)
	return nil
}

func (f *fakeBlobs) URL(cont, name string) string {
	return "https://devstoreaccount1.blob.core.windows.net/" + cont + "/" + name
}

// captured is one request the fake handler received.
type captured struct {
	path    string
	header  http.Header
	body    []byte
	payload map[string]map[string]json.RawMessage
}

// fakeHandler is a custom handler in the test process: it records every
// request and answers with respond.
type fakeHandler struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	reqs     []captured
	respond  func(c captured, w http.ResponseWriter)
	restarts []string
}

func newFakeHandler(t *testing.T, respond func(c captured, w http.ResponseWriter)) *fakeHandler {
	f := &fakeHandler{t: t, respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c := captured{path: r.URL.Path, header: r.Header.Clone(), body: body}
		_ = json.Unmarshal(body, &c.payload)
		f.mu.Lock()
		f.reqs = append(f.reqs, c)
		f.mu.Unlock()
		f.respond(c, w)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHandler) baseURL(context.Context) (string, error) { return f.srv.URL, nil }

func (f *fakeHandler) restart(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarts = append(f.restarts, reason)
}

func (f *fakeHandler) requests() []captured {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]captured(nil), f.reqs...)
}

// answer writes a JSON handler response.
func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// okEmpty is the minimal successful response.
func okEmpty(_ captured, w http.ResponseWriter) {
	answer(w, 200, `{"Outputs":{},"Logs":[],"ReturnValue":null}`)
}

// testApp writes an app folder: host.json and one folder per function
// (name → function.json), and loads it.
func testApp(t *testing.T, hostJSON string, functions map[string]string, environ ...string) *app {
	t.Helper()
	dir := t.TempDir()
	writeApp(t, dir, hostJSON, functions)
	s, _, err := loadSettings(dir, environ)
	if err != nil {
		t.Fatal(err)
	}
	a, err := loadApp(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testHost wires an app to a fake handler and fake storage for every
// connection name.
type testHost struct {
	*host
	handler *fakeHandler
	queues  *fakeQueues
	blobs   *fakeBlobs
	logs    *syncBuffer
}

func newTestHost(t *testing.T, a *app, respond func(c captured, w http.ResponseWriter)) *testHost {
	t.Helper()
	fh := newFakeHandler(t, respond)
	qs, bs := newFakeQueues(), newFakeBlobs()
	accts := newAccounts(a.settings, nil)
	accts.open = func(conn string) (*account, error) {
		return &account{name: conn, blobs: bs, queues: qs}, nil
	}
	logs := &syncBuffer{}
	h := newHost(a, slog.New(slog.NewJSONHandler(logs, nil)), fh, accts)
	return &testHost{host: h, handler: fh, queues: qs, blobs: bs, logs: logs}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (h *testHost) logText() string {
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	return h.logs.buf.String()
}

// function returns the app's function by name.
func (a *app) function(name string) *function {
	for _, f := range a.functions {
		if f.name == name {
			return f
		}
	}
	return nil
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
