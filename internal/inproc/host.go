// Package inproc runs costsync's functions in one process on the same
// handler code the Functions host calls, with the host's payloads: an
// in-memory queue with visibility delays, dequeue counts and poison queues;
// a landing folder whose manifests trigger the blob-triggered function; and
// a clock that is real, or simulated for tests that need hours of Cost
// Management quota in seconds. The function definitions come from the
// app's own function.json files (package functions). The costsync command
// line runs ingestion and backfill on a laptop with it.
package inproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/costsync/costsync/functions"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/queue"
)

// The host.json values the in-process host applies (the package test
// checks them against host.json).
const (
	MaxDequeueCount     = 5
	VisibilityTimeout   = 30 * time.Second
	PoisonBlobThreshold = 5
	FunctionTimeout     = 10 * time.Minute
)

// blobPoisonQueue is where the host puts a blob that failed
// PoisonBlobThreshold times.
const blobPoisonQueue = "webjobs-blobtrigger-poison"

// Options configures a Host; nil means the defaults.
type Options struct {
	// Clock is a simulated clock; nil runs on real time.
	Clock *SimClock
	// Concurrency bounds invocations at once on real time (default 4); a
	// simulated clock runs one at a time, in time order.
	Concurrency int
	// OnInvocation, when set, is called after each invocation.
	OnInvocation func(Invocation)
}

// Invocation describes one finished invocation.
type Invocation struct {
	Function string
	Trigger  string // queue or container name, or "http"
	OK       bool
	Status   int
	Duration time.Duration
	Logs     []string
}

// Host dispatches messages and manifests to the handler's functions.
type Host struct {
	opts      Options
	functions map[string]*function
	byQueue   map[string]*function
	byBlob    map[string]*function // container → blob-triggered function
	handler   http.Handler

	mu       sync.Mutex
	msgs     []*message
	seq      int64
	inflight int
	wake     chan struct{}
	blobs    map[string][]byte // container/name → content (manifests)
}

// function is one function folder's bindings.
type function struct {
	name    string
	trigger binding
	outputs []binding
}

type binding struct {
	Type      string `json:"type"`
	Direction string `json:"direction"`
	Name      string `json:"name"`
	QueueName string `json:"queueName"`
	Path      string `json:"path"`
}

// message is a queue message, or a blob event (blob != "").
type message struct {
	id         int64
	queue      string
	text       string
	blob       string // container/name of a triggering blob
	visibleAt  time.Time
	dequeues   int64
	insertedAt time.Time
}

// New reads the function definitions and returns a host without a
// handler; call Serve with the handler built on the host's queue and
// landing.
func New(o *Options) (*Host, error) {
	h := &Host{functions: map[string]*function{}, byQueue: map[string]*function{}, byBlob: map[string]*function{},
		wake: make(chan struct{}, 1), blobs: map[string][]byte{}}
	if o != nil {
		h.opts = *o
	}
	if h.opts.Concurrency <= 0 {
		h.opts.Concurrency = 4
	}
	files, err := fs.Glob(functions.FS, "*/function.json")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		raw, err := fs.ReadFile(functions.FS, f)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Bindings []binding `json:"bindings"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		fn := &function{name: path.Dir(f)}
		for _, b := range doc.Bindings {
			switch {
			case strings.HasSuffix(strings.ToLower(b.Type), "trigger"):
				fn.trigger = b
			case strings.EqualFold(b.Direction, "out"):
				fn.outputs = append(fn.outputs, b)
			}
		}
		h.functions[fn.name] = fn
		switch strings.ToLower(fn.trigger.Type) {
		case "queuetrigger":
			h.byQueue[fn.trigger.QueueName] = fn
		case "blobtrigger":
			container, _, _ := strings.Cut(fn.trigger.Path, "/")
			h.byBlob[container] = fn
		}
	}
	return h, nil
}

// Serve sets the handler the functions run on.
func (h *Host) Serve(handler http.Handler) { h.handler = handler }

// Now is the host's clock: simulated or real.
func (h *Host) Now() time.Time {
	if h.opts.Clock != nil {
		return h.opts.Clock.Now()
	}
	return time.Now().UTC()
}

// Send enqueues v as JSON on q, invisible for delay (handlers.Queue).
func (h *Host) Send(ctx context.Context, q string, v any, delay time.Duration) error {
	if _, err := queue.Encode(v); err != nil { // the size limit of the real queue
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h.enqueue(&message{queue: q, text: string(b)}, min(max(delay, 0), queue.MaxDelay))
	return nil
}

func (h *Host) enqueue(m *message, delay time.Duration) {
	now := h.Now()
	h.mu.Lock()
	h.seq++
	m.id, m.insertedAt, m.visibleAt = h.seq, now, now.Add(delay)
	h.msgs = append(h.msgs, m)
	h.mu.Unlock()
	h.signal()
}

func (h *Host) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Pending counts the messages waiting for a function (those on queues no
// function reads, such as an unread poison queue, are not counted).
func (h *Host) Pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if h.target(m) != nil {
			n++
		}
	}
	return n + h.inflight
}

// Messages returns the texts of the messages on queue q (poison queues
// included), oldest first.
func (h *Host) Messages(q string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, m := range h.msgs {
		if m.queue == q {
			out = append(out, m.text)
		}
	}
	return out
}

func (h *Host) target(m *message) *function {
	if m.blob != "" {
		container, _, _ := strings.Cut(m.blob, "/")
		return h.byBlob[container]
	}
	return h.byQueue[m.queue]
}

// Run dispatches messages until none is left for any function (a drained
// pipeline), done returns true, or ctx ends. On a simulated clock it runs
// one invocation at a time and moves the clock to the next visible message
// whenever nothing is visible.
func (h *Host) Run(ctx context.Context, done func() bool) error {
	if h.handler == nil {
		return errors.New("inproc: no handler (call Serve)")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if done != nil && done() {
			return nil
		}
		now := h.Now()
		h.mu.Lock()
		var next *message
		var earliest time.Time
		waiting := 0
		full := h.inflight >= h.opts.Concurrency
		for i, m := range h.msgs {
			if h.target(m) == nil {
				continue
			}
			waiting++
			if !full && !m.visibleAt.After(now) {
				next = m
				h.msgs = slices.Delete(h.msgs, i, i+1)
				break
			}
			if earliest.IsZero() || m.visibleAt.Before(earliest) {
				earliest = m.visibleAt
			}
		}
		inflight := h.inflight
		if next != nil {
			h.inflight++
		}
		h.mu.Unlock()

		switch {
		case next != nil && h.opts.Clock != nil:
			h.invoke(ctx, next)
			continue
		case next != nil:
			wg.Add(1)
			go func() { defer wg.Done(); h.invoke(ctx, next) }()
			continue
		case waiting == 0 && inflight == 0:
			return nil // drained
		case h.opts.Clock != nil && inflight == 0:
			if err := h.opts.Clock.Set(ctx, earliest); err != nil {
				return err
			}
			continue
		}
		// Real time: wait until the next message is visible, an
		// invocation ends or a message arrives.
		var timer *time.Timer
		var fire <-chan time.Time
		if !earliest.IsZero() && !full {
			timer = time.NewTimer(time.Until(earliest))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-h.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// invoke runs one message's function and settles the message: deleted on
// success; on failure visible again after VisibilityTimeout, or moved to
// the poison queue after MaxDequeueCount (PoisonBlobThreshold for blobs).
func (h *Host) invoke(ctx context.Context, m *message) {
	defer func() {
		h.mu.Lock()
		h.inflight--
		h.mu.Unlock()
		h.signal()
	}()
	fn := h.target(m)
	m.dequeues++
	now := h.Now()
	sys := invocation.Sys{MethodName: fn.name, UtcNow: now.Format(time.RFC3339Nano), RandGuid: newGUID()}
	var req *invocation.Request
	trigger := m.queue
	if m.blob != "" {
		trigger = m.blob
		h.mu.Lock()
		content := h.blobs[m.blob]
		h.mu.Unlock()
		_, name, _ := strings.Cut(m.blob, "/")
		req = invocation.NewBlobRequest(fn.trigger.Name, invocation.BlobInfo{Content: content, URI: "inproc://" + m.blob,
			Tokens: map[string]string{"name": name}, ContentType: "application/json", ContentLength: int64(len(content)),
			LastModified: m.insertedAt, CreatedOn: m.insertedAt}, sys)
	} else {
		req = invocation.NewQueueRequest(fn.trigger.Name, invocation.QueueMessage{Text: m.text, DequeueCount: m.dequeues,
			ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", m.id), PopReceipt: "inproc", InsertionTime: m.insertedAt,
			ExpirationTime: m.insertedAt.Add(7 * 24 * time.Hour), NextVisibleTime: now.Add(10 * time.Minute)}, sys)
	}
	res, ok := h.call(ctx, fn, trigger, req)
	if ok {
		h.applyOutputs(fn, res)
		return
	}
	limit := int64(MaxDequeueCount)
	if m.blob != "" {
		limit = PoisonBlobThreshold
	}
	if m.dequeues < limit {
		h.mu.Lock()
		m.visibleAt = h.Now().Add(VisibilityTimeout)
		h.msgs = append(h.msgs, m)
		h.mu.Unlock()
		return
	}
	if m.blob != "" {
		container, name, _ := strings.Cut(m.blob, "/")
		b, _ := json.Marshal(map[string]string{"FunctionId": "Host.Functions." + fn.name, "BlobType": "BlockBlob",
			"ContainerName": container, "BlobName": name, "ETag": fmt.Sprintf(`"0x%X"`, m.id)})
		h.enqueue(&message{queue: blobPoisonQueue, text: string(b)}, 0)
		return
	}
	h.enqueue(&message{queue: m.queue + "-poison", text: m.text}, 0)
}

// call posts a payload to the handler as the host does and reports
// whether the invocation succeeded.
func (h *Host) call(ctx context.Context, fn *function, trigger string, req *invocation.Request) (*invocation.Response, bool) {
	start := time.Now()
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, FunctionTimeout)
	defer cancel()
	hr := httptest.NewRequestWithContext(ctx, http.MethodPost, "/"+fn.name, bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("X-Azure-Functions-InvocationId", newGUID())
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, hr)
	var resp invocation.Response
	ok := rec.Code/100 == 2 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && json.Unmarshal(rec.Body.Bytes(), &resp) == nil
	if h.opts.OnInvocation != nil {
		h.opts.OnInvocation(Invocation{Function: fn.name, Trigger: trigger, OK: ok, Status: rec.Code, Duration: time.Since(start), Logs: resp.Logs})
	}
	return &resp, ok
}

// applyOutputs enqueues the values of queue output bindings: an array is
// one message per element.
func (h *Host) applyOutputs(fn *function, res *invocation.Response) {
	for _, b := range fn.outputs {
		if !strings.EqualFold(b.Type, "queue") {
			continue
		}
		v, ok := res.Outputs[b.Name]
		if !ok || v == nil {
			continue
		}
		items := []any{v}
		if list, isList := v.([]any); isList {
			items = list
		}
		for _, it := range items {
			text, isText := it.(string)
			if !isText {
				raw, _ := json.Marshal(it)
				text = string(raw)
			}
			h.enqueue(&message{queue: b.QueueName, text: text}, 0)
		}
	}
}

// HTTP invokes an http-triggered function and returns its http output.
func (h *Host) HTTP(ctx context.Context, name string, req invocation.HTTP) (invocation.HTTPResponse, []byte, error) {
	fn := h.functions[name]
	if fn == nil || !strings.EqualFold(fn.trigger.Type, "httpTrigger") {
		return invocation.HTTPResponse{}, nil, fmt.Errorf("no http function %s", name)
	}
	sys := invocation.Sys{MethodName: name, UtcNow: h.Now().Format(time.RFC3339Nano), RandGuid: newGUID()}
	res, ok := h.call(ctx, fn, "http", invocation.NewHTTPRequest(fn.trigger.Name, req, sys))
	if !ok {
		return invocation.HTTPResponse{}, nil, fmt.Errorf("function %s failed: %s", name, strings.Join(res.Logs, "; "))
	}
	h.applyOutputs(fn, res)
	raw, _ := json.Marshal(res.Outputs["res"])
	var out struct {
		StatusCode int               `json:"statusCode"`
		Body       json.RawMessage   `json:"body"`
		Headers    map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return invocation.HTTPResponse{}, nil, fmt.Errorf("function %s: http output %s: %w", name, raw, err)
	}
	body := []byte(out.Body)
	var s string
	if json.Unmarshal(out.Body, &s) == nil {
		body = []byte(s)
	}
	return invocation.HTTPResponse{StatusCode: out.StatusCode, Headers: out.Headers}, body, nil
}

// putBlob stores a blob and, when a function is triggered by its
// container, queues the trigger.
func (h *Host) putBlob(container, name string, content []byte) {
	key := container + "/" + name
	h.mu.Lock()
	h.blobs[key] = content
	_, triggered := h.byBlob[container]
	h.mu.Unlock()
	if triggered {
		h.enqueue(&message{blob: key}, 0)
	}
}
