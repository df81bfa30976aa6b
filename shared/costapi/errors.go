package costapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error is a failed Cost Management call, with the facts a caller needs to
// decide between waiting, retrying and giving up.
type Error struct {
	Op         string
	Scope      Scope
	StatusCode int    // 0 when no response arrived
	Code       string // the service's error code
	Message    string // the service's message, or ours
	// RetryAfter is the largest wait the service asked for (429, 503).
	RetryAfter time.Duration
	// Retryable: network errors, timeouts, 408, 429, 5xx.
	Retryable bool
	// Throttled: the service answered 429.
	Throttled bool
	// LinkExpired: a report download link was refused; request the report again.
	LinkExpired bool
	// Untrusted: a link pointed somewhere it must not.
	Untrusted bool
	Err       error
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
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// requiredRole names the role a principal needs to read costs at a scope kind.
func requiredRole(k ScopeKind) string {
	switch k {
	case Subscription:
		return "Cost Management Reader (or Reader) on the subscription"
	case EABillingAccount:
		return "Enterprise Administrator (read only) on the enrollment"
	case EADepartment:
		return "Department Reader (or Department Admin) on the department"
	case EAEnrollment:
		return "Account Owner on the enrollment account (or an enrollment reader)"
	case MCABillingAccount:
		return "Billing account reader on the billing account"
	case MCABillingProfile, MCACustomer:
		return "Billing profile reader on the billing profile"
	case MCAInvoiceSection:
		return "Invoice section reader on the invoice section"
	}
	return "a cost-reading role on the scope"
}

func responseError(op string, scope Scope, resp *http.Response, body []byte) *Error {
	e := &Error{Op: op, Scope: scope, StatusCode: resp.StatusCode}
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
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		if scope.Path != "" {
			e.Message = strings.TrimSpace(e.Message + " (the identity needs " + requiredRole(scope.Kind) + ")")
		}
	}
	return e
}
