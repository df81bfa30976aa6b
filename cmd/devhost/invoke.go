package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/costsync/costsync/shared/invocation"
)

// hostVersion is the runtime version devhost presents (the one of the
// captured payloads in functions-host.md).
const hostVersion = "4.1036.1.23224"

// handlerEndpoint is the running custom handler, as invocations see it.
type handlerEndpoint interface {
	baseURL(ctx context.Context) (string, error)
	restart(reason string)
}

// host is the state shared by the triggers.
type host struct {
	app      *app
	log      *slog.Logger
	handler  handlerEndpoint
	client   *http.Client
	accounts *accounts
	stats    *stats
	// inflight counts running invocations, for the shutdown grace period.
	inflight atomic.Int64
	// created remembers queues and containers already created.
	created sync.Map
}

func newHost(a *app, log *slog.Logger, handler handlerEndpoint, accts *accounts) *host {
	timeout := time.Duration(0) // no timeout when functionTimeout is unbounded
	if a.host.functionTimeout > 0 {
		timeout = a.host.functionTimeout + time.Minute
	}
	return &host{
		app:      a,
		log:      log,
		handler:  handler,
		client:   &http.Client{Timeout: timeout},
		accounts: accts,
		stats:    newStats(a.functions),
	}
}

// waitIdle waits until no invocation runs, or until timeout; it reports
// whether devhost became idle.
func (h *host) waitIdle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for h.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// errInvocation is the failure of an invocation as the host sees it.
type errInvocation struct {
	reason string
	status int
}

func (e *errInvocation) Error() string { return e.reason }

// invocationResult is a successful invocation.
type invocationResult struct {
	id     string
	status int
	// http is the value of the function's http output, if it has one.
	http *httpResult
}

// invoke runs one invocation: builds the payload with build, POSTs it to
// the handler, applies Logs and Outputs, and logs one line. attrs are added
// to that line (message id, blob name; never a body).
func (h *host) invoke(ctx context.Context, fn *function, attrs []any, build func(invocation.Sys) *invocation.Request) (*invocationResult, error) {
	h.inflight.Add(1)
	defer h.inflight.Add(-1)
	id := newUUID()
	start := time.Now()
	h.stats.begin(fn.name)

	res, err := h.call(ctx, fn, id, build)

	status := 0
	outcome := "succeeded"
	var ie *errInvocation
	if errors.As(err, &ie) {
		status = ie.status
	}
	if res != nil {
		status = res.status
	}
	if err != nil {
		outcome = "failed"
		if errors.Is(err, context.DeadlineExceeded) {
			outcome = "timeout"
		}
	}
	h.stats.end(fn.name, err == nil)
	line := []any{
		"function", fn.name, "invocation_id", id, "trigger", fn.trigger.Type,
		"duration_ms", float64(time.Since(start).Microseconds()) / 1000, "outcome", outcome, "status", status,
	}
	line = append(line, attrs...)
	if err != nil {
		line = append(line, "error", err.Error())
		h.log.Warn("invocation", line...)
		return nil, err
	}
	h.log.Info("invocation", line...)
	return res, nil
}

// call is the exchange with the handler.
func (h *host) call(ctx context.Context, fn *function, id string, build func(invocation.Sys) *invocation.Request) (*invocationResult, error) {
	now := time.Now().UTC()
	req := build(invocation.Sys{MethodName: fn.name, UtcNow: now.Format("2006-01-02T15:04:05.0000000Z"), RandGuid: newUUID()})
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	if t := h.app.host.functionTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	base, err := h.handler.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+fn.name, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json; charset=utf-8")
	hreq.Header.Set("X-Azure-Functions-InvocationId", id)
	hreq.Header.Set("X-Azure-Functions-HostVersion", hostVersion)
	hreq.Header.Set("User-Agent", "Azure-Functions-Host/"+hostVersion)
	resp, err := h.client.Do(hreq)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			h.handler.restart(fmt.Sprintf("function %s exceeded functionTimeout %s", fn.name, h.app.host.functionTimeout))
			return nil, fmt.Errorf("function timeout %s exceeded: %w", h.app.host.functionTimeout, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("post to handler: %w", err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &errInvocation{reason: "read handler response: " + err.Error(), status: resp.StatusCode}
	}
	return h.handleResponse(ctx, fn, id, resp.StatusCode, resp.Header.Get("Content-Type"), respBody)
}

// handleResponse applies the host's rules to the handler's answer
// (DefaultHttpWorkerService.ProcessDefaultInvocationRequest).
func (h *host) handleResponse(ctx context.Context, fn *function, id string, status int, contentType string, body []byte) (*invocationResult, error) {
	fail := func(format string, a ...any) error {
		return &errInvocation{reason: fmt.Sprintf(format, a...), status: status}
	}
	if status < 200 || status > 299 {
		return nil, fail("handler answered %d %s", status, http.StatusText(status))
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt != "application/json" && mt != "text/json" {
		return nil, fail("handler answered Content-Type %q; the host accepts only application/json", contentType)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fail("handler answered %d with an empty body; the real host would wait until functionTimeout", status)
	}
	var decoded invocation.Response
	if err := json.Unmarshal(body, &decoded); err != nil {
		return nil, fail("handler answered a body that is not a JSON response object: %v", err)
	}
	// Outputs again, raw: the exact JSON text of each value.
	var raw struct {
		Outputs     map[string]json.RawMessage `json:"Outputs"`
		ReturnValue json.RawMessage            `json:"ReturnValue"`
	}
	_ = json.Unmarshal(body, &raw)
	for _, l := range decoded.Logs {
		h.log.Info("handler log", "function", fn.name, "invocation_id", id, "log", l)
	}
	httpRes, err := h.applyOutputs(ctx, fn, id, raw.Outputs, raw.ReturnValue)
	if err != nil {
		return nil, &errInvocation{reason: err.Error(), status: status}
	}
	return &invocationResult{id: id, status: status, http: httpRes}, nil
}

// applyOutputs carries out the output bindings of function.json with the
// values the handler returned.
func (h *host) applyOutputs(ctx context.Context, fn *function, id string, outputs map[string]json.RawMessage, returnValue json.RawMessage) (*httpResult, error) {
	var httpRes *httpResult
	for _, b := range fn.outputs() {
		isReturn := b.Name == "$return"
		value := outputs[b.Name]
		if isReturn {
			value = returnValue
		}
		switch strings.ToLower(b.Type) {
		case "http":
			var err error
			if isReturn {
				httpRes, err = httpFromReturnValue(value, b.DataType)
				if err == nil && httpRes.base64Decoded {
					h.log.Warn("ReturnValue is valid base64; decoded before it became the HTTP body, as the Functions host does", "function", fn.name, "invocation_id", id)
				}
			} else {
				httpRes, err = parseHTTPOutput(value)
			}
			if err != nil {
				return nil, fmt.Errorf("output %s: %w", b.Name, err)
			}
		case "queue":
			msgs, decoded, err := queueOutputMessages(value, b.DataType)
			if err != nil {
				return nil, fmt.Errorf("output %s: %w", b.Name, err)
			}
			if decoded {
				h.log.Warn("queue output is a string that is valid base64; it was base64-decoded before it was enqueued, as the Functions host does; send JSON text or objects instead",
					"function", fn.name, "invocation_id", id, "binding", b.Name)
			}
			if err := h.enqueueOutputs(ctx, b, msgs); err != nil {
				return nil, fmt.Errorf("output %s: %w", b.Name, err)
			}
		default:
			if len(value) > 0 && string(bytes.TrimSpace(value)) != "null" {
				h.log.Warn("output binding type not supported by devhost; value dropped", "function", fn.name, "invocation_id", id, "binding", b.Name, "type", b.Type)
			}
		}
	}
	return httpRes, nil
}

// enqueueOutputs writes queue output messages with the app's message encoding.
func (h *host) enqueueOutputs(ctx context.Context, b *binding, msgs [][]byte) error {
	if len(msgs) == 0 {
		return nil
	}
	acc, err := h.accounts.get(b.connectionName())
	if err != nil {
		return err
	}
	qs, err := acc.queueStore()
	if err != nil {
		return err
	}
	if err := h.ensureQueue(ctx, acc.name, qs, b.QueueName); err != nil {
		return err
	}
	for _, m := range msgs {
		if err := qs.Enqueue(ctx, b.QueueName, h.encodeMessage(m)); err != nil {
			return err
		}
	}
	return nil
}

// encodeMessage gives the stored form of a message under messageEncoding.
func (h *host) encodeMessage(m []byte) string {
	if h.app.host.queues.base64 {
		return base64.StdEncoding.EncodeToString(m)
	}
	return string(m)
}

// ensureQueue creates a queue once per devhost run.
func (h *host) ensureQueue(ctx context.Context, conn string, qs queueStore, queue string) error {
	key := "queue|" + strings.ToLower(conn) + "|" + queue
	if _, ok := h.created.Load(key); ok {
		return nil
	}
	if err := qs.CreateQueue(ctx, queue); err != nil {
		return err
	}
	h.created.Store(key, true)
	return nil
}

// ensureContainer creates a container once per devhost run.
func (h *host) ensureContainer(ctx context.Context, conn string, bs blobStore, name string) error {
	key := "container|" + strings.ToLower(conn) + "|" + name
	if _, ok := h.created.Load(key); ok {
		return nil
	}
	if err := bs.CreateContainer(ctx, name); err != nil {
		return err
	}
	h.created.Store(key, true)
	return nil
}

// queueOutputMessages turns the value of a queue output into messages, as
// the host does: GetBindingValue base64-decodes a string that is valid
// base64 (unless dataType is binary); then a JSON array, or a string holding
// JSON array text, gives one message per element, and anything else one
// message. decoded reports the base64 quirk.
func queueOutputMessages(raw json.RawMessage, dataType string) (msgs [][]byte, decoded bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false, fmt.Errorf("decode string value: %w", err)
		}
		if !strings.EqualFold(dataType, "binary") {
			if b, ok := dotnetBase64(s); ok {
				return [][]byte{b}, true, nil
			}
		}
		t := strings.TrimSpace(s)
		isJSON := len(t) >= 2 && ((t[0] == '{' && t[len(t)-1] == '}') || (t[0] == '[' && t[len(t)-1] == ']'))
		if !isJSON {
			return [][]byte{[]byte(s)}, false, nil
		}
		if !json.Valid([]byte(t)) {
			return nil, false, errors.New("string value looks like JSON but does not parse")
		}
		raw = json.RawMessage(t)
	}
	if raw[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, false, fmt.Errorf("decode array value: %w", err)
		}
		for _, it := range items {
			msgs = append(msgs, elementText(it))
		}
		return msgs, false, nil
	}
	return [][]byte{elementText(raw)}, false, nil
}

// elementText is JToken.ToString() of one value: a string without quotes,
// True/False for booleans, "" for null, the JSON text of objects and arrays.
func elementText(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return []byte{}
	case raw[0] == '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return []byte(s)
	case string(raw) == "true":
		return []byte("True")
	case string(raw) == "false":
		return []byte("False")
	case raw[0] == '{' || raw[0] == '[':
		var buf bytes.Buffer
		if json.Compact(&buf, raw) == nil {
			return buf.Bytes()
		}
	}
	return []byte(raw)
}

// dotnetBase64 decodes as Convert.FromBase64String: whitespace ignored,
// padding required.
func dotnetBase64(s string) ([]byte, bool) {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	if len(clean)%4 != 0 {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		return nil, false
	}
	return b, true
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
