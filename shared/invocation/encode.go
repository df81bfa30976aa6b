package invocation

import (
	"encoding/json"
	"time"
)

// The builders below produce the payloads the host sends, byte for byte in
// shape: they exist for the local host stand-in (devhost) and for tests, so
// that the handler is always exercised with the real wire format.

// QueueMessage describes a dequeued message for NewQueueRequest.
type QueueMessage struct {
	Text            string
	DequeueCount    int64
	ID              string
	PopReceipt      string
	InsertionTime   time.Time
	ExpirationTime  time.Time
	NextVisibleTime time.Time
}

// NewQueueRequest builds a queue-trigger payload: the message text and the
// strings in Metadata double-encoded, DequeueCount as a string, and no
// QueueTrigger key (the host drops keys ending in "trigger").
func NewQueueRequest(binding string, m QueueMessage, sys Sys) *Request {
	return &Request{
		Data: map[string]json.RawMessage{binding: Encode(m.Text)},
		Metadata: map[string]json.RawMessage{
			"DequeueCount":    Encode(m.DequeueCount),
			"ExpirationTime":  object(Time{m.ExpirationTime}),
			"Id":              Encode(m.ID),
			"InsertionTime":   object(Time{m.InsertionTime}),
			"NextVisibleTime": object(Time{m.NextVisibleTime}),
			"PopReceipt":      Encode(m.PopReceipt),
			"sys":             object(sys),
		},
	}
}

// NewTimerRequest builds a timer-trigger payload. A zero last time is written
// as the host writes it on a first run: "0001-01-01T00:00:00", no offset.
func NewTimerRequest(binding string, last, next time.Time, pastDue bool, sys Sys) *Request {
	lastText := "0001-01-01T00:00:00"
	if !last.IsZero() {
		lastText = FormatTime(last)
	}
	timer := map[string]any{
		"Schedule": map[string]any{"AdjustForDST": true},
		"ScheduleStatus": map[string]any{
			"Last":        lastText,
			"Next":        FormatTime(next),
			"LastUpdated": time.Now().UTC().Format("2006-01-02T15:04:05.999999") + "+00:00",
		},
		"IsPastDue": pastDue,
	}
	return &Request{
		Data:     map[string]json.RawMessage{binding: object(timer)},
		Metadata: map[string]json.RawMessage{"sys": object(sys)},
	}
}

// BlobInfo describes a triggering blob for NewBlobRequest.
type BlobInfo struct {
	Content []byte
	URI     string
	// Tokens are the values of the path's tokens, e.g. {"name": "a/b.json"}.
	Tokens        map[string]string
	ContentType   string
	ContentLength int64
	LastModified  time.Time
	CreatedOn     time.Time
	Metadata      map[string]string
}

// NewBlobRequest builds a blob-trigger payload: content in base64, Uri and
// the path tokens double-encoded, Properties as an object.
func NewBlobRequest(binding string, b BlobInfo, sys Sys) *Request {
	meta := b.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	props := map[string]any{
		"LastModified":  FormatTime(b.LastModified),
		"CreatedOn":     FormatTime(b.CreatedOn),
		"Metadata":      meta,
		"BlobType":      0,
		"ContentLength": b.ContentLength,
		"ContentType":   b.ContentType,
		"ETag":          map[string]any{},
		"LeaseState":    0,
		"LeaseStatus":   1,
		"AccessTier":    "Hot",
	}
	md := map[string]json.RawMessage{
		"Uri":        Encode(b.URI),
		"Properties": object(props),
		"Metadata":   object(meta),
		"sys":        object(sys),
	}
	for k, v := range b.Tokens {
		md[k] = Encode(v)
	}
	return &Request{Data: map[string]json.RawMessage{binding: Base64(b.Content)}, Metadata: md}
}

// NewHTTPRequest builds an http-trigger payload without forwarding: `req` is
// an object with Headers as arrays; Metadata repeats Query, Params and
// Headers with single string values.
func NewHTTPRequest(binding string, h HTTP, sys Sys) *Request {
	if h.Query == nil {
		h.Query = map[string]string{}
	}
	if h.Params == nil {
		h.Params = map[string]string{}
	}
	req := map[string]any{
		"Url": h.URL, "Method": h.Method, "Query": h.Query, "Headers": h.Headers, "Params": h.Params,
		"Identities": []any{},
	}
	if h.Body != "" {
		req["Body"] = h.Body
	}
	flat := map[string]string{}
	for k, v := range h.Headers {
		if len(v) > 0 {
			flat[k] = v[0]
		}
	}
	return &Request{
		Data: map[string]json.RawMessage{binding: object(req)},
		Metadata: map[string]json.RawMessage{
			"Query": object(h.Query), "Params": object(h.Params), "Headers": object(flat), "sys": object(sys),
		},
	}
}
