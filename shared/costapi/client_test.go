package costapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// The client's behaviour against the real service's answers is tested
// against costsim, in-process (cmd/costsim/client_test.go). These tests
// cover what needs a server costsim cannot be: one that redirects, or one
// of another cloud.

// recordingToken hands out a fixed token and records the scopes asked for.
type recordingToken struct {
	mu     sync.Mutex
	scopes []string
}

func (r *recordingToken) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	r.mu.Lock()
	r.scopes = append(r.scopes, o.Scopes...)
	r.mu.Unlock()
	return azcore.AccessToken{Token: "tok", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

const sub = "subscriptions/00000000-0000-0000-0000-000000000001"

var day = ReportRequest{Metric: ActualCost, From: "2026-11-01", To: "2026-11-01"}

func newClient(t *testing.T, ts *httptest.Server, cloud Cloud) (*Client, *recordingToken) {
	t.Helper()
	tok := &recordingToken{}
	c, err := New(tok, &Options{
		Cloud:         cloud,
		Endpoint:      ts.URL,
		AllowedHosts:  []string{strings.TrimPrefix(ts.URL, "https://")},
		Now:           func() time.Time { return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) },
		ClientOptions: policy.ClientOptions{Transport: ts.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, tok
}

// The cloud table is the Azure SDK's: ARM endpoint and token audience.
func TestCloudsTable(t *testing.T) {
	for name, want := range map[string][2]string{
		"public": {"https://management.azure.com", "https://management.core.windows.net/"},
		"china":  {"https://management.chinacloudapi.cn", "https://management.core.chinacloudapi.cn/"},
		"usgov":  {"https://management.usgovcloudapi.net", "https://management.core.usgovcloudapi.net/"},
	} {
		c, err := LookupCloud(strings.ToUpper(name))
		if err != nil || c.ARM != want[0] || c.Audience != want[1] || !strings.HasPrefix(c.StorageSuffix, ".blob.core.") {
			t.Errorf("%s: %+v %v", name, c, err)
		}
	}
	if _, err := LookupCloud("mars"); err == nil || !strings.Contains(err.Error(), "china, public, usgov") {
		t.Errorf("unknown cloud: %v", err)
	}
}

// Each cloud's audience is asked for, and its hosts make the allow-list.
func TestCloudDecidesAudienceAndLinks(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("ClientType") != DefaultClientType || r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("request without ClientType or token: %v", r.Header)
		}
		w.Header().Set("Location", "https://"+r.Host+"/op/1?api-version=2024-08-01")
		w.Header().Set("Retry-After", "20")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ts.Close()
	for _, name := range []string{"public", "china", "usgov"} {
		cloud := Clouds[name]
		c, tok := newClient(t, ts, cloud)
		rep, err := c.RequestReport(context.Background(), mustScope(t, sub), day)
		if err != nil || rep.RetryAfter != 20*time.Second {
			t.Fatalf("%s: %+v %v", name, rep, err)
		}
		if _, err := c.PollReport(context.Background(), mustScope(t, sub), rep.Location); err != nil {
			t.Fatalf("%s poll: %v", name, err)
		}
		if want := strings.TrimSuffix(cloud.Audience, "/") + "/.default"; len(tok.scopes) == 0 || tok.scopes[0] != want {
			t.Errorf("%s: token scopes %v, want %s", name, tok.scopes, want)
		}
		arm := strings.TrimPrefix(cloud.ARM, "https://")
		for link, want := range map[string]bool{
			"https://" + arm + "/subscriptions/x/op?api-version=1":        true,
			"https://ccmreportstorageeastus" + cloud.StorageSuffix + "/x": true,
		} {
			blob := strings.Contains(link, ".blob.")
			if err := c.checkLink("t", link, blob); (err == nil) != want {
				t.Errorf("%s: %s: %v", name, link, err)
			}
		}
		for other, oc := range Clouds {
			if other == name {
				continue
			}
			if err := c.checkLink("t", "https://ccmreportstorageeastus"+oc.StorageSuffix+"/x", true); err == nil {
				t.Errorf("%s accepts a %s storage host", name, other)
			}
			if err := c.checkLink("t", oc.ARM+"/op", false); err == nil {
				t.Errorf("%s accepts the %s ARM host", name, other)
			}
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
	c, _ := newClient(t, ts, Cloud{})
	scope := mustScope(t, sub)
	host := strings.TrimPrefix(ts.URL, "https://")
	for _, link := range []string{
		"http://" + host + "/op/1?sig=SECRET",
		"https://user:SECRET@" + host + "/op/1",
		"https://evil.example.com/op/1?sig=SECRET",
		"https://management.azure.com.evil.example/op?sig=SECRET",
		"https://ccmreportstorageeastus.blob.core.windows.net:8443/x?sig=SECRET",
		"file:///etc/passwd",
		"::not a url?sig=SECRET",
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
	if err := c.checkLink("t", "https://ccmreportstorageeastus.blob.core.windows.net/armreports/x?sig=1", true); err != nil {
		t.Errorf("storage host refused: %v", err)
	}
	if err := c.checkLink("t", "https://ccmreportstorageeastus.blob.core.windows.net/op", false); err == nil {
		t.Error("a poll link to a storage host must be refused")
	}
}

// A redirect would leave the allow-list: it is never followed.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var followed bool
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed = true
			return
		}
		http.Redirect(w, r, "/elsewhere?sig=SECRET", http.StatusFound)
	}))
	defer ts.Close()
	c, _ := newClient(t, ts, Cloud{})
	_, err := c.OpenBlob(context.Background(), ts.URL+"/armreports/x.csv?sig=SECRET")
	if e, ok := AsError(err); !ok || e.StatusCode != http.StatusFound || e.Retryable || followed || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("redirected download: %v (followed %v)", err, followed)
	}
	_, err = c.PollReport(context.Background(), mustScope(t, sub), ts.URL+"/op/1")
	if e, ok := AsError(err); !ok || e.StatusCode != http.StatusFound || followed {
		t.Errorf("redirected poll: %v (followed %v)", err, followed)
	}
}

// The endpoint override must be on the allow-list: a test or the local
// stack names its loopback host explicitly.
func TestEndpointMustBeAllowed(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Endpoint: "https://127.0.0.1:8443"}, "allowed hosts"},
		{Options{Endpoint: "http://127.0.0.1:8443", AllowedHosts: []string{"127.0.0.1:8443"}}, "https URL"},
		{Options{Cloud: Clouds["china"], Endpoint: "https://management.azure.com"}, "not the china cloud's ARM host"},
		{Options{Cloud: Clouds["china"], Endpoint: "https://management.chinacloudapi.cn/"}, ""},
		{Options{Endpoint: "https://127.0.0.1:8443", AllowedHosts: []string{" 127.0.0.1:8443 "}}, ""},
	} {
		_, err := New(&recordingToken{}, &tc.o)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestRetryAfterHeaders(t *testing.T) {
	soon := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{map[string]string{}, 60 * time.Second},
		{map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{map[string]string{"Retry-After": "7", "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "12.5"}, 12500 * time.Millisecond},
		{map[string]string{"Retry-After": "10", "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": "45", "x-ms-ratelimit-microsoft.consumption-retry-after": "30"}, 45 * time.Second},
		{map[string]string{"x-ms-ratelimit-microsoft.costmanagement-clienttype-retry-after": "61", "x-ms-ratelimit-remaining-microsoft.costmanagement-entity-requests": "999"}, 61 * time.Second},
		{map[string]string{"Retry-After": "soon"}, 60 * time.Second},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		if got := retryAfter(h, 60*time.Second); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.h, got, tc.want)
		}
	}
	h := http.Header{"Retry-After": {soon}}
	if got := retryAfter(h, 0); got < 80*time.Second || got > 91*time.Second {
		t.Errorf("HTTP date: %s", got)
	}
}

func TestErrorTextHasNoQueryString(t *testing.T) {
	e := &Error{Op: "download report", Message: `GET "https://h.blob.core.windows.net/a/b.csv?sv=1&sig=abc%3D" failed`,
		Err: fmt.Errorf("wrapped: %w", errors.New("see https://x.example/p?token=SECRET and http://y/q?a=b"))}
	got := e.Error()
	for _, leak := range []string{"sig=", "sv=", "token=", "SECRET", "a=b"} {
		if strings.Contains(got, leak) {
			t.Errorf("%q shows %q", got, leak)
		}
	}
	if !strings.Contains(got, "https://h.blob.core.windows.net/a/b.csv?REDACTED") {
		t.Errorf("%q lost the host and path", got)
	}
}

func TestReportExpired(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		till   time.Time
		margin time.Duration
		want   bool
	}{
		{time.Time{}, time.Hour, false},
		{now.Add(time.Hour), 5 * time.Minute, false},
		{now.Add(time.Minute), 5 * time.Minute, true},
		{now.Add(-time.Second), 0, true},
	} {
		if got := (&Report{ValidTill: tc.till}).Expired(now, tc.margin); got != tc.want {
			t.Errorf("validTill %s margin %s: %v", tc.till, tc.margin, got)
		}
	}
}

func TestForbiddenNamesTheRole(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":{"code":"AuthorizationFailed","message":"no access"}}`)
	}))
	defer ts.Close()
	c, _ := newClient(t, ts, Cloud{})
	for scope, role := range map[string]string{
		sub: "Cost Management Reader",
		"providers/Microsoft.Billing/billingAccounts/12345":                                   "EA enrollment reader",
		"providers/Microsoft.Billing/departments/12":                                          "EA department reader",
		"providers/Microsoft.Billing/billingAccounts/12345/enrollmentAccounts/7":              "Account Owner",
		"providers/Microsoft.Billing/billingAccounts/1:2":                                     "MCA billing account reader",
		"providers/Microsoft.Billing/billingAccounts/1:2/billingProfiles/3":                   "MCA billing profile reader",
		"providers/Microsoft.Billing/billingAccounts/1:2/billingProfiles/3/invoiceSections/4": "invoice section reader",
		"providers/Microsoft.Billing/billingAccounts/1:2/customers/5":                         "MCA billing profile reader",
	} {
		_, err := c.RequestReport(context.Background(), mustScope(t, scope), day)
		e, ok := AsError(err)
		if !ok || e.Retryable || !strings.Contains(err.Error(), role) || !strings.Contains(err.Error(), "AuthorizationFailed") {
			t.Errorf("%s: %v", scope, err)
		}
	}
}
