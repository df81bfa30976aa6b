package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/costapi"
)

// The Query, Consumption and Commerce APIs, each called through costsync's
// own client (shared/costapi) against the simulator, checked against the
// ground truth.

const (
	eaSub   = "subscriptions/6a1f3c2e-9b7d-4e21-8c55-0f3e2d1a9b77"
	paygSub = "subscriptions/3f2a9c1e-7b4d-4e21-9a96-0c3e2d1a9b70"
	mcaBP   = "providers/Microsoft.Billing/billingAccounts/5e98e158-1111-2222-3333-444455556666:a1b2c3d4-5555-6666-7777-888899990000_2019-05-31/billingProfiles/AB12-CD34-EF5-GH6"
)

// sourceClient is costsync's client on the simulator, with no SDK retries.
func (e *env) sourceClient() *costapi.Client {
	c, _ := e.costClient(func(o *costapi.Options) { o.ClientOptions.Retry = policy.RetryOptions{MaxRetries: -1} })
	return c
}

func apiScope(t *testing.T, s string) costapi.Scope {
	t.Helper()
	sc, err := costapi.ParseScope(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// truthByDay is the truth's billed cost and usage quantity per day.
func (e *env) truthByDay(scope, metric, from, to string) (cost, qty map[string]decimal.Decimal) {
	tr := e.truth(scope, metric, from, to)
	cost, qty = map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	for _, d := range tr.Days {
		cost[d.Date] = decimal.RequireFromString(d.BilledCost)
		qty[d.Date] = decimal.RequireFromString(d.UsageQuantity)
	}
	return cost, qty
}

func compareDays(t *testing.T, what string, want, got map[string]decimal.Decimal) {
	t.Helper()
	for d, w := range want {
		if g := got[d]; !g.Equal(w) {
			t.Errorf("%s %s: got %s, want %s", what, d, g, w)
		}
	}
	for d, g := range got {
		if _, ok := want[d]; !ok && !g.IsZero() {
			t.Errorf("%s %s: got %s for a day outside the truth", what, d, g)
		}
	}
}

func TestQueryTwelvePagesMatchTruth(t *testing.T) {
	e := newEnv(t, nil)
	c := e.sourceClient()
	ctx := context.Background()
	sc := apiScope(t, eaSub)
	def := costapi.DailyCostQuery("ActualCost", "2026-10-01", "2026-10-31")
	all, pages, err := c.QueryAll(ctx, sc, def, nil)
	if err != nil || pages != 1 {
		t.Fatalf("one page: %d pages, %v", pages, err)
	}
	n := len(all)
	top := 0
	for k := 1; k <= n; k++ {
		if (n+k-1)/k == 12 {
			top = k
			break
		}
	}
	if top == 0 {
		t.Fatalf("%d rows cannot make 12 pages", n)
	}
	rows, pages, err := c.QueryAll(ctx, sc, def, &costapi.QueryOptions{Top: top})
	if err != nil {
		t.Fatal(err)
	}
	if pages != 12 || len(rows) != n {
		t.Fatalf("paged query: %d pages, %d rows; want 12 pages, %d rows", pages, len(rows), n)
	}
	got := map[string]decimal.Decimal{}
	for _, d := range costapi.SumQueryRows(rows, "Cost") {
		if d.Currency != "USD" {
			t.Errorf("currency %q", d.Currency)
		}
		got[d.Date] = d.Cost
	}
	want, _ := e.truthByDay(eaSub, "ActualCost", "2026-10-01", "2026-10-31")
	compareDays(t, "query cost", want, got)
}

func TestQueryNextLinkNeedsTheSameBody(t *testing.T) {
	e := newEnv(t, nil)
	c := e.sourceClient()
	ctx := context.Background()
	sc := apiScope(t, eaSub)
	p, err := c.Query(ctx, sc, costapi.DailyCostQuery("ActualCost", "2026-10-01", "2026-10-31"), "", &costapi.QueryOptions{Top: 5})
	if err != nil || p.NextLink == "" {
		t.Fatalf("first page: %v, next %q", err, p.NextLink)
	}
	if p.QPUConsumed != "1" || !strings.Contains(p.QPURemaining, "QueryQPUPer10s:") {
		t.Errorf("QPU headers: consumed %q remaining %q", p.QPUConsumed, p.QPURemaining)
	}
	other := costapi.DailyCostQuery("AmortizedCost", "2026-10-01", "2026-10-31")
	_, err = c.Query(ctx, sc, other, p.NextLink, nil)
	if e, ok := costapi.AsError(err); !ok || e.StatusCode != 400 {
		t.Fatalf("another body on nextLink: %v, want 400", err)
	}
}

func TestQueryShapes(t *testing.T) {
	e := newEnv(t, nil)
	c := e.sourceClient()
	ctx := context.Background()
	sc := apiScope(t, mcaBP)
	from, to := "2026-10-01", "2026-10-31"
	want, _ := e.truthByDay(mcaBP, "ActualCost", from, to)
	monthTotal := decimal.Zero
	for _, v := range want {
		monthTotal = monthTotal.Add(v)
	}

	t.Run("monthly by tag", func(t *testing.T) {
		def := &costapi.QueryDefinition{
			Type: "ActualCost", Timeframe: "Custom",
			TimePeriod: &costapi.QueryTimePeriod{From: from + "T00:00:00Z", To: to + "T00:00:00Z"},
			Dataset: costapi.QueryDataset{
				Granularity: "Monthly",
				Aggregation: map[string]costapi.QueryAggregation{"a": {Name: "Cost", Function: "Sum"}, "b": {Name: "CostUSD", Function: "Sum"}},
				Grouping:    []costapi.QueryGrouping{{Type: "TagKey", Name: "env"}},
			},
		}
		rows, _, err := c.QueryAll(ctx, sc, def, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum := decimal.Zero
		for _, r := range rows {
			if r.Date != from || r.Currency != "EUR" {
				t.Errorf("row date %q currency %q", r.Date, r.Currency)
			}
			if _, ok := r.Dimensions["TagValue"]; !ok {
				t.Errorf("no TagValue in %v", r.Dimensions)
			}
			if r.Values["CostUSD"].Equal(r.Values["Cost"]) {
				t.Errorf("USD equals EUR cost: %s", r.Values["Cost"])
			}
			sum = sum.Add(r.Values["Cost"])
		}
		if !sum.Equal(monthTotal) {
			t.Errorf("monthly total %s, want %s", sum, monthTotal)
		}
	})

	t.Run("filter by meter category", func(t *testing.T) {
		def := costapi.DailyCostQuery("ActualCost", from, to)
		def.Dataset.Grouping = []costapi.QueryGrouping{{Type: "Dimension", Name: "MeterCategory"}}
		all, _, err := c.QueryAll(ctx, sc, def, nil)
		if err != nil {
			t.Fatal(err)
		}
		def.Dataset.Filter = &costapi.QueryFilter{Or: []costapi.QueryFilter{
			{Dimensions: &costapi.QueryComparison{Name: "MeterCategory", Operator: "In", Values: []string{"storage"}}},
			{Dimensions: &costapi.QueryComparison{Name: "MeterCategory", Operator: "In", Values: []string{"Virtual Machines"}}},
		}}
		some, _, err := c.QueryAll(ctx, sc, def, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantN := 0
		for _, r := range all {
			if m := r.Dimensions["MeterCategory"]; m == "Storage" || m == "Virtual Machines" {
				wantN++
			}
		}
		if len(some) != wantN || wantN == 0 || wantN == len(all) {
			t.Errorf("filtered %d rows of %d, want %d", len(some), len(all), wantN)
		}
	})

	t.Run("invalid definitions", func(t *testing.T) {
		bad := costapi.DailyCostQuery("ActualCost", from, to)
		bad.Dataset.Grouping = []costapi.QueryGrouping{{Type: "Dimension", Name: "NoSuchDimension"}}
		_, err := c.Query(ctx, sc, bad, "", nil)
		if e, ok := costapi.AsError(err); !ok || e.StatusCode != 400 || !strings.Contains(e.Message, "NoSuchDimension") {
			t.Errorf("unknown dimension: %v", err)
		}
		bad = costapi.DailyCostQuery("Forecast", from, to)
		if _, err := c.Query(ctx, sc, bad, "", nil); err == nil || !strings.Contains(err.Error(), "ActualCost, AmortizedCost or Usage") {
			t.Errorf("bad type not refused before the call: %v", err)
		}
	})
}

func TestQueryThrottleQPU(t *testing.T) {
	e := newEnv(t, func(c *config) { c.enforceQuota = true })
	c := e.sourceClient()
	ctx := context.Background()
	sc := apiScope(t, eaSub)
	def := costapi.DailyCostQuery("ActualCost", "2026-10-01", "2026-10-31")
	var err error
	for i := 0; i < 13 && err == nil; i++ {
		_, err = c.Query(ctx, sc, def, "", nil)
	}
	ce, ok := costapi.AsError(err)
	if !ok || !ce.Throttled || ce.RetryAfter < time.Second {
		t.Fatalf("13 queries in a row: %v, want a 429 with a wait", err)
	}

	// A throttle fault answers with the QPU header only: the client takes it.
	e2 := newEnv(t, func(c *config) { c.faults.ThrottleRate = 1; c.retryAfter = 7 })
	_, err = e2.sourceClient().Query(ctx, sc, def, "", nil)
	if ce, ok := costapi.AsError(err); !ok || ce.StatusCode != 429 || ce.RetryAfter != 8*time.Second {
		t.Fatalf("throttle fault: %v, want 429 waiting the qpu-retry-after 8s", err)
	}
}

func TestUsageDetailsPagesMatchTruth(t *testing.T) {
	for _, tc := range []struct {
		name, scope, kind, costProp string
	}{
		{"ea legacy", eaSub, "legacy", "cost"},
		{"payg legacy", paygSub, "legacy", "cost"},
		{"mca modern", mcaBP, "modern", "costInBillingCurrency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.sourceClient()
			sc := apiScope(t, tc.scope)
			from, to := "2026-10-01", "2026-10-10"
			req := costapi.UsageDetailsRequest{Metric: "ActualCost", From: from, To: to, Top: 97}
			got := map[string]decimal.Decimal{}
			next, pages := "", 0
			for {
				p, err := c.UsageDetails(context.Background(), sc, req, next)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, r := range p.Records {
					if r.Kind != tc.kind {
						t.Fatalf("kind %q, want %q", r.Kind, tc.kind)
					}
					day := r.Properties.Text("date")[:10]
					got[day] = got[day].Add(decimal.RequireFromString(r.Properties.Text(tc.costProp)))
					if r.Properties.Text("additionalInfo") == "" && strings.Contains(r.Properties.Text("meterId"), "x") {
						t.Errorf("no additionalInfo")
					}
				}
				if p.NextLink == "" {
					break
				}
				next = p.NextLink
			}
			if pages < 3 {
				t.Errorf("%d pages; the test wants paging", pages)
			}
			want, _ := e.truthByDay(tc.scope, "ActualCost", from, to)
			compareDays(t, "usage details cost", want, got)
		})
	}
}

func TestCostDetailsRefusesPayAsYouGo(t *testing.T) {
	e := newEnv(t, nil)
	c := e.sourceClient()
	_, err := c.RequestReport(context.Background(), apiScope(t, paygSub), costapi.ReportRequest{Metric: "ActualCost", From: "2026-10-01", To: "2026-10-01"})
	if !costapi.IsUnsupportedOffer(err) || !strings.Contains(err.Error(), "WebDirect") {
		t.Fatalf("pay-as-you-go report: %v, want 422 naming WebDirect", err)
	}
	if _, err := c.RequestReport(context.Background(), apiScope(t, eaSub), costapi.ReportRequest{Metric: "ActualCost", From: "2026-10-01", To: "2026-10-01"}); err != nil {
		t.Fatalf("EA report: %v", err)
	}
}

func TestUsageAggregatesByReportedTime(t *testing.T) {
	for _, gran := range []string{costapi.Daily, costapi.Hourly} {
		t.Run(gran, func(t *testing.T) {
			e := newEnv(t, func(c *config) { c.pageRows = 40; c.rowsPerDay = 10 })
			c := e.sourceClient()
			sc := apiScope(t, eaSub)
			from := time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)
			to := time.Date(2026, 10, 7, 0, 0, 0, 0, time.UTC)
			// Usage of 5..7 October is reported up to 3 days later.
			req := costapi.UsageAggregatesRequest{ReportedStart: from, ReportedEnd: to.AddDate(0, 0, 4), Granularity: gran, ShowDetails: true}
			got := map[string]decimal.Decimal{}
			next, pages, outside, instance, legacy := "", 0, 0, 0, 0
			for {
				p, err := c.UsageAggregates(context.Background(), sc, req, next)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, r := range p.Records {
					start, err := time.Parse(time.RFC3339, r.Properties.Text("usageStartTime"))
					if err != nil {
						t.Fatal(err)
					}
					if gran == costapi.Hourly && start.Minute() != 0 {
						t.Errorf("hourly record at %s", start)
					}
					switch {
					case r.Properties.Text("instanceData") != "":
						instance++
						var inst map[string]map[string]any
						if err := json.Unmarshal([]byte(r.Properties.Text("instanceData")), &inst); err != nil || inst["Microsoft.Resources"]["resourceUri"] == nil {
							t.Fatalf("instanceData %q: %v", r.Properties.Text("instanceData"), err)
						}
					case strings.Contains(r.Properties.Text("infoFields"), "meteredService"):
						legacy++
					}
					if start.Before(from) || start.After(to.Add(23*time.Hour)) {
						outside++ // reported in range, used before it
						continue
					}
					day := start.Format(time.DateOnly)
					got[day] = got[day].Add(decimal.RequireFromString(r.Properties.Text("quantity")))
				}
				if p.NextLink == "" {
					break
				}
				if !strings.Contains(p.NextLink, "continuationToken=") {
					t.Fatalf("nextLink without continuationToken: %s", p.NextLink)
				}
				next = p.NextLink
			}
			if pages < 2 || outside == 0 || instance == 0 || legacy == 0 {
				t.Errorf("pages %d, records used before the range %d, with instanceData %d, with infoFields %d: want all > 0 (pages > 1)", pages, outside, instance, legacy)
			}
			_, want := e.truthByDay(eaSub, "ActualCost", "2026-10-05", "2026-10-07")
			compareDays(t, "usage quantity", want, got)
		})
	}
}

func TestUsageAggregatesTimeRules(t *testing.T) {
	e := newEnv(t, nil)
	c := e.sourceClient()
	sc := apiScope(t, eaSub)
	midnight := time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)
	cest := time.FixedZone("CEST", 2*3600)
	for _, tc := range []struct {
		name string
		req  costapi.UsageAggregatesRequest
		want string
	}{
		{"daily not midnight", costapi.UsageAggregatesRequest{ReportedStart: midnight.Add(time.Hour), ReportedEnd: midnight.AddDate(0, 0, 1)}, "midnight"},
		{"hourly not whole hour", costapi.UsageAggregatesRequest{ReportedStart: midnight.Add(90 * time.Minute), ReportedEnd: midnight.AddDate(0, 0, 1), Granularity: costapi.Hourly}, "whole hour"},
		{"not UTC", costapi.UsageAggregatesRequest{ReportedStart: midnight.In(cest), ReportedEnd: midnight.AddDate(0, 0, 1)}, "UTC"},
		{"end before start", costapi.UsageAggregatesRequest{ReportedStart: midnight, ReportedEnd: midnight}, "not after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.UsageAggregates(context.Background(), sc, tc.req, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
	// The service applies the same rules.
	q := url.Values{"api-version": {"2015-06-01-preview"}, "reportedStartTime": {"2026-10-05T01:00:00Z"}, "reportedEndTime": {"2026-10-06T00:00:00Z"}}
	resp, b := e.do("GET", "/"+eaSub+"/providers/Microsoft.Commerce/UsageAggregates?"+q.Encode(), "", e.armHeaders())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "midnight") {
		t.Fatalf("daily at 01:00: %d %s", resp.StatusCode, b)
	}
}
