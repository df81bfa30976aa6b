package invocation

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Queue is a queue-trigger invocation, decoded.
type Queue struct {
	// Message is the message text after the host's base64 decoding.
	Message         string
	DequeueCount    int64
	ID              string
	PopReceipt      string
	InsertionTime   Time
	ExpirationTime  Time
	NextVisibleTime Time
}

// QueueTrigger decodes the queue trigger bound to binding.
func (r *Request) QueueTrigger(binding string) (*Queue, error) {
	raw, ok := r.Data[binding]
	if !ok {
		return nil, fmt.Errorf("queue trigger %q: %w", binding, ErrMissing)
	}
	msg, err := String(raw)
	if err != nil {
		return nil, fmt.Errorf("queue trigger %q: %w", binding, err)
	}
	q := &Queue{Message: msg}
	if v, ok := r.Metadata["DequeueCount"]; ok {
		if q.DequeueCount, err = Int(v); err != nil {
			return nil, fmt.Errorf("queue trigger DequeueCount: %w", err)
		}
	}
	for name, dst := range map[string]*string{"Id": &q.ID, "PopReceipt": &q.PopReceipt} {
		if v, ok := r.Metadata[name]; ok {
			if *dst, err = String(v); err != nil {
				return nil, fmt.Errorf("queue trigger %s: %w", name, err)
			}
		}
	}
	for name, dst := range map[string]*Time{"InsertionTime": &q.InsertionTime, "ExpirationTime": &q.ExpirationTime, "NextVisibleTime": &q.NextVisibleTime} {
		if v, ok := r.Metadata[name]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("queue trigger %s: %w", name, err)
			}
		}
	}
	return q, nil
}

// Timer is the TimerInfo object of a timer trigger.
type Timer struct {
	Schedule struct {
		AdjustForDST bool `json:"AdjustForDST"`
	} `json:"Schedule"`
	// ScheduleStatus is nil when schedule monitoring is off.
	ScheduleStatus *ScheduleStatus `json:"ScheduleStatus"`
	IsPastDue      bool            `json:"IsPastDue"`
}

// ScheduleStatus is the timer's last and next occurrence. On the first run
// Last is "0001-01-01T00:00:00", which decodes to the zero time.
type ScheduleStatus struct {
	Last        Time `json:"Last"`
	Next        Time `json:"Next"`
	LastUpdated Time `json:"LastUpdated"`
}

// TimerTrigger decodes the timer trigger bound to binding.
func (r *Request) TimerTrigger(binding string) (*Timer, error) {
	raw, ok := r.Data[binding]
	if !ok {
		return nil, fmt.Errorf("timer trigger %q: %w", binding, ErrMissing)
	}
	var t Timer
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("timer trigger %q: %w", binding, err)
	}
	return &t, nil
}

// Blob is a blob-trigger invocation, decoded.
type Blob struct {
	Content []byte
	// Name is the value of the {name} token of the trigger's path.
	Name string
	URI  string
	// Properties are kept raw: the host sends the whole BlobProperties object.
	Properties json.RawMessage
}

// BlobTrigger decodes the blob trigger bound to binding; nameToken is the
// token of the trigger path that holds the blob name (e.g. "name").
func (r *Request) BlobTrigger(binding, nameToken string) (*Blob, error) {
	raw, ok := r.Data[binding]
	if !ok {
		return nil, fmt.Errorf("blob trigger %q: %w", binding, ErrMissing)
	}
	var b64 string
	if err := json.Unmarshal(raw, &b64); err != nil {
		return nil, fmt.Errorf("blob trigger %q: content is not a base64 string: %w", binding, err)
	}
	content, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("blob trigger %q: content is not base64: %w", binding, err)
	}
	b := &Blob{Content: content, Properties: r.Metadata["Properties"]}
	if b.Name, err = String(r.Metadata[nameToken]); err != nil {
		return nil, fmt.Errorf("blob trigger %s: %w", nameToken, err)
	}
	if b.URI, err = String(r.Metadata["Uri"]); err != nil {
		return nil, fmt.Errorf("blob trigger Uri: %w", err)
	}
	return b, nil
}

// HTTP is the `req` object of an http trigger without forwarding.
type HTTP struct {
	URL    string `json:"Url"`
	Method string `json:"Method"`
	// Query values are strings; a repeated key is joined with commas.
	Query   map[string]string   `json:"Query"`
	Headers map[string][]string `json:"Headers"`
	Params  map[string]string   `json:"Params"`
	// Body is the request body as text; absent when the request had none.
	Body string `json:"Body"`
}

// Header returns the first value of a header, matched case-insensitively.
func (h *HTTP) Header(name string) string {
	for k, v := range h.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// HTTPTrigger decodes the http trigger bound to binding.
func (r *Request) HTTPTrigger(binding string) (*HTTP, error) {
	raw, ok := r.Data[binding]
	if !ok {
		return nil, fmt.Errorf("http trigger %q: %w", binding, ErrMissing)
	}
	var h HTTP
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("http trigger %q: %w", binding, err)
	}
	return &h, nil
}
