package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/costsync/costsync/shared/invocation"
)

// httpResult is the HTTP answer a function produced.
type httpResult struct {
	res  invocation.HTTPResponse // status code and headers; Body is unused
	body []byte
	// contentType is the default Content-Type for body, used unless the
	// headers set one.
	contentType   string
	base64Decoded bool
}

// errHTTPOutputShape is the host's HttpOutputDeserializationException.
var errHTTPOutputShape = errors.New("output body should have 'StatusCode', 'Status', 'Body', and 'Headers'")

// parseHTTPOutput reads an http output binding value, an object (or a string
// holding its JSON text) with statusCode, status, body and headers, matched
// case-insensitively as Newtonsoft does. statusCode may be a number or a
// string ("201").
func parseHTTPOutput(raw json.RawMessage) (*httpResult, error) {
	out := &httpResult{res: invocation.HTTPResponse{StatusCode: http.StatusOK, Headers: map[string]string{}}}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: %v", errHTTPOutputShape, err)
		}
		raw = json.RawMessage(s)
	}
	var v struct {
		StatusCode json.RawMessage `json:"statusCode"`
		Status     json.RawMessage `json:"status"`
		Body       json.RawMessage `json:"body"`
		Headers    map[string]any  `json:"headers"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", errHTTPOutputShape, err)
	}
	for _, sc := range []json.RawMessage{v.StatusCode, v.Status} {
		if len(sc) == 0 || string(sc) == "null" || string(sc) == `""` {
			continue
		}
		n, err := invocation.Int(sc)
		if err != nil || n < 100 || n > 999 {
			return nil, fmt.Errorf("%w: status code %s", errHTTPOutputShape, sc)
		}
		out.res.StatusCode = int(n)
		break
	}
	for k, hv := range v.Headers {
		switch hv := hv.(type) {
		case string:
			out.res.Headers[k] = hv
		case nil:
		case []any:
			parts := make([]string, 0, len(hv))
			for _, p := range hv {
				parts = append(parts, fmt.Sprint(p))
			}
			out.res.Headers[k] = strings.Join(parts, ",")
		case float64:
			out.res.Headers[k] = strconv.FormatFloat(hv, 'f', -1, 64)
		default:
			out.res.Headers[k] = fmt.Sprint(hv)
		}
	}
	out.body, out.contentType = bodyBytes(v.Body)
	return out, nil
}

// bodyBytes is how a body value is written: a string as-is, an object or
// array as JSON, a number or boolean as its text, null as nothing.
func bodyBytes(raw json.RawMessage) ([]byte, string) {
	raw = bytes.TrimSpace(raw)
	const text = "text/plain; charset=utf-8"
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, ""
	case raw[0] == '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return []byte(s), text
	case raw[0] == '{' || raw[0] == '[':
		return []byte(raw), "application/json; charset=utf-8"
	}
	return []byte(raw), text
}

// httpFromReturnValue reads ReturnValue bound to an http $return: it passes
// through GetBindingValue first (a string that is valid base64 is decoded,
// unless dataType is binary); an object is read like an http output.
func httpFromReturnValue(raw json.RawMessage, dataType string) (*httpResult, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode ReturnValue: %w", err)
		}
		if !strings.EqualFold(dataType, "binary") {
			if b, ok := dotnetBase64(s); ok {
				return &httpResult{res: invocation.HTTPResponse{StatusCode: http.StatusOK, Headers: map[string]string{}}, body: b, contentType: "application/octet-stream", base64Decoded: true}, nil
			}
		}
		t := strings.TrimSpace(s)
		if strings.HasPrefix(t, "{") && json.Valid([]byte(t)) {
			return parseHTTPOutput(json.RawMessage(t))
		}
		return &httpResult{res: invocation.HTTPResponse{StatusCode: http.StatusOK, Headers: map[string]string{}}, body: []byte(s), contentType: "text/plain; charset=utf-8"}, nil
	}
	if len(raw) > 0 && raw[0] == '{' {
		return parseHTTPOutput(raw)
	}
	body, ct := bodyBytes(raw)
	return &httpResult{res: invocation.HTTPResponse{StatusCode: http.StatusOK, Headers: map[string]string{}}, body: body, contentType: ct}, nil
}

// write sends the result to the caller.
func (r *httpResult) write(w http.ResponseWriter) {
	hasCT := false
	for k, v := range r.res.Headers {
		if strings.EqualFold(k, "Content-Type") {
			hasCT = true
		}
		w.Header().Set(k, v)
	}
	if !hasCT && r.contentType != "" {
		w.Header().Set("Content-Type", r.contentType)
	}
	w.WriteHeader(r.res.StatusCode)
	_, _ = w.Write(r.body)
}
