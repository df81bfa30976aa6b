package handlers

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/telemetry"
)

// Telemetry of the handlers: the adapter (handlers.go) begins and ends each
// invocation with package telemetry; these helpers carry a window's trace
// from trigger to message and export at the end of an invocation.

// flushTimeout bounds the export at the end of an invocation.
const flushTimeout = 5 * time.Second

// flushTelemetry exports the invocation's telemetry before the host hears back: a
// function instance may be frozen between invocations.
func (s *Server) flushTelemetry(ctx context.Context, c *call) {
	if !s.d.Telemetry.Enabled() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	if err := s.d.Telemetry.Flush(ctx); err != nil {
		c.log.Warn("telemetry export failed", "telemetry", s.d.Telemetry.Where(), "error", err.Error())
	}
}

// traceparentOf finds the trace context a trigger carries: the "trace" of
// our queue messages and manifests, the traceparent header of an http
// request; "" when there is none.
func traceparentOf(req *invocation.Request) string {
	if req == nil {
		return ""
	}
	var text []byte
	switch {
	case req.Data["msg"] != nil:
		q, err := req.QueueTrigger("msg")
		if err != nil {
			return ""
		}
		text = []byte(strings.TrimSpace(q.Message))
		if len(text) > 0 && text[0] == '"' {
			// A message that is itself a JSON string of the document.
			s, err := invocation.String(text)
			if err != nil {
				return ""
			}
			text = []byte(s)
		}
	case req.Data["manifest"] != nil:
		b, err := req.BlobTrigger("manifest", "name")
		if err != nil {
			return ""
		}
		text = b.Content
	case req.Data["req"] != nil:
		h, err := req.HTTPTrigger("req")
		if err != nil {
			return ""
		}
		return h.Header("traceparent")
	default:
		return ""
	}
	var t struct {
		Trace string `json:"trace"`
	}
	if json.Unmarshal(text, &t) != nil {
		return ""
	}
	return t.Trace
}

// send enqueues one of our messages with the trace context of the
// invocation, so that the trace of its window goes on where it is handled.
func (s *Server) send(ctx context.Context, queue string, v any, delay time.Duration) error {
	tp := telemetry.Traceparent(ctx)
	switch m := v.(type) {
	case windowMessage:
		m.Trace = tp
		v = m
	case *windowMessage:
		c := *m
		c.Trace = tp
		v = c
	case partMessage:
		m.Trace = tp
		v = m
	case sourceMessage:
		m.Trace = tp
		v = m
	}
	return s.d.Queue.Send(ctx, queue, v, delay)
}

// tel is the telemetry (never nil).
func (s *Server) tel() *telemetry.Telemetry { return s.d.Telemetry }
