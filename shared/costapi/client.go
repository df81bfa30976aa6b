// Package costapi is the Cost Management client: Cost Details report requests,
// polling and report downloads, with scopes, clouds, rate-limit headers and a
// link allow-list. It reports facts (status codes, waits the service asked
// for); the handlers decide what to do with them.
package costapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
)

// APIVersion is the Cost Details api-version used for requests.
const APIVersion = "2024-08-01"

// DefaultClientType is sent in the ClientType header of every request, which
// Cost Management uses for its per-client quota.
const DefaultClientType = "costsync"

// Defaults of the bounds on one call; see Options.
const (
	DefaultTryTimeout  = 45 * time.Second
	DefaultMaxRetries  = 2
	DefaultIdleTimeout = 60 * time.Second
)

// Options configures a Client; nil means defaults.
type Options struct {
	// Cloud selects ARM endpoint, audience and storage host suffix; default public.
	Cloud Cloud
	// Endpoint overrides the cloud's ARM endpoint (the local simulator). Its
	// host must be the cloud's ARM host or one of AllowedHosts.
	Endpoint string
	// AllowedHosts are extra host[:port] values that Location and blobLink
	// URLs may point at (tests and the local stack add their loopback host).
	AllowedHosts []string
	// ClientType is sent as the ClientType header; default DefaultClientType.
	ClientType string
	// Now is the clock the request limits are checked with; default time.Now.
	Now func() time.Time
	// TryTimeout bounds one try of an ARM call; default DefaultTryTimeout.
	TryTimeout time.Duration
	// IdleTimeout bounds the wait for a report download's response headers,
	// and then for each next piece of its body; default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// ClientOptions are the transport and retries of the underlying azcore
	// pipelines. Retries of 408 and 5xx and of network errors are capped
	// (default DefaultMaxRetries, with azcore's jittered exponential delay)
	// so that a call fits in an invocation; 429 is never retried in-process:
	// the caller waits in the queue. Redirects are never followed.
	ClientOptions policy.ClientOptions
}

// Client calls Cost Management. It is safe for concurrent use.
type Client struct {
	arm        *url.URL
	cloud      Cloud
	allowed    map[string]bool
	clientType string
	now        func() time.Time
	pipeline   runtime.Pipeline // bearer token for ARM
	download   runtime.Pipeline // no credential: SAS links carry their own
}

// New builds a Client. It makes no network calls.
func New(cred azcore.TokenCredential, o *Options) (*Client, error) {
	if o == nil {
		o = &Options{}
	}
	cloud := o.Cloud
	if cloud.ARM == "" {
		cloud = Clouds["public"]
	}
	cloudARM, err := url.Parse(cloud.ARM)
	if err != nil {
		return nil, fmt.Errorf("cloud %s: ARM endpoint %q: %w", cloud.Name, cloud.ARM, err)
	}
	c := &Client{cloud: cloud, allowed: map[string]bool{strings.ToLower(cloudARM.Host): true}, clientType: o.ClientType, now: o.Now}
	for _, h := range o.AllowedHosts {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			c.allowed[h] = true
		}
	}
	endpoint := cloud.ARM
	if o.Endpoint != "" {
		endpoint = o.Endpoint
	}
	c.arm, err = url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || c.arm.Scheme != "https" || c.arm.Host == "" {
		return nil, fmt.Errorf("cost management endpoint %q: must be an https URL", endpoint)
	}
	if !c.allowed[strings.ToLower(c.arm.Host)] {
		return nil, fmt.Errorf("cost management endpoint %q: host %s is not the %s cloud's ARM host; list it in the allowed hosts to use it", endpoint, c.arm.Host, cloud.Name)
	}
	if c.clientType == "" {
		c.clientType = DefaultClientType
	}
	if c.now == nil {
		c.now = time.Now
	}
	opts := o.ClientOptions
	opts.Transport = noRedirects(opts.Transport)
	if opts.Retry.MaxRetries == 0 {
		opts.Retry.MaxRetries = DefaultMaxRetries
		opts.Retry.RetryDelay = 500 * time.Millisecond
		opts.Retry.MaxRetryDelay = 4 * time.Second
	}
	// 429 is not retried in-process: the service's wait is minutes.
	opts.Retry.StatusCodes = []int{http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	download := opts
	opts.Retry.TryTimeout = o.TryTimeout
	if opts.Retry.TryTimeout == 0 {
		opts.Retry.TryTimeout = DefaultTryTimeout
	}
	idle := o.IdleTimeout
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	scope := strings.TrimRight(cloud.Audience, "/") + "/.default"
	c.pipeline = runtime.NewPipeline("costsync-costapi", "v1", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, []string{scope}, nil), measure{}},
	}, &opts)
	// A download streams for as long as it makes progress: no per-try
	// timeout (azcore's would cut a long body), an idle timeout instead.
	c.download = runtime.NewPipeline("costsync-costapi", "v1", runtime.PipelineOptions{
		PerRetry: []policy.Policy{idleTimeout{idle}, measure{}},
	}, &download)
	return c, nil
}

// noRedirects returns an HTTP client that never follows a redirect: a link
// is followed only where the allow-list says, and a redirect would leave it.
func noRedirects(t policy.Transporter) policy.Transporter {
	var hc http.Client
	switch t := t.(type) {
	case nil:
		hc.Transport = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Client:
		hc = *t
	default:
		return t // a custom transporter decides for itself
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// Blob is one part of a completed report.
type Blob struct {
	Link  string
	Bytes int64
}

// Report is the state of a report request after a create or poll call.
type Report struct {
	// Location is where to poll next; empty once the report is done.
	Location string
	// RetryAfter is how long the service asked to wait before polling.
	RetryAfter time.Duration
	// Done is true when Status is final.
	Done bool
	// Status is Completed, NoDataFound or Failed when Done; a create answered
	// 204 is reported as NoDataFound.
	Status    string
	Blobs     []Blob
	ValidTill time.Time
	// Message is the service's error text for a Failed report.
	Message string
	// QuotaRemaining is the smallest x-ms-ratelimit-remaining-* value the
	// answer carried, -1 when it carried none (a fact for rate governing).
	QuotaRemaining int
}

// Expired tells whether the report's links are no longer valid at now, or
// will not stay valid for margin more: the report must be requested again
// rather than copied.
func (r *Report) Expired(now time.Time, margin time.Duration) bool {
	return !r.ValidTill.IsZero() && !now.Add(margin).Before(r.ValidTill)
}

// RequestReport asks Cost Details for a report of scope. A request that
// breaks a documented limit is refused before any call (Error.Invalid).
func (c *Client) RequestReport(ctx context.Context, scope Scope, r ReportRequest) (*Report, error) {
	if err := r.Validate(scope, c.now().UTC()); err != nil {
		return nil, err
	}
	body, err := json.Marshal(r.body())
	if err != nil {
		return nil, err
	}
	u := *c.arm
	u.Path = "/" + scope.Path + "/providers/Microsoft.CostManagement/generateCostDetailsReport"
	u.RawQuery = "api-version=" + APIVersion
	req, err := runtime.NewRequest(withAPI(ctx, APIReportRequest), http.MethodPost, u.String())
	if err != nil {
		return nil, err
	}
	if err := req.SetBody(streaming.NopCloser(bytes.NewReader(body)), "application/json"); err != nil {
		return nil, err
	}
	return c.report(req, scope)
}

// PollReport follows a Location returned by RequestReport or PollReport. The
// link is refused unless it is https and on an allowed host.
func (c *Client) PollReport(ctx context.Context, scope Scope, location string) (*Report, error) {
	if err := c.checkLink("poll report", location, false); err != nil {
		return nil, err
	}
	req, err := runtime.NewRequest(withAPI(ctx, APIReportPoll), http.MethodGet, location)
	if err != nil {
		return nil, err
	}
	return c.report(req, scope)
}

func (c *Client) report(req *policy.Request, scope Scope) (*Report, error) {
	op := opName(req)
	req.Raw().Header.Set("ClientType", c.clientType)
	resp, err := c.pipeline.Do(req)
	if err != nil {
		return nil, transportError(op, scope, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, transportError(op, scope, err)
	}
	remaining := quotaRemaining(resp.Header)
	switch resp.StatusCode {
	case http.StatusAccepted:
		loc := resp.Header.Get("Location")
		if loc == "" {
			return nil, &Error{Op: op, Scope: scope, StatusCode: resp.StatusCode, Message: "202 without a Location header", Retryable: true}
		}
		if err := c.checkLink(op, loc, false); err != nil {
			return nil, err
		}
		return &Report{Location: loc, RetryAfter: retryAfter(resp.Header, 60*time.Second), QuotaRemaining: remaining}, nil
	case http.StatusNoContent:
		return &Report{Done: true, Status: StatusNoDataFound, QuotaRemaining: remaining}, nil
	case http.StatusOK:
		rep, err := c.result(body, scope)
		if rep != nil {
			rep.QuotaRemaining = remaining
		}
		return rep, err
	}
	return nil, responseError(op, scope, resp, body)
}

// The final report statuses.
const (
	StatusCompleted   = "Completed"
	StatusNoDataFound = "NoDataFound"
	StatusFailed      = "Failed"
)

func (c *Client) result(body []byte, scope Scope) (*Report, error) {
	var res struct {
		Status   string `json:"status"`
		Manifest struct {
			Blobs []struct {
				BlobLink  string `json:"blobLink"`
				ByteCount int64  `json:"byteCount"`
			} `json:"blobs"`
		} `json:"manifest"`
		ValidTill string `json:"validTill"`
		Error     *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, &Error{Op: "report result", Scope: scope, Err: fmt.Errorf("decode: %w", err)}
	}
	r := &Report{Done: true, Status: res.Status}
	if res.ValidTill != "" {
		if t, err := time.Parse(time.RFC3339Nano, res.ValidTill); err == nil {
			r.ValidTill = t
		}
	}
	switch res.Status {
	case StatusCompleted:
		for _, b := range res.Manifest.Blobs {
			if err := c.checkLink("report result", b.BlobLink, true); err != nil {
				return nil, err
			}
			r.Blobs = append(r.Blobs, Blob{Link: b.BlobLink, Bytes: b.ByteCount})
		}
	case StatusNoDataFound:
	case StatusFailed:
		if res.Error != nil {
			r.Message = strings.TrimSpace(res.Error.Code + " " + res.Error.Message)
		}
	default:
		// The enum is modelled as a string: an unknown status is not final.
		return nil, &Error{Op: "report result", Scope: scope, Message: fmt.Sprintf("unknown report status %q", res.Status), Retryable: true}
	}
	return r, nil
}

// OpenBlob opens a report part for streaming. The SAS link carries its own
// authorisation: no bearer token is sent. A link that no longer works (403
// or 404 from storage) is reported as Error.LinkExpired: the report must be
// requested again. Read errors of the body are *Error too, retryable.
func (c *Client) OpenBlob(ctx context.Context, link string) (io.ReadCloser, error) {
	const op = "download report"
	if err := c.checkLink(op, link, true); err != nil {
		return nil, err
	}
	req, err := runtime.NewRequest(withAPI(ctx, APIReportDownload), http.MethodGet, link)
	if err != nil {
		return nil, err
	}
	runtime.SkipBodyDownload(req)
	resp, err := c.download.Do(req)
	if err != nil {
		return nil, transportError(op, Scope{}, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		e := responseError(op, Scope{}, resp, body)
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound {
			// An expired or revoked SAS, or a report the service dropped.
			e.LinkExpired = true
		}
		return nil, e
	}
	return &readErrors{rc: resp.Body, op: op}, nil
}

// readErrors turns body read errors into retryable *Error values whose text
// holds no URL.
type readErrors struct {
	rc io.ReadCloser
	op string
}

func (r *readErrors) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = transportError(r.op, Scope{}, err)
	}
	return n, err
}

func (r *readErrors) Close() error { return r.rc.Close() }

// checkLink refuses a link that is not https or not on an allowed host:
// Location and nextLink on the ARM host, blobLink (blob true) also on the
// cloud's storage hosts. The error names the host and path, never the query
// string (it may hold a SAS).
func (c *Client) checkLink(op, link string, blob bool) error {
	u, err := url.Parse(link)
	if err != nil {
		return &Error{Op: op, Message: "refused a link that is not a URL", Untrusted: true}
	}
	host := strings.ToLower(u.Host)
	ok := u.Scheme == "https" && u.User == nil && (c.allowed[host] ||
		(blob && c.cloud.StorageSuffix != "" && strings.HasSuffix(host, c.cloud.StorageSuffix) && !strings.Contains(host, ":")))
	if !ok {
		return &Error{Op: op, Message: fmt.Sprintf("refused link to %s: not https on an allowed host of the %s cloud", redactURL(u), c.cloud.Name), Untrusted: true}
	}
	return nil
}

func opName(req *policy.Request) string {
	if req.Raw().Method == http.MethodPost {
		return "request report"
	}
	return "poll report"
}

// retryAfter returns the largest wait any of the service's headers asks for:
// Retry-After and every x-ms-ratelimit-*-retry-after header (costmanagement
// qpu, entity, tenant, client, clienttype; consumption).
func retryAfter(h http.Header, fallback time.Duration) time.Duration {
	var longest time.Duration
	found := false
	for k, vs := range h {
		lk := strings.ToLower(k)
		if lk != "retry-after" && !(strings.HasPrefix(lk, "x-ms-ratelimit-") && strings.HasSuffix(lk, "retry-after")) {
			continue
		}
		for _, v := range vs {
			if d, ok := parseRetryAfter(v); ok {
				found = true
				longest = max(longest, d)
			}
		}
	}
	if !found {
		return fallback
	}
	return longest
}

func parseRetryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// quotaRemaining is the smallest x-ms-ratelimit-remaining-* value, or -1.
func quotaRemaining(h http.Header) int {
	var vals []int
	for k, vs := range h {
		if !strings.HasPrefix(strings.ToLower(k), "x-ms-ratelimit-remaining-") {
			continue
		}
		for _, v := range vs {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				vals = append(vals, n)
			}
		}
	}
	if len(vals) == 0 {
		return -1
	}
	return slices.Min(vals)
}

// AsError unwraps err to *Error.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
