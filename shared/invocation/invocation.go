// Package invocation holds the Azure Functions host's custom-handler wire
// format: the body the host POSTs to /{FunctionName} and the body it expects
// back. It decodes what the host really sends, not the simplified payloads of
// the documentation: strings, numbers and URIs are JSON-encoded twice
// (`"\"abc\""`), DequeueCount is the string "1", blob content is base64, a
// timer's first Last has no offset and ScheduleStatus may be null. It also
// encodes the same payloads, for the local host stand-in and for tests.
package invocation

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Request is the body of the host's POST to the handler.
type Request struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// Response is the body the handler answers with. The host reads it only when
// the status is 2xx and the Content-Type is application/json.
type Response struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// HTTPResponse is the value of an http output binding (`res`).
type HTTPResponse struct {
	StatusCode int               `json:"statusCode"`
	Body       any               `json:"body,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// Sys is the `sys` entry the host adds to every invocation's Metadata.
type Sys struct {
	MethodName string `json:"MethodName"`
	UtcNow     string `json:"UtcNow"`
	RandGuid   string `json:"RandGuid"`
}

// ErrMissing reports a binding or metadata entry the payload lacks.
var ErrMissing = errors.New("missing from the invocation payload")

// Decode reads a host request body. Unknown top-level fields are tolerated, as
// the host may add some.
func Decode(body []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode invocation payload: %w", err)
	}
	if r.Data == nil {
		return nil, fmt.Errorf("decode invocation payload: Data %w", ErrMissing)
	}
	return &r, nil
}

// String decodes a value that the host serialised as a string, tolerating
// both the real double encoding (`"\"abc\""`) and a single one (`"abc"`).
// JSON null gives "".
func String(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] != '"' {
		// A number or object sent as-is.
		return string(raw), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("decode string value: %w", err)
	}
	// Double-encoded: the string itself is JSON text of a string.
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		var inner string
		if err := json.Unmarshal([]byte(s), &inner); err == nil {
			return inner, nil
		}
	}
	return s, nil
}

// DecodeJSON decodes a JSON document that the host delivered as a (possibly
// double-encoded) string, or as an object, into v. Unknown fields are an
// error: our own messages must match their type exactly.
func DecodeJSON(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	text := []byte(raw)
	if len(raw) > 0 && raw[0] == '"' {
		s, err := String(raw)
		if err != nil {
			return err
		}
		text = []byte(s)
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	if dec.More() {
		return errors.New("decode message: trailing data after the JSON document")
	}
	return nil
}

// Int decodes a number the host sent as a string ("1") or as a number.
func Int(raw json.RawMessage) (int64, error) {
	s, err := String(raw)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decode integer %q: %w", s, err)
	}
	return n, nil
}

// hostTimeLayouts are the forms DateTime and DateTimeOffset take on the wire.
var hostTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.9999999",
	"2006-01-02T15:04:05",
}

// ParseTime parses a host timestamp: with an offset, with `Z`, or (a timer's
// first Last, "0001-01-01T00:00:00") with none, which is taken as UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	for _, l := range hostTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("parse host time %q: not an ISO-8601 timestamp", s)
}

// Time is a timestamp that unmarshals from any form the host sends.
type Time struct{ time.Time }

// UnmarshalJSON accepts null, a timestamp with or without an offset, or a
// double-encoded timestamp.
func (t *Time) UnmarshalJSON(b []byte) error {
	s, err := String(b)
	if err != nil {
		return err
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	v, err := ParseTime(s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// MarshalJSON writes the host's DateTimeOffset form, e.g.
// "2025-02-18T03:06:19+00:00" (no fraction, as the host drops it).
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(FormatTime(t.Time))
}

// FormatTime writes t the way the host serialises a DateTimeOffset.
func FormatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05") + "+00:00"
}

// Encode serialises a value the way the host does for strings, numbers and
// URIs: JSON text of the value, as a JSON string (double encoding).
func Encode(v any) json.RawMessage {
	inner, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("invocation.Encode: %v", err)) // only called with strings and numbers
	}
	outer, _ := json.Marshal(string(inner))
	return outer
}

// Base64 serialises bytes the way the host sends blob content.
func Base64(b []byte) json.RawMessage {
	out, _ := json.Marshal(base64.StdEncoding.EncodeToString(b))
	return out
}

// object marshals v as a plain JSON object (the host's JObject.FromObject).
func object(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("invocation: marshal %T: %v", v, err))
	}
	return b
}
