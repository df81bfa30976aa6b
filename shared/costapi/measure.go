package costapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/costsync/costsync/shared/telemetry"
)

// The api names of the requests, in telemetry and logs.
const (
	APIReportRequest   = "cost-details.request"
	APIReportPoll      = "cost-details.poll"
	APIReportDownload  = "report.download"
	APIQuery           = "query"
	APIUsageDetails    = "usage-details"
	APIUsageAggregates = "usage-aggregates"
)

type apiKey struct{}

// withAPI names the api of the requests made with ctx.
func withAPI(ctx context.Context, api string) context.Context {
	return context.WithValue(ctx, apiKey{}, api)
}

// apiOf is the api name of a paged call's op ("usage details" →
// usage-details).
func apiOf(op string) string { return strings.ReplaceAll(op, " ", "-") }

// measure is a per-try policy: each HTTP try (azcore retries 408 and 5xx in
// process) is measured as part of the invocation its context belongs to —
// latency by api and status, 429s and the wait they ask for — and a
// throttled, failed or unanswered try is logged on the invocation's logger.
// It sits after the bearer token policy: token acquisition is measured by
// the credential. No URL is logged or recorded: report links carry a SAS.
type measure struct{}

func (measure) Do(req *policy.Request) (*http.Response, error) {
	ctx := req.Raw().Context()
	api, _ := ctx.Value(apiKey{}).(string)
	if api == "" || telemetry.From(ctx) == nil {
		return req.Next()
	}
	ctx, call := telemetry.StartCall(ctx, api, req.Raw().Method)
	resp, err := req.Next()
	if err != nil {
		kind := "transport"
		if errors.Is(err, context.DeadlineExceeded) {
			kind = "timeout"
		}
		call.End(ctx, 0, 0, kind)
		telemetry.Logger(ctx).Warn("request got no answer", "api", api, "error_type", kind, "error", redactText(err.Error()))
		return resp, err
	}
	var wait time.Duration
	if resp.StatusCode == http.StatusTooManyRequests {
		wait = retryAfter(resp.Header, 60*time.Second)
	}
	call.End(ctx, resp.StatusCode, wait, "")
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		telemetry.Logger(ctx).Warn("request throttled", "api", api, "status", resp.StatusCode, "retry_after_s", wait.Seconds())
	case resp.StatusCode >= 500:
		telemetry.Logger(ctx).Warn("request failed", "api", api, "status", resp.StatusCode)
	}
	return resp, err
}
