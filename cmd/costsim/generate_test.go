package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func mustScope(t *testing.T, s string) scope {
	t.Helper()
	sc, err := parseScope(s)
	if err != nil {
		t.Fatalf("parse scope %s: %v", s, err)
	}
	return sc
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// renderReport renders a report the way an operation does.
func renderReport(t *testing.T, g *generator, scopePath, metric, from, to string, rev func(time.Time) int, perBlob int) [][]byte {
	t.Helper()
	sch, rows := g.reportRows(mustScope(t, scopePath), metric, day(from), day(to), testToday, rev)
	b, err := blobs(sch, rows, perBlob)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rev0(time.Time) int { return 0 }

func TestDeterminism(t *testing.T) {
	scopes := []string{subScope, eaAccount, mcaProfile, mcaAccount + "/customers/42"}
	for _, sc := range scopes {
		for _, metric := range []string{actualCost, amortizedCost} {
			a := renderReport(t, &generator{seed: 1, rowsPerDay: 60}, sc, metric, "2026-10-01", "2026-10-10", rev0, 0)
			b := renderReport(t, &generator{seed: 1, rowsPerDay: 60}, sc, metric, "2026-10-01", "2026-10-10", rev0, 0)
			c := renderReport(t, &generator{seed: 2, rowsPerDay: 60}, sc, metric, "2026-10-01", "2026-10-10", rev0, 0)
			if !bytes.Equal(bytes.Join(a, nil), bytes.Join(b, nil)) {
				t.Errorf("%s %s: same seed, different bytes", sc, metric)
			}
			if bytes.Equal(bytes.Join(a, nil), bytes.Join(c, nil)) {
				t.Errorf("%s %s: seeds 1 and 2 give the same bytes", sc, metric)
			}
		}
	}
	// Scope paths are case-insensitive: the same content for any casing.
	a := renderReport(t, &generator{seed: 1, rowsPerDay: 30}, subScope, actualCost, "2026-10-01", "2026-10-02", rev0, 0)
	b := renderReport(t, &generator{seed: 1, rowsPerDay: 30}, strings.ToUpper(subScope), actualCost, "2026-10-01", "2026-10-02", rev0, 0)
	if !bytes.Equal(a[0], b[0]) {
		t.Errorf("scope casing changes the content")
	}
}

// TestDeterminismOverHTTP compares the bytes two servers with the same seed
// serve for the same request.
func TestDeterminismOverHTTP(t *testing.T) {
	get := func() []byte {
		e := newEnv(t, nil)
		res := e.report(mcaProfile, `{"timePeriod":{"start":"2026-10-01","end":"2026-10-03"}}`)
		return e.download(res.Manifest.Blobs[0].BlobLink)
	}
	if a, b := get(), get(); !bytes.Equal(a, b) {
		t.Errorf("two servers with seed 1 served different reports")
	}
}

func TestRevisions(t *testing.T) {
	g := &generator{seed: 1, rowsPerDay: 120}
	for _, sc := range []string{subScope, mcaAccount} {
		p := g.population(mustScope(t, sc))
		for r := 1; r <= 3; r++ {
			d := day("2026-10-15")
			before, after := map[string]*line{}, map[string]*line{}
			for _, l := range g.dayLines(p, d, testToday, r-1) {
				before[l.key] = l
			}
			for _, l := range g.dayLines(p, d, testToday, r) {
				after[l.key] = l
			}
			var changed, added, removed int
			for k, a := range after {
				b, ok := before[k]
				switch {
				case !ok:
					added++
				case !a.qty.Equal(b.qty):
					changed++
					if a.cost(amortizedCost).Equal(b.cost(amortizedCost)) && !a.effAmortized.IsZero() {
						t.Errorf("changed quantity but not cost: %s", k)
					}
				}
			}
			for k := range before {
				if _, ok := after[k]; !ok {
					removed++
				}
			}
			if changed == 0 || added == 0 || removed == 0 {
				t.Errorf("%s revision %d: %d changed, %d added, %d removed; want some of each", sc, r, changed, added, removed)
			}
		}
		// And the rendered files differ.
		a := renderReport(t, g, sc, actualCost, "2026-10-15", "2026-10-15", rev0, 0)
		b := renderReport(t, g, sc, actualCost, "2026-10-15", "2026-10-15", func(time.Time) int { return 1 }, 0)
		if bytes.Equal(a[0], b[0]) {
			t.Errorf("%s: revision 1 renders the same file", sc)
		}
	}
}

func TestLateData(t *testing.T) {
	g := &generator{seed: 1, rowsPerDay: 200}
	p := g.population(mustScope(t, eaAccount))
	tests := []struct {
		day     string
		partial bool
		empty   bool
	}{
		{"2026-11-19", false, false},
		{"2026-11-20", false, false},
		{"2026-11-21", true, false},
		{"2026-11-22", true, false},
		{"2026-11-23", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.day, func(t *testing.T) {
			d := day(tt.day)
			at0 := len(g.dayLines(p, d, testToday, 0))
			full := len(g.baseLines(p, d))
			switch {
			case tt.empty:
				if at0 != 0 || len(g.dayLines(p, d, testToday, 1)) != 0 {
					t.Errorf("future day has %d lines", at0)
				}
			case tt.partial:
				if ratio := float64(at0) / float64(full); ratio < 0.55 || ratio > 0.85 {
					t.Errorf("revision 0 has %d of %d lines (%.2f), want about 70%%", at0, full, ratio)
				}
				at1 := g.dayLines(p, d, testToday, 1)
				keys := map[string]bool{}
				for _, l := range at1 {
					keys[l.key] = true
				}
				missing := 0
				for _, l := range g.baseLines(p, d) {
					if !keys[l.key] {
						missing++
					}
				}
				if len(at1) <= at0 || missing > full/20 {
					t.Errorf("revision 1 has %d lines (%d of the base missing), revision 0 %d", len(at1), missing, at0)
				}
			default:
				if at0 != full {
					t.Errorf("revision 0 has %d lines, want all %d", at0, full)
				}
			}
		})
	}
}

// TestRealism checks that a month of generated data has the features real
// files have and an ingestion must cope with.
func TestRealism(t *testing.T) {
	g := &generator{seed: 1, rowsPerDay: 120}
	month := func(sc, metric string) parsedCSV {
		return parseBlob(t, renderReport(t, g, sc, metric, "2026-10-01", "2026-10-31", rev0, 0)[0])
	}
	ea, eaAm := month(eaAccount, actualCost), month(eaAccount, amortizedCost)
	sub := month(subScope, actualCost)
	mca := month(mcaAccount, actualCost)

	has := func(p parsedCSV, f func(map[string]string) bool) bool {
		for _, rec := range p.records {
			m := map[string]string{}
			for i, h := range p.header {
				m[h] = rec[i]
			}
			if f(m) {
				return true
			}
		}
		return false
	}
	fracDigits := func(s string) int {
		_, frac, _ := strings.Cut(s, ".")
		return len(frac)
	}
	reFragment := regexp.MustCompile(`^"[^"]*": "`)
	tests := []struct {
		name string
		p    parsedCSV
		f    func(map[string]string) bool
	}{
		{"EA reservation purchase on the 1st", ea, func(m map[string]string) bool {
			return m["ChargeType"] == "Purchase" && m["ResourceGroup"] == "" && m["Date"] == "10/01/2026" &&
				regexp.MustCompile(`^/providers/Microsoft\.Capacity/reservationOrders/[0-9a-f-]{36}/reservations/$`).MatchString(m["ResourceId"])
		}},
		{"EA savings plan purchase", ea, func(m map[string]string) bool {
			return m["ChargeType"] == "Purchase" && m["PricingModel"] == "SavingsPlan"
		}},
		{"EA refund with negative cost", ea, func(m map[string]string) bool {
			return m["ChargeType"] == "Refund" && decimal.RequireFromString(m["CostInBillingCurrency"]).IsNegative()
		}},
		{"EA reservation usage costs 0 in actual", ea, func(m map[string]string) bool {
			return m["PricingModel"] == "Reservation" && m["ChargeType"] == "Usage" && m["CostInBillingCurrency"] == "0" && m["ReservationId"] != "" && strings.HasPrefix(m["benefitId"], "/providers/Microsoft.Capacity/")
		}},
		{"EA savings plan usage", ea, func(m map[string]string) bool {
			return m["PricingModel"] == "SavingsPlan" && m["ChargeType"] == "Usage" && strings.HasPrefix(m["benefitId"], "/providers/Microsoft.BillingBenefits/savingsPlanOrders/")
		}},
		{"EA spot", ea, func(m map[string]string) bool { return m["PricingModel"] == "Spot" }},
		{"EA zero-cost line", ea, func(m map[string]string) bool {
			return m["CostInBillingCurrency"] == "0" && m["PricingModel"] == "OnDemand"
		}},
		{"EA tag fragment without braces", ea, func(m map[string]string) bool { return reFragment.MatchString(m["Tags"]) }},
		{"EA tag with a quote and a comma", ea, func(m map[string]string) bool {
			return strings.Contains(m["Tags"], `"hidden-title": "Quote \"this\", please"`)
		}},
		{"EA empty tags", ea, func(m map[string]string) bool { return m["Tags"] == "" }},
		{"EA AdditionalInfo JSON", ea, func(m map[string]string) bool {
			var v map[string]any
			return strings.HasPrefix(m["AdditionalInfo"], "{") && json.Unmarshal([]byte(m["AdditionalInfo"]), &v) == nil && v["VCPUs"] != nil
		}},
		{"EA /resourceGroups/", ea, func(m map[string]string) bool { return strings.Contains(m["ResourceId"], "/resourceGroups/") }},
		{"EA /resourcegroups/", ea, func(m map[string]string) bool { return strings.Contains(m["ResourceId"], "/resourcegroups/") }},
		{"EA upper-case GUID in ResourceId", ea, func(m map[string]string) bool {
			return regexp.MustCompile(`/(subscriptions|SUBSCRIPTIONS)/[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}/`).MatchString(m["ResourceId"]) &&
				regexp.MustCompile(`[A-F]`).MatchString(m["ResourceId"][15:51])
		}},
		{"EA 18+ fraction digits", ea, func(m map[string]string) bool { return fracDigits(m["CostInBillingCurrency"]) >= 18 }},
		{"EA exponent form", ea, func(m map[string]string) bool {
			return regexp.MustCompile(`^-?\d(\.\d+)?E-\d\d$`).MatchString(m["CostInBillingCurrency"])
		}},
		{"EA units", ea, func(m map[string]string) bool { return m["UnitOfMeasure"] == "10K" }},
		{"EA units GB/Month", ea, func(m map[string]string) bool { return m["UnitOfMeasure"] == "1 GB/Month" }},
		{"EA MM/dd/yyyy", ea, func(m map[string]string) bool {
			return regexp.MustCompile(`^\d\d/\d\d/\d{4}$`).MatchString(m["Date"]) && m["BillingPeriodStartDate"] == "10/01/2026" && m["BillingPeriodEndDate"] == "10/31/2026"
		}},
		{"amortized unused reservation", eaAm, func(m map[string]string) bool { return m["ChargeType"] == "UnusedReservation" }},
		{"amortized reservation usage has cost", eaAm, func(m map[string]string) bool {
			return m["PricingModel"] == "Reservation" && m["ChargeType"] == "Usage" && decimal.RequireFromString(m["CostInBillingCurrency"]).IsPositive()
		}},
		{"subscription scope has one subscription", sub, func(m map[string]string) bool {
			return m["SubscriptionId"] == "00000000-0000-0000-0000-000000000001"
		}},
		{"MCA tags object", mca, func(m map[string]string) bool {
			return strings.HasPrefix(m["tags"], "{") && strings.HasSuffix(m["tags"], "}")
		}},
		{"MCA EUR billing, USD pricing", mca, func(m map[string]string) bool {
			return m["billingCurrency"] == "EUR" && m["pricingCurrency"] == "USD" && m["costInUsd"] == m["costInPricingCurrency"]
		}},
		{"MCA exchange rate", mca, func(m map[string]string) bool {
			return regexp.MustCompile(`^0\.9\d{12}$`).MatchString(m["exchangeRatePricingToBilling"])
		}},
		{"MCA exchangeRateDate M/d/yy", mca, func(m map[string]string) bool { return m["exchangeRateDate"] == "10/1/26" }},
		{"MCA exchangeRateDate MM/dd/yyyy", mca, func(m map[string]string) bool { return m["exchangeRateDate"] == "10/01/2026" }},
		{"MCA invoiceId for a closed month", mca, func(m map[string]string) bool { return regexp.MustCompile(`^G\d{9}$`).MatchString(m["invoiceId"]) }},
		{"MCA billing = pricing × rate", mca, func(m map[string]string) bool {
			c, r := decimal.RequireFromString(m["costInPricingCurrency"]), decimal.RequireFromString(m["exchangeRatePricingToBilling"])
			return !c.IsZero() && decimal.RequireFromString(m["costInBillingCurrency"]).Equal(c.Mul(r).Round(24))
		}},
		{"MCA spaced AdditionalInfo", mca, func(m map[string]string) bool { return strings.HasPrefix(m["additionalInfo"], `{  "UsageType": `) }},
		{"MCA benefit ids", mca, func(m map[string]string) bool { return m["benefitName"] != "" && m["benefitId"] != "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !has(tt.p, tt.f) {
				t.Errorf("no line has it")
			}
		})
	}
	t.Run("amortized has no purchases or refunds", func(t *testing.T) {
		if has(eaAm, func(m map[string]string) bool { return m["ChargeType"] == "Purchase" || m["ChargeType"] == "Refund" }) {
			t.Error("amortized has a purchase or refund")
		}
		if has(ea, func(m map[string]string) bool { return m["ChargeType"] == "UnusedReservation" }) {
			t.Error("actual has unused reservation")
		}
	})
	t.Run("identical lines", func(t *testing.T) {
		seen := map[string]int{}
		dups := 0
		for _, rec := range ea.records {
			k := strings.Join(rec, "\x00")
			seen[k]++
			if seen[k] == 2 {
				dups++
			}
		}
		if dups == 0 {
			t.Error("no two lines are identical")
		}
	})
	t.Run("rows per day vary about the setting", func(t *testing.T) {
		perDay := map[string]int{}
		for _, d := range column(ea, "Date") {
			perDay[d]++
		}
		lo, hi := 1<<30, 0
		for _, n := range perDay {
			lo, hi = min(lo, n), max(hi, n)
		}
		if len(perDay) != 31 || lo < 90 || hi > 155 || lo == hi {
			t.Errorf("%d days, %d..%d lines per day, want 31 days of about 120 ± 20%%", len(perDay), lo, hi)
		}
	})
	t.Run("subscriptions per billing scope", func(t *testing.T) {
		for _, p := range []parsedCSV{ea, mca} {
			subs := map[string]bool{}
			for _, s := range column(p, "SubscriptionId") {
				subs[s] = true
			}
			if len(subs) < 3 || len(subs) > 5 {
				t.Errorf("%d subscriptions, want 3–5", len(subs))
			}
			for s := range subs {
				if isMCASubscription(s) != (p.header[0] == "invoiceId") {
					t.Errorf("subscription %s: MCA rule does not match its scope", s)
				}
			}
		}
	})
}

// TestSchemasCovered makes sure every column of every schema has a value.
func TestSchemasCovered(t *testing.T) {
	g := &generator{seed: 1, rowsPerDay: 5}
	for _, sc := range []string{subScope, eaAccount, mcaProfile, mcaAccount + "/customers/7"} {
		p := g.population(mustScope(t, sc))
		l := g.dayLines(p, day("2026-10-01"), testToday, 0)[0]
		v := g.values(p, l, actualCost, testToday)
		for _, c := range p.schema.columns {
			if _, ok := v[c]; !ok {
				t.Errorf("%s: column %s has no value", p.schema.name, c)
			}
		}
	}
	for _, tt := range []struct {
		s    *schema
		want int
	}{{eaSubscriptionSchema, 55}, {eaBillingSchema, 55}, {mcaSchema, 65}, {mcaCustomerSchema, 68}} {
		if len(tt.s.columns) != tt.want {
			t.Errorf("%s has %d columns, want %d", tt.s.name, len(tt.s.columns), tt.want)
		}
	}
}

func TestMoney(t *testing.T) {
	tests := []struct {
		in   string
		sci  bool
		want string
	}{
		{"0.000015", true, "1.5E-05"},
		{"-0.0000123", true, "-1.23E-05"},
		{"0.00000735545672254533022", true, "7.35545672254533022E-06"},
		{"0.00009", true, "9E-05"},
		{"0.0001", true, "0.0001"},
		{"0", true, "0"},
		{"2.304", true, "2.304"},
		{"0.000015", false, "0.000015"},
		{"0.65699999999999999343", false, "0.65699999999999999343"},
	}
	for _, tt := range tests {
		d := decimal.RequireFromString(tt.in)
		got := money(d, tt.sci)
		if got != tt.want {
			t.Errorf("money(%s, %v) = %s, want %s", tt.in, tt.sci, got, tt.want)
		}
		back, err := decimal.NewFromString(got)
		if err != nil || !back.Equal(d) {
			t.Errorf("money(%s) = %s reads back as %s (%v)", tt.in, got, back, err)
		}
	}
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		kind scopeKind
		mca  bool
		err  string
	}{
		{"/subscriptions/00000000-0000-0000-0000-000000000000", scopeSubscription, false, ""},
		{"subscriptions/AAAAAAAA-0000-0000-8CA0-000000000000", scopeSubscription, true, ""},
		{"providers/Microsoft.Billing/billingAccounts/12345", scopeEABillingAccount, false, ""},
		{"providers/Microsoft.Billing/departments/12345", scopeEADepartment, false, ""},
		{"providers/Microsoft.Billing/billingAccounts/12345/departments/6", scopeEADepartment, false, ""},
		{"providers/Microsoft.Billing/enrollmentAccounts/1234", scopeEAEnrollment, false, ""},
		{"providers/Microsoft.Billing/billingAccounts/12345:6789", scopeMCABillingAccount, true, ""},
		{"PROVIDERS/MICROSOFT.BILLING/BILLINGACCOUNTS/12345:6789/BILLINGPROFILES/13579", scopeMCABillingProfile, true, ""},
		{"providers/Microsoft.Billing/billingAccounts/12345:6789/billingProfiles/13579/invoiceSections/2468", scopeMCAInvoiceSection, true, ""},
		{"providers/Microsoft.Billing/billingAccounts/12345:6789/customers/13579", scopeMCACustomer, true, ""},
		{"subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg", "", false, "Resource Group"},
		{"providers/Microsoft.Management/managementGroups/mg", "", false, "Management Group"},
		{"providers/Microsoft.Billing/billingAccounts/12345/billingProfiles/1", "", false, "Invalid scope"},
		{"subscriptions/123", "", false, "malformed"},
		{"", "", false, "Invalid scope"},
	}
	for _, tt := range tests {
		sc, err := parseScope(tt.in)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseScope(%q) error = %v, want %q", tt.in, err, tt.err)
			}
		case err != nil:
			t.Errorf("parseScope(%q): %v", tt.in, err)
		case sc.kind != tt.kind || sc.mca != tt.mca:
			t.Errorf("parseScope(%q) = %s mca=%v, want %s mca=%v", tt.in, sc.kind, sc.mca, tt.kind, tt.mca)
		}
	}
}
