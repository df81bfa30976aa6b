package costapi

import (
	"fmt"
	"regexp"
	"time"
)

// ReportRequest asks for one Cost Details report. Exactly one period is
// given: a time period (From and To), an EA billing period or an MCA
// invoice id.
type ReportRequest struct {
	Metric string // ActualCost or AmortizedCost
	From   string // YYYY-MM-DD
	To     string // YYYY-MM-DD, inclusive
	// BillingPeriod is an EA billing month, YYYYMM.
	BillingPeriod string
	// InvoiceID is an MCA invoice, at a billing profile or customer scope.
	InvoiceID string
}

// The metrics Cost Details serves.
const (
	ActualCost    = "ActualCost"
	AmortizedCost = "AmortizedCost"
)

// HistoryMonths is how far back Cost Details serves data: the start may not
// be before the first day of the month HistoryMonths before the current
// month (cost-apis.md §1.7).
const HistoryMonths = 13

// OldestStart is the first day Cost Details serves on today.
func OldestStart(today time.Time) time.Time {
	return time.Date(today.Year(), today.Month()-HistoryMonths, 1, 0, 0, 0, 0, time.UTC)
}

// LastDayInOneMonth is the last end date a report that starts on from may
// have: one month or less, the day before the same day of the next month
// (the end of the next month when that day does not exist). A calendar
// month always fits.
func LastDayInOneMonth(from time.Time) time.Time {
	y, m, d := from.Date()
	next := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	last := next.AddDate(0, 1, -1).Day()
	return time.Date(y, m+1, min(d, last), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
}

var (
	reBillingPeriod = regexp.MustCompile(`^\d{4}(0[1-9]|1[0-2])$`)
	reInvoiceID     = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
)

// Validate applies the service's documented request rules before any call
// (cost-apis.md §1.2, §1.6): one metric of two; one of time period, billing
// period and invoice id; at most one month; no older than 13 months;
// billingPeriod not at MCA scopes; invoiceId only at MCA billing profile and
// customer scopes. today is the current date. The error names the rule.
func (r ReportRequest) Validate(scope Scope, today time.Time) error {
	bad := func(format string, args ...any) error {
		return &Error{Op: "request report", Scope: scope, Message: fmt.Sprintf(format, args...), Invalid: true}
	}
	if r.Metric != ActualCost && r.Metric != AmortizedCost {
		return bad("metric %q: Cost Details serves ActualCost or AmortizedCost", r.Metric)
	}
	n := 0
	for _, given := range []bool{r.From != "" || r.To != "", r.BillingPeriod != "", r.InvoiceID != ""} {
		if given {
			n++
		}
	}
	if n != 1 {
		return bad("give exactly one of a time period (from, to), billingPeriod or invoiceId (Cost Details rule: only one of timePeriod, billingPeriod or invoiceId per request)")
	}
	oldest := OldestStart(today)
	switch {
	case r.BillingPeriod != "":
		if !reBillingPeriod.MatchString(r.BillingPeriod) {
			return bad("billingPeriod %q is not a YYYYMM month", r.BillingPeriod)
		}
		if scope.Agreement() == AgreementMCA {
			return bad("billingPeriod can only be used at Enterprise Agreement scopes, and %s is an MCA scope (%s); use a time period or, at a billing profile or customer, invoiceId", scope.Path, scope.Kind)
		}
		month, _ := time.Parse("200601", r.BillingPeriod)
		if month.Before(oldest) {
			return bad("billingPeriod %s is more than %d months back: Cost Details serves data from %s on (use Exports for older history)", r.BillingPeriod, HistoryMonths, oldest.Format(time.DateOnly))
		}
	case r.InvoiceID != "":
		if scope.Kind != MCABillingProfile && scope.Kind != MCACustomer {
			return bad("invoiceId can only be used at an MCA billing profile or customer scope, not at %s (%s)", scope.Path, scope.Kind)
		}
		if !reInvoiceID.MatchString(r.InvoiceID) {
			return bad("invoiceId %q is not an invoice id (letters, digits and dashes)", r.InvoiceID)
		}
	default:
		from, err1 := time.Parse(time.DateOnly, r.From)
		to, err2 := time.Parse(time.DateOnly, r.To)
		switch {
		case err1 != nil || err2 != nil:
			return bad("time period %q..%q: both dates must be YYYY-MM-DD", r.From, r.To)
		case to.Before(from):
			return bad("time period %s..%s: the end is before the start", r.From, r.To)
		case to.After(LastDayInOneMonth(from)):
			return bad("time period %s..%s is longer than one month (Cost Details rule: at most 1 month per request; split it by calendar month)", r.From, r.To)
		case from.Before(oldest):
			return bad("time period %s..%s starts more than %d months back: Cost Details serves data from %s on (use Exports for older history)", r.From, r.To, HistoryMonths, oldest.Format(time.DateOnly))
		}
	}
	return nil
}

// body is the GenerateCostDetailsReportRequestDefinition of r.
func (r ReportRequest) body() map[string]any {
	b := map[string]any{"metric": r.Metric}
	switch {
	case r.BillingPeriod != "":
		b["billingPeriod"] = r.BillingPeriod
	case r.InvoiceID != "":
		b["invoiceId"] = r.InvoiceID
	default:
		b["timePeriod"] = map[string]string{"start": r.From, "end": r.To}
	}
	return b
}
