package telemetry

import (
	"context"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Credential returns cred measured: every token acquisition the SDK's
// clients ask for (each client caches its token, so these are the real
// acquisitions and refreshes) records MetricTokenDuration, and a span under
// the invocation's. The token itself is never recorded. Off, it returns
// cred.
func (t *Telemetry) Credential(cred azcore.TokenCredential) azcore.TokenCredential {
	if !t.Enabled() {
		return cred
	}
	return &measuredCredential{cred: cred, t: t}
}

type measuredCredential struct {
	cred azcore.TokenCredential
	t    *Telemetry
}

func (c *measuredCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	start := time.Now()
	var span trace.Span
	if trace.SpanContextFromContext(ctx).IsValid() {
		ctx, span = c.t.tracer.Start(ctx, "token", trace.WithSpanKind(trace.SpanKindClient))
	}
	tok, err := c.cred.GetToken(ctx, o)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	c.t.m.tokenDuration.Record(ctx, time.Since(start).Seconds(), attrs(attribute.String(AttrOutcome, outcome)))
	if span != nil {
		if err != nil {
			span.SetStatus(codes.Error, "token acquisition failed")
		}
		span.End()
	}
	return tok, err
}
