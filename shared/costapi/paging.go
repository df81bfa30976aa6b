package costapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
)

// maxPage bounds one page of the Query, Consumption and Commerce APIs: a
// thousand usage details of a few kilobytes each, or five thousand query
// rows, with room to spare.
const maxPage = 64 << 20

// call sends one ARM request of a paged API and returns the answered
// response and its body. A 2xx comes back; anything else is an *Error with
// the waits the service asked for. A link (nextLink) is followed only when
// it is https and on an allowed host.
func (c *Client) call(ctx context.Context, op string, scope Scope, method, link string, body []byte) (*http.Response, []byte, error) {
	if err := c.checkLink(op, link, false); err != nil {
		return nil, nil, err
	}
	req, err := runtime.NewRequest(withAPI(ctx, apiOf(op)), method, link)
	if err != nil {
		return nil, nil, &Error{Op: op, Scope: scope, Err: err}
	}
	req.Raw().Header.Set("ClientType", c.clientType)
	if body != nil {
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(body)), "application/json"); err != nil {
			return nil, nil, &Error{Op: op, Scope: scope, Err: err}
		}
	}
	resp, err := c.pipeline.Do(req)
	if err != nil {
		return nil, nil, &Error{Op: op, Scope: scope, Err: err, Retryable: true}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPage+1))
	if err != nil {
		return nil, nil, &Error{Op: op, Scope: scope, Err: err, Retryable: true}
	}
	if len(b) > maxPage {
		return nil, nil, &Error{Op: op, Scope: scope, StatusCode: resp.StatusCode, Message: fmt.Sprintf("page over %d bytes", maxPage)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, nil, responseError(op, scope, resp, b)
	}
	return resp, b, nil
}

// armURL is the ARM URL of path below scope with the query q.
func (c *Client) armURL(scope Scope, path string, q url.Values) string {
	u := *c.arm
	u.Path = "/" + scope.Path + path
	u.RawQuery = q.Encode()
	return u.String()
}

// Properties are a record's properties as the service sent them: each
// value is the JSON text, so that numbers keep every digit.
type Properties map[string]json.RawMessage

// Text returns a property as text: a string unquoted, a number or boolean
// as written, null or absent as "", an object or array as compact JSON.
func (p Properties) Text(name string) string {
	return jsonText(p[name])
}

func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return ""
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case raw[0] == '{' || raw[0] == '[':
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			return b.String()
		}
	}
	return string(raw)
}

// decodeExact decodes JSON keeping numbers as json.Number.
func decodeExact(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
