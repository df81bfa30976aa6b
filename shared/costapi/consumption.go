package costapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Consumption usage details (cost-apis.md §3.1): GET
// {scope}/providers/Microsoft.Consumption/usageDetails, pageable through
// nextLink. It is the source for pay-as-you-go (MOSP, "WebDirect")
// subscriptions, which Cost Details refuses with 422. A throttled call (429)
// carries x-ms-ratelimit-microsoft.consumption-retry-after, which Error's
// RetryAfter takes into account.

// ConsumptionAPIVersion is the Consumption api-version used.
const ConsumptionAPIVersion = "2023-11-01"

// UsageDetailsRequest selects usage details.
type UsageDetailsRequest struct {
	// Metric is ActualCost, AmortizedCost or Usage.
	Metric string
	// From and To are the usage days, YYYY-MM-DD, inclusive.
	From, To string
	// Top bounds the records per page (at most 1000); 0 leaves the
	// service's page size.
	Top int
}

// UsageDetail is one record: Kind is "legacy" (EA, pay-as-you-go) or
// "modern" (MCA). Tags are the record-level tags.
type UsageDetail struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Tags       map[string]string `json:"tags"`
	Properties Properties        `json:"properties"`
}

// UsageDetailsPage is one page of usage details.
type UsageDetailsPage struct {
	Records  []UsageDetail
	NextLink string
}

// IsUnsupportedOffer reports whether err is Cost Details refusing the
// scope's offer (HTTP 422, e.g. "offer type: WebDirect ... is not
// supported"): the scope's costs must come from usage details instead.
func IsUnsupportedOffer(err error) bool {
	e, ok := AsError(err)
	return ok && e.StatusCode == http.StatusUnprocessableEntity
}

// UsageDetails returns one page of usage details of scope: the first when
// next is empty, else the page at next (a NextLink). Legacy scopes (EA,
// pay-as-you-go subscriptions) select days with $filter on usageStart and
// usageEnd; MCA billing scopes with startDate and endDate. AdditionalInfo
// is always expanded: it is part of a line's identity.
func (c *Client) UsageDetails(ctx context.Context, scope Scope, r UsageDetailsRequest, next string) (*UsageDetailsPage, error) {
	link := next
	if link == "" {
		metric, err := consumptionMetric(r.Metric)
		if err != nil {
			return nil, &Error{Op: "usage details", Scope: scope, Message: err.Error()}
		}
		if _, err := parseDay(r.From); err != nil {
			return nil, &Error{Op: "usage details", Scope: scope, Message: "from: " + err.Error()}
		}
		if _, err := parseDay(r.To); err != nil {
			return nil, &Error{Op: "usage details", Scope: scope, Message: "to: " + err.Error()}
		}
		q := url.Values{
			"api-version": {ConsumptionAPIVersion},
			"metric":      {metric},
			"$expand":     {"properties/additionalInfo"},
		}
		switch scope.Kind {
		case MCABillingAccount, MCABillingProfile, MCAInvoiceSection, MCACustomer:
			q.Set("startDate", r.From)
			q.Set("endDate", r.To)
		default:
			q.Set("$filter", fmt.Sprintf("properties/usageStart ge '%s' and properties/usageEnd le '%s'", r.From, r.To))
		}
		if r.Top > 0 {
			q.Set("$top", strconv.Itoa(min(r.Top, 1000)))
		}
		link = c.armURL(scope, "/providers/Microsoft.Consumption/usageDetails", q)
	}
	_, b, err := c.call(ctx, "usage details", scope, http.MethodGet, link, nil)
	if err != nil {
		return nil, err
	}
	var res struct {
		Value    []UsageDetail `json:"value"`
		NextLink string        `json:"nextLink"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, &Error{Op: "usage details", Scope: scope, Err: fmt.Errorf("decode page: %w", err)}
	}
	for i, rec := range res.Value {
		if rec.Kind != "legacy" && rec.Kind != "modern" {
			return nil, &Error{Op: "usage details", Scope: scope, Message: fmt.Sprintf("record %d has kind %q, want legacy or modern", i+1, rec.Kind)}
		}
	}
	if res.NextLink != "" {
		if err := c.checkLink("usage details", res.NextLink, false); err != nil {
			return nil, err
		}
	}
	return &UsageDetailsPage{Records: res.Value, NextLink: res.NextLink}, nil
}

func consumptionMetric(m string) (string, error) {
	switch strings.ToLower(m) {
	case "actualcost":
		return "actualcost", nil
	case "amortizedcost":
		return "amortizedcost", nil
	case "usage":
		return "usage", nil
	}
	return "", errors.New("metric " + strconv.Quote(m) + ": want ActualCost, AmortizedCost or Usage")
}
