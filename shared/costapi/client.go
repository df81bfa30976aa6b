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

// Options configures a Client; nil means defaults.
type Options struct {
	// Cloud selects ARM endpoint, audience and storage host suffix; default public.
	Cloud Cloud
	// Endpoint overrides the cloud's ARM endpoint (the local simulator).
	Endpoint string
	// AllowedHosts are extra host[:port] values that Location and blobLink
	// URLs may point at (tests and the local stack add their loopback host).
	AllowedHosts []string
	// ClientType is sent as the ClientType header; default DefaultClientType.
	ClientType string
	// Transport and retries for the underlying azcore pipeline.
	ClientOptions policy.ClientOptions
}

// Client calls Cost Management. It is safe for concurrent use.
type Client struct {
	arm        *url.URL
	cloud      Cloud
	allowed    map[string]bool
	clientType string
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
	endpoint := cloud.ARM
	if o.Endpoint != "" {
		endpoint = o.Endpoint
	}
	arm, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || arm.Scheme != "https" || arm.Host == "" {
		return nil, fmt.Errorf("cost management endpoint %q: must be an https URL", endpoint)
	}
	c := &Client{arm: arm, cloud: cloud, allowed: map[string]bool{strings.ToLower(arm.Host): true}, clientType: o.ClientType}
	if c.clientType == "" {
		c.clientType = DefaultClientType
	}
	for _, h := range o.AllowedHosts {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			c.allowed[h] = true
		}
	}
	opts := o.ClientOptions
	if opts.Retry.MaxRetries == 0 {
		// Cap the SDK's retries so an invocation fits its budget; the
		// handlers re-enqueue with a delay instead of retrying longer.
		opts.Retry.MaxRetries = 2
		opts.Retry.RetryDelay = 500 * time.Millisecond
		opts.Retry.MaxRetryDelay = 4 * time.Second
		// 429 is not retried in-process: the service's wait is minutes.
		opts.Retry.StatusCodes = []int{http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	}
	scope := strings.TrimRight(cloud.Audience, "/") + "/.default"
	c.pipeline = runtime.NewPipeline("costsync-costapi", "v1", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, []string{scope}, nil)},
	}, &opts)
	c.download = runtime.NewPipeline("costsync-costapi", "v1", runtime.PipelineOptions{}, &opts)
	return c, nil
}

// ReportRequest asks for one Cost Details report.
type ReportRequest struct {
	Metric string // ActualCost or AmortizedCost
	From   string // YYYY-MM-DD
	To     string // YYYY-MM-DD, inclusive
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
}

// RequestReport asks Cost Details for a report of scope.
func (c *Client) RequestReport(ctx context.Context, scope Scope, r ReportRequest) (*Report, error) {
	body, err := json.Marshal(map[string]any{"metric": r.Metric, "timePeriod": map[string]string{"start": r.From, "end": r.To}})
	if err != nil {
		return nil, err
	}
	u := *c.arm
	u.Path = "/" + scope.Path + "/providers/Microsoft.CostManagement/generateCostDetailsReport"
	u.RawQuery = "api-version=" + APIVersion
	req, err := runtime.NewRequest(ctx, http.MethodPost, u.String())
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
	if err := c.checkLink(location, false); err != nil {
		return nil, err
	}
	req, err := runtime.NewRequest(ctx, http.MethodGet, location)
	if err != nil {
		return nil, err
	}
	return c.report(req, scope)
}

func (c *Client) report(req *policy.Request, scope Scope) (*Report, error) {
	req.Raw().Header.Set("ClientType", c.clientType)
	resp, err := c.pipeline.Do(req)
	if err != nil {
		return nil, &Error{Op: opName(req), Scope: scope, Err: err, Retryable: true}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &Error{Op: opName(req), Scope: scope, Err: err, Retryable: true}
	}
	switch resp.StatusCode {
	case http.StatusAccepted:
		loc := resp.Header.Get("Location")
		if loc == "" {
			return nil, &Error{Op: opName(req), Scope: scope, StatusCode: resp.StatusCode, Message: "202 without a Location header", Retryable: true}
		}
		if err := c.checkLink(loc, false); err != nil {
			return nil, err
		}
		return &Report{Location: loc, RetryAfter: retryAfter(resp.Header, 60*time.Second)}, nil
	case http.StatusNoContent:
		return &Report{Done: true, Status: StatusNoDataFound}, nil
	case http.StatusOK:
		return c.result(body, scope)
	}
	return nil, responseError(opName(req), scope, resp, body)
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
			if err := c.checkLink(b.BlobLink, true); err != nil {
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
// authorisation: no bearer token is sent.
func (c *Client) OpenBlob(ctx context.Context, link string) (io.ReadCloser, error) {
	if err := c.checkLink(link, true); err != nil {
		return nil, err
	}
	req, err := runtime.NewRequest(ctx, http.MethodGet, link)
	if err != nil {
		return nil, err
	}
	runtime.SkipBodyDownload(req)
	resp, err := c.download.Do(req)
	if err != nil {
		return nil, &Error{Op: "download report", Err: err, Retryable: true}
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		e := responseError("download report", Scope{}, resp, body)
		if resp.StatusCode == http.StatusForbidden {
			// An expired or revoked SAS: the report must be requested again.
			e.LinkExpired = true
		}
		return nil, e
	}
	return resp.Body, nil
}

// checkLink refuses a link that is not https or not on an allowed host. The
// error names the host, never the query string (it may hold a SAS).
func (c *Client) checkLink(link string, blob bool) error {
	u, err := url.Parse(link)
	if err != nil {
		return &Error{Op: "check link", Message: "link is not a URL", Untrusted: true}
	}
	host := strings.ToLower(u.Host)
	ok := u.Scheme == "https" && (c.allowed[host] || (blob && c.cloud.StorageSuffix != "" && strings.HasSuffix(host, c.cloud.StorageSuffix) && !strings.Contains(host, ":")))
	if !ok {
		return &Error{Op: "check link", Message: fmt.Sprintf("refused link to %s://%s%s: not https on an allowed host", u.Scheme, u.Host, u.Path), Untrusted: true}
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
// Retry-After and every x-ms-ratelimit-*-retry-after header.
func retryAfter(h http.Header, fallback time.Duration) time.Duration {
	var max time.Duration
	found := false
	for k, vs := range h {
		lk := strings.ToLower(k)
		if lk != "retry-after" && !(strings.HasPrefix(lk, "x-ms-ratelimit-") && strings.HasSuffix(lk, "retry-after")) {
			continue
		}
		for _, v := range vs {
			if d, ok := parseRetryAfter(v); ok {
				found = true
				if d > max {
					max = d
				}
			}
		}
	}
	if !found {
		return fallback
	}
	return max
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

// AsError unwraps err to *Error.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
