package costapi

import (
	"strings"
	"testing"
	"time"
)

func TestLastDayInOneMonth(t *testing.T) {
	for from, want := range map[string]string{
		"2026-10-01": "2026-10-31",
		"2026-02-01": "2026-02-28",
		"2026-10-15": "2026-11-14",
		"2026-01-31": "2026-02-27",
		"2024-01-30": "2024-02-28",
		"2026-12-31": "2027-01-30",
	} {
		f, _ := time.Parse(time.DateOnly, from)
		if got := LastDayInOneMonth(f).Format(time.DateOnly); got != want {
			t.Errorf("LastDayInOneMonth(%s) = %s, want %s", from, got, want)
		}
	}
	today := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	if got := OldestStart(today).Format(time.DateOnly); got != "2025-10-01" {
		t.Errorf("OldestStart = %s", got)
	}
}

func TestValidate(t *testing.T) {
	today := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	const (
		ea      = "providers/Microsoft.Billing/billingAccounts/12345"
		profile = "providers/Microsoft.Billing/billingAccounts/1:2/billingProfiles/3"
	)
	for _, tc := range []struct {
		scope string
		r     ReportRequest
		want  string // "" = valid
	}{
		{sub, ReportRequest{Metric: ActualCost, From: "2026-11-01", To: "2026-11-30"}, ""},
		{sub, ReportRequest{Metric: AmortizedCost, From: "2025-10-01", To: "2025-10-31"}, ""},
		{sub, ReportRequest{Metric: ActualCost, From: "2026-12-01", To: "2026-12-01"}, ""},
		{ea, ReportRequest{Metric: ActualCost, BillingPeriod: "202510"}, ""},
		{ea + "/departments/7", ReportRequest{Metric: ActualCost, BillingPeriod: "202611"}, ""},
		{sub, ReportRequest{Metric: ActualCost, BillingPeriod: "202611"}, ""},
		{profile, ReportRequest{Metric: ActualCost, InvoiceID: "G123456789"}, ""},
		{"providers/Microsoft.Billing/billingAccounts/1:2/customers/9", ReportRequest{Metric: ActualCost, InvoiceID: "M1234567"}, ""},
		{sub, ReportRequest{Metric: "actualcost", From: "2026-11-01", To: "2026-11-01"}, "ActualCost or AmortizedCost"},
		{sub, ReportRequest{Metric: ActualCost, From: "2026-11-01"}, "YYYY-MM-DD"},
		{sub, ReportRequest{Metric: ActualCost, From: "2026-11-01", To: "2026-12-01"}, "at most 1 month per request"},
		{sub, ReportRequest{Metric: ActualCost, From: "2025-09-30", To: "2025-10-01"}, "more than 13 months back"},
		{ea, ReportRequest{Metric: ActualCost, BillingPeriod: "202509"}, "more than 13 months back"},
		{ea, ReportRequest{Metric: ActualCost, BillingPeriod: "202613"}, "YYYYMM"},
		{profile, ReportRequest{Metric: ActualCost, BillingPeriod: "202610"}, "Enterprise Agreement"},
		{profile + "/invoiceSections/4", ReportRequest{Metric: ActualCost, InvoiceID: "G1"}, "billing profile or customer"},
		{ea, ReportRequest{Metric: ActualCost, InvoiceID: "G1"}, "billing profile or customer"},
		{profile, ReportRequest{Metric: ActualCost, InvoiceID: "G1/../x"}, "not an invoice id"},
		{profile, ReportRequest{Metric: ActualCost, InvoiceID: "G1", From: "2026-11-01", To: "2026-11-01"}, "only one of"},
		{ea, ReportRequest{Metric: ActualCost}, "exactly one of"},
	} {
		err := tc.r.Validate(mustScope(t, tc.scope), today)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %+v: %v", tc.scope, tc.r, err)
			}
			continue
		}
		e, ok := AsError(err)
		if !ok || !e.Invalid || e.Retryable || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.scope) {
			t.Errorf("%s %+v: %v, want an invalid-request error naming %q and the scope", tc.scope, tc.r, err, tc.want)
		}
	}
}

func TestRequestBody(t *testing.T) {
	for _, tc := range []struct {
		r    ReportRequest
		want map[string]any
	}{
		{ReportRequest{Metric: ActualCost, From: "2026-11-01", To: "2026-11-02"}, map[string]any{"metric": ActualCost, "timePeriod": map[string]string{"start": "2026-11-01", "end": "2026-11-02"}}},
		{ReportRequest{Metric: AmortizedCost, BillingPeriod: "202610"}, map[string]any{"metric": AmortizedCost, "billingPeriod": "202610"}},
		{ReportRequest{Metric: ActualCost, InvoiceID: "M1"}, map[string]any{"metric": ActualCost, "invoiceId": "M1"}},
	} {
		got := tc.r.body()
		if len(got) != len(tc.want) {
			t.Errorf("%+v: %v", tc.r, got)
		}
		for k := range tc.want {
			if _, ok := got[k]; !ok {
				t.Errorf("%+v: %v lacks %s", tc.r, got, k)
			}
		}
	}
}
