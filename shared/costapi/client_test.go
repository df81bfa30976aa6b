package costapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

type staticToken struct{}

func (staticToken) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "tok", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

const sub = "subscriptions/00000000-0000-0000-0000-000000000001"

func newClient(t *testing.T, ts *httptest.Server) *Client {
	t.Helper()
	c, err := New(staticToken{}, &Options{
		Endpoint:      ts.URL,
		ClientOptions: policy.ClientOptions{Transport: ts.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReportCycle(t *testing.T) {
	var polls atomic.Int32
	var ts *httptest.Server
	ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("ClientType") == "" || r.Header.Get("Authorization") == "" && !strings.HasPrefix(r.URL.Path, "/blob") {
			http.Error(w, "missing ClientType or token", 400)
			return
		}
		switch {
		case r.Method == http.MethodPost:
			w.Header().Set("Location", ts.URL+"/op/1?api-version=2024-08-01")
			w.Header().Set("Retry-After", "20")
			w.WriteHeader(http.StatusAccepted)
		case strings.HasPrefix(r.URL.Path, "/op/"):
			if polls.Add(1) == 1 {
				w.Header().Set("Location", ts.URL+"/op/1?api-version=2024-08-01")
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(http.StatusAccepted)
				return
			}
			fmt.Fprintf(w, `{"status":"Completed","manifest":{"blobs":[{"blobLink":"%s/blob/a.csv?sig=SECRET","byteCount":3}]},"validTill":"2026-11-22T10:00:00Z"}`, ts.URL)
		}
	}))
	defer ts.Close()
	c := newClient(t, ts)
	scope, _ := ParseScope(sub)
	rep, err := c.RequestReport(context.Background(), scope, ReportRequest{Metric: "ActualCost", From: "2026-11-01", To: "2026-11-01"})
	if err != nil || rep.Done || rep.RetryAfter != 20*time.Second {
		t.Fatalf("create: %+v %v", rep, err)
	}
	rep, err = c.PollReport(context.Background(), scope, rep.Location)
	if err != nil || rep.Done || rep.RetryAfter != 30*time.Second {
		t.Fatalf("poll 1: %+v %v", rep, err)
	}
	rep, err = c.PollReport(context.Background(), scope, rep.Location)
	if err != nil || !rep.Done || rep.Status != StatusCompleted || len(rep.Blobs) != 1 {
		t.Fatalf("poll 2: %+v %v", rep, err)
	}
}

func TestThrottleTakesTheLargestWait(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "10")
		w.Header().Set("x-ms-ratelimit-microsoft.costmanagement-entity-retry-after", "45")
		w.Header().Set("x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after", "12")
		w.Header().Set("x-ms-ratelimit-microsoft.consumption-retry-after", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer ts.Close()
	scope, _ := ParseScope(sub)
	_, err := newClient(t, ts).RequestReport(context.Background(), scope, ReportRequest{Metric: "ActualCost", From: "2026-11-01", To: "2026-11-01"})
	e, ok := AsError(err)
	if !ok || !e.Throttled || !e.Retryable || e.RetryAfter != 45*time.Second {
		t.Fatalf("got %#v", err)
	}
}

func TestForbiddenNamesTheRole(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":{"code":"AuthorizationFailed","message":"no access"}}`)
	}))
	defer ts.Close()
	for scope, role := range map[string]string{
		sub: "Cost Management Reader",
		"providers/Microsoft.Billing/billingAccounts/1:2/billingProfiles/3": "Billing profile reader",
		"providers/Microsoft.Billing/departments/12":                        "Department Reader",
	} {
		sc, _ := ParseScope(scope)
		_, err := newClient(t, ts).RequestReport(context.Background(), sc, ReportRequest{Metric: "ActualCost", From: "2026-11-01", To: "2026-11-01"})
		e, ok := AsError(err)
		if !ok || e.Retryable || !strings.Contains(err.Error(), role) || !strings.Contains(err.Error(), "AuthorizationFailed") {
			t.Errorf("%s: %v", scope, err)
		}
	}
}

// Links are followed only over https to allowed hosts, and a refusal never
// repeats the query string (it may hold a SAS signature).
func TestUntrustedLinksAreRefused(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("no request may be sent, got %s", r.URL)
	}))
	defer ts.Close()
	c := newClient(t, ts)
	scope, _ := ParseScope(sub)
	for _, link := range []string{
		"http://" + strings.TrimPrefix(ts.URL, "https://") + "/op/1",
		"https://evil.example.com/op/1?sig=SECRET",
		"https://management.azure.com.evil.example/op?sig=SECRET",
		"file:///etc/passwd",
	} {
		_, err := c.PollReport(context.Background(), scope, link)
		if e, ok := AsError(err); !ok || !e.Untrusted || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("poll %s: %v", link, err)
		}
		_, err = c.OpenBlob(context.Background(), link)
		if e, ok := AsError(err); !ok || !e.Untrusted || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("blob %s: %v", link, err)
		}
	}
	// The cloud's storage hosts are allowed for blobs, not for polling.
	if err := c.checkLink("https://ccmreportstorageeastus.blob.core.windows.net/armreports/x?sig=1", true); err != nil {
		t.Errorf("storage host refused: %v", err)
	}
	if err := c.checkLink("https://ccmreportstorageeastus.blob.core.windows.net/op", false); err == nil {
		t.Error("a poll link to a storage host must be refused")
	}
}

func TestExpiredLinkIsReported(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("a SAS download must not carry the bearer token")
		}
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<?xml version="1.0"?><Error><Code>AuthenticationFailed</Code></Error>`)
	}))
	defer ts.Close()
	_, err := newClient(t, ts).OpenBlob(context.Background(), ts.URL+"/blob/a.csv?se=x&sig=SECRET")
	e, ok := AsError(err)
	if !ok || !e.LinkExpired || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("got %v", err)
	}
}
