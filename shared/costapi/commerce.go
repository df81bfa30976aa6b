package costapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Commerce UsageAggregates (cost-apis.md §3.2): GET
// /subscriptions/{id}/providers/Microsoft.Commerce/UsageAggregates with
// reportedStartTime and reportedEndTime — when usage was reported, not when
// it happened — Daily or Hourly, continuation through nextLink. Quantities
// only, no prices.

// CommerceAPIVersion is the Commerce api-version.
const CommerceAPIVersion = "2015-06-01-preview"

// Granularities of usage aggregates.
const (
	Daily  = "Daily"
	Hourly = "Hourly"
)

// UsageAggregatesRequest selects usage by reported time.
type UsageAggregatesRequest struct {
	// ReportedStart and ReportedEnd bound the reported time, in UTC. Daily
	// needs both at midnight, Hourly at whole hours.
	ReportedStart, ReportedEnd time.Time
	// Granularity is Daily (default) or Hourly.
	Granularity string
	// ShowDetails asks for one record per resource instance, with its
	// instanceData; false sums the instances of a meter.
	ShowDetails bool
}

// Validate checks the request against the API's rules before any call: UTC
// times, midnight (Daily) or whole hours (Hourly), end after start.
func (r UsageAggregatesRequest) Validate() error {
	gran := r.Granularity
	if gran == "" {
		gran = Daily
	}
	for name, t := range map[string]time.Time{"reportedStartTime": r.ReportedStart, "reportedEndTime": r.ReportedEnd} {
		if t.IsZero() {
			return fmt.Errorf("usage aggregates: %s is required", name)
		}
		if _, off := t.Zone(); off != 0 {
			return fmt.Errorf("usage aggregates: %s %s is not in UTC", name, t.Format(time.RFC3339))
		}
		switch gran {
		case Daily:
			if !t.Equal(t.Truncate(24 * time.Hour)) {
				return fmt.Errorf("usage aggregates: %s %s must be at midnight UTC with Daily granularity", name, t.Format(time.RFC3339))
			}
		case Hourly:
			if !t.Equal(t.Truncate(time.Hour)) {
				return fmt.Errorf("usage aggregates: %s %s must be a whole hour with Hourly granularity", name, t.Format(time.RFC3339))
			}
		default:
			return fmt.Errorf("usage aggregates: granularity %q: want Daily or Hourly", r.Granularity)
		}
	}
	if !r.ReportedEnd.After(r.ReportedStart) {
		return fmt.Errorf("usage aggregates: reportedEndTime %s is not after reportedStartTime %s",
			r.ReportedEnd.Format(time.RFC3339), r.ReportedStart.Format(time.RFC3339))
	}
	return nil
}

// UsageAggregate is one record of usage.
type UsageAggregate struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Properties Properties `json:"properties"`
}

// UsageAggregatesPage is one page of usage aggregates.
type UsageAggregatesPage struct {
	Records  []UsageAggregate
	NextLink string
}

// UsageAggregates returns one page of a subscription's usage: the first
// when next is empty, else the page at next (a NextLink carrying the
// continuationToken).
func (c *Client) UsageAggregates(ctx context.Context, scope Scope, r UsageAggregatesRequest, next string) (*UsageAggregatesPage, error) {
	if scope.Kind != Subscription {
		return nil, &Error{Op: "usage aggregates", Scope: scope, Message: "usage aggregates exist for subscriptions only"}
	}
	link := next
	if link == "" {
		if err := r.Validate(); err != nil {
			return nil, &Error{Op: "usage aggregates", Scope: scope, Message: err.Error()}
		}
		gran := r.Granularity
		if gran == "" {
			gran = Daily
		}
		q := url.Values{
			"api-version":            {CommerceAPIVersion},
			"reportedStartTime":      {r.ReportedStart.UTC().Format(time.RFC3339)},
			"reportedEndTime":        {r.ReportedEnd.UTC().Format(time.RFC3339)},
			"aggregationGranularity": {gran},
			"showDetails":            {strconv.FormatBool(r.ShowDetails)},
		}
		link = c.armURL(scope, "/providers/Microsoft.Commerce/UsageAggregates", q)
	}
	_, b, err := c.call(ctx, "usage aggregates", scope, http.MethodGet, link, nil)
	if err != nil {
		return nil, err
	}
	var res struct {
		Value    []UsageAggregate `json:"value"`
		NextLink string           `json:"nextLink"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, &Error{Op: "usage aggregates", Scope: scope, Err: fmt.Errorf("decode page: %w", err)}
	}
	if res.NextLink != "" {
		if err := c.checkLink("usage aggregates", res.NextLink, false); err != nil {
			return nil, err
		}
	}
	return &UsageAggregatesPage{Records: res.Value, NextLink: res.NextLink}, nil
}

// parseDay reads YYYY-MM-DD.
func parseDay(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not YYYY-MM-DD", s)
	}
	return t, nil
}
