package costapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Error is a failed Cost Management call, with the facts a caller needs to
// decide between waiting, retrying and giving up. Its text never holds a
// URL's query string (a SAS signature) nor a token.
type Error struct {
	Op         string
	Scope      Scope
	StatusCode int    // 0 when no response arrived
	Code       string // the service's error code
	Message    string // the service's message, or ours
	// RetryAfter is the largest wait the service asked for (429, 503).
	RetryAfter time.Duration
	// QuotaRemaining is the smallest x-ms-ratelimit-remaining-* value of
	// the answer, -1 when it carried none.
	QuotaRemaining int
	// Retryable: network errors, timeouts, 408, 429, 5xx.
	Retryable bool
	// Throttled: the service answered 429.
	Throttled bool
	// LinkExpired: a report download link no longer works; request the
	// report again.
	LinkExpired bool
	// Untrusted: a link pointed somewhere it must not.
	Untrusted bool
	// Invalid: the request breaks a documented limit and was not sent.
	Invalid bool
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Scope.Path != "" {
		fmt.Fprintf(&b, " for %s", e.Scope.Path)
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return redactText(b.String())
}

func (e *Error) Unwrap() error { return e.Err }

// RequiredRole names the role a principal needs to read costs at a scope
// kind (cost-apis.md, prior-art.md §4.11).
func RequiredRole(k ScopeKind) string {
	switch k {
	case Subscription:
		return "Cost Management Reader (or Reader) on the subscription"
	case EABillingAccount:
		return "the EA enrollment reader role (Enterprise Administrator, read only) on the enrollment"
	case EADepartment:
		return "the EA department reader role (Department Admin, read only) on the department, or the enrollment reader role"
	case EAEnrollment:
		return "Account Owner of the EA enrollment account, or the EA enrollment reader role"
	case MCABillingAccount:
		return "MCA billing account reader on the billing account"
	case MCABillingProfile, MCACustomer:
		return "MCA billing profile reader on the billing profile"
	case MCAInvoiceSection:
		return "MCA invoice section reader on the invoice section (or billing profile reader)"
	}
	return "a cost-reading role on the scope"
}

func responseError(op string, scope Scope, resp *http.Response, body []byte) *Error {
	e := &Error{Op: op, Scope: scope, StatusCode: resp.StatusCode, QuotaRemaining: quotaRemaining(resp.Header)}
	var arm struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &arm) == nil && (arm.Error.Code != "" || arm.Error.Message != "") {
		e.Code, e.Message = arm.Error.Code, arm.Error.Message
	} else if len(body) > 0 && !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		// Storage answers XML; keep a short excerpt, never the request URL.
		e.Message = strings.TrimSpace(string(body[:min(len(body), 300)]))
	}
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		e.Retryable, e.Throttled = true, true
		e.RetryAfter = retryAfter(resp.Header, 60*time.Second)
	case s == http.StatusRequestTimeout || s >= 500:
		e.Retryable = true
		e.RetryAfter = retryAfter(resp.Header, 0)
	case s == http.StatusUnauthorized && scope.Path != "":
		e.Message = strings.TrimSpace(e.Message + " (check the managed identity and COSTSYNC_CLOUD; the identity needs " + RequiredRole(scope.Kind) + ")")
	case s == http.StatusForbidden && scope.Path != "":
		e.Message = strings.TrimSpace(e.Message + " (the identity needs " + RequiredRole(scope.Kind) + ")")
	}
	return e
}

// transportError is a call that got no answer: a reset connection, a
// timeout, a DNS failure. It is retryable; the URL in the error (net/http
// puts the whole URL, SAS included, in it) loses its query string.
func transportError(op string, scope Scope, err error) *Error {
	msg := ""
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out"
	}
	return &Error{Op: op, Scope: scope, Message: msg, Err: redactErr(err), Retryable: true, QuotaRemaining: -1}
}

// redactErr returns err with the URL of a *url.Error stripped of its query.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redactText(ue.URL), Err: ue.Err}
	}
	return err
}

// redactURL is u without user info and query: scheme, host and path.
func redactURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

var (
	reQuery = regexp.MustCompile(`(?i)(\b[a-z][a-z0-9+.-]*://[^\s"'?#]*)\?[^\s"'#<>]*`)
	reSig   = regexp.MustCompile(`(?i)\bsig=[^&\s"'<>]*`)
)

// redactText replaces the query string of every URL in s with "?REDACTED",
// and any other SAS signature (a relative link, say) with "sig=REDACTED".
func redactText(s string) string {
	return reSig.ReplaceAllString(reQuery.ReplaceAllString(s, "$1?REDACTED"), "sig=REDACTED")
}
