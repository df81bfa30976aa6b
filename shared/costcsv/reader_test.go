package costcsv

import (
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kylelemons/godebug/pretty"
	"github.com/shopspring/decimal"
)

// compare diffs values with decimals shown as their text.
var compare = &pretty.Config{
	Diffable:          true,
	IncludeUnexported: true,
	Formatter: map[reflect.Type]any{
		reflect.TypeFor[decimal.Decimal](): func(d decimal.Decimal) string { return d.String() },
		reflect.TypeFor[time.Time]():       func(t time.Time) string { return t.Format(time.RFC3339Nano) },
	},
}

func TestSchemaDetection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		want   Schema
	}{
		{"ea current", "InvoiceSectionName,Date,CostInBillingCurrency,BillingCurrencyCode,ResourceId", SchemaEA},
		{"ea legacy", "BillingAccountId,Date,Product,Cost,BillingCurrency,ResourceId", SchemaEA},
		{"ea any case and order", "billingcurrencycode,RESOURCEID,COSTINBILLINGCURRENCY,date", SchemaEA},
		{"ea localized", "Datum (Date),Kosten (CostInBillingCurrency),Währung (BillingCurrencyCode)", SchemaEA},
		{"mca", "invoiceId,date,costInBillingCurrency,billingCurrency,pricingCurrency,costInUsd", SchemaMCA},
		{"mca without invoice", "date,costInBillingCurrency,billingCurrency", SchemaMCA},
		{"payg", "SubscriptionGuid,UsageDateTime,PreTaxCost,Currency,InstanceId", SchemaPAYG},
		{"payg localized", "Abonnement-GUID (SubscriptionGuid),UsageDateTime (UsageDateTime),PreTaxCost (PreTaxCost),Currency", SchemaPAYG},
		{"focus 1.0", "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargeClass,ConsumedQuantity", SchemaFOCUS10},
		{"focus 1.2", "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargeClass,PricingCurrency,SkuPriceDetails", SchemaFOCUS12},
		{"focus 1.0 preview", "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,x_ChargeId,ChargeSubcategory", SchemaFOCUSPre},
		{"bom and crlf", "\ufeffDate,Cost,BillingCurrency\r\n", SchemaEA},
		{"spaces around names", " Date , Cost , BillingCurrency ", SchemaEA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(tc.header), nil)
			if err != nil {
				t.Fatalf("NewReader: %v", err)
			}
			if got := r.Schema(); got != tc.want {
				t.Errorf("Schema() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  *HeaderError
	}{
		{
			name:  "unknown columns",
			input: "a,b,Date\n1,2,3\n",
			want: &HeaderError{
				File:    "f.csv",
				Missing: []string{"costinbillingcurrency or cost"},
				Tried: []SchemaMissing{
					{SchemaFOCUS10, []string{"chargeperiodstart", "billedcost", "effectivecost"}},
					{SchemaMCA, []string{"costinbillingcurrency", "one of billingcurrency, pricingcurrency, costinpricingcurrency, costinusd, paygcostinbillingcurrency, paygcostinusd, exchangeratepricingtobilling, exchangeratedate, invoiceid, previousinvoiceid, serviceperiodstartdate"}},
					{SchemaEA, []string{"costinbillingcurrency or cost"}},
					{SchemaPAYG, []string{"usagedatetime", "pretaxcost"}},
				},
			},
		},
		{"empty file", "", &HeaderError{File: "f.csv", Reason: "empty file, no header line"}},
		{"only a BOM", "\ufeff\r\n", &HeaderError{File: "f.csv", Reason: "empty file, no header line"}},
		{"duplicate column", "Date,Cost,BillingCurrency,Cost\n", &HeaderError{File: "f.csv", Reason: `duplicate column "Cost"`}},
		{"bare quote in header", "Date,Co\"st\n", &HeaderError{File: "f.csv", Reason: `parse error on line 1, column 8: bare " in non-quoted-field`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tc.input), &Options{File: "f.csv"})
			var got *HeaderError
			if !errors.As(err, &got) {
				t.Fatalf("NewReader error = %v, want *HeaderError", err)
			}
			if d := compare.Compare(tc.want, got); d != "" {
				t.Errorf("HeaderError (-want +got):\n%s", d)
			}
		})
	}
}

func TestHeaderErrorMessage(t *testing.T) {
	_, err := NewReader(strings.NewReader("a,b\n"), &Options{File: "x.csv"})
	want := "file x.csv: unrecognised header: focus-1.0: missing chargeperiodstart, billedcost, effectivecost; mca: missing date or usagedatetime, costinbillingcurrency, one of billingcurrency,"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v\nwant prefix %s", err, want)
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // RFC 3339, or "" for an error
	}{
		{"09/21/2023", "2023-09-21T00:00:00Z"},
		{"9/1/2023", "2023-09-01T00:00:00Z"},
		{"3/1/21", "2021-03-01T00:00:00Z"},
		{"2021-02-02", "2021-02-02T00:00:00Z"},
		{"20180331", "2018-03-31T00:00:00Z"},
		{"2025-10-16T00:00:00Z", "2025-10-16T00:00:00Z"},
		{"2019-03-30T00:00:00.0000000Z", "2019-03-30T00:00:00Z"},
		{"2019-03-30T12:34:56.5Z", "2019-03-30T12:34:56.5Z"},
		{"2024-09-18 22:00:00", "2024-09-18T22:00:00Z"},
		{"2024-09-01T00:30:00+02:00", "2024-08-31T22:30:00Z"},
		{"2024-09-01T00:00:00", "2024-09-01T00:00:00Z"},
		{"02/29/2024", "2024-02-29T00:00:00Z"},
		{"02/29/2023", ""},
		{"02/30/2023", ""},
		{"13/01/2023", ""},
		{"21.09.2023", ""},
		{"2023-9-1", ""},
		{"2023-09-21T25:00:00Z", ""},
		{"2023-09-21T10:00Z", ""},
		{"2023-09-21X10:00:00", ""},
		{"2023-09-21T10:00:00.1234567890Z", ""},
		{"09/21/23/1", ""},
		{"0000-01-01", ""},
		{"yesterday", ""},
	} {
		got, err := parseTime(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("parseTime(%q) = %v, want an error", tc.in, got)
		case tc.want != "" && err != nil:
			t.Errorf("parseTime(%q): %v, want %s", tc.in, err, tc.want)
		case tc.want != "" && got.Format(time.RFC3339Nano) != tc.want:
			t.Errorf("parseTime(%q) = %s, want %s", tc.in, got.Format(time.RFC3339Nano), tc.want)
		}
	}
}

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // decimal text, or "" for an error
	}{
		{"0", "0"},
		{"3.25", "3.25"},
		{"-3", "-3"},
		{"1.5E-05", "0.000015"},
		{"1.5e-05", "0.000015"},
		{"2E+3", "2000"},
		{"0.0000496065685939103754949709", "0.0000496065685939103754949709"},
		{"0.4834626378113516439680699237", "0.4834626378113516439680699237"},
		{"123456789012345678901234567.8", "123456789012345678901234567.8"},
		{"0.161000000000000136", "0.161000000000000136"},
		{"1,5", ""},
		{"1.5.5", ""},
		{"abc", ""},
		{"NaN", ""},
		{"Infinity", ""},
		{"0x10", ""},
		{"1e999999999", ""},
		{"1e-61", ""},
		{strings.Repeat("9", 81), ""},
	} {
		got, err := parseAmount(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("parseAmount(%q) = %s, want an error", tc.in, got)
		case tc.want != "" && err != nil:
			t.Errorf("parseAmount(%q): %v", tc.in, err)
		case tc.want != "" && !got.Equal(decimal.RequireFromString(tc.want)):
			t.Errorf("parseAmount(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// eaHeader is a small EA-layout header used by the line-level tests.
const eaHeader = "Date,CostInBillingCurrency,BillingCurrencyCode,Quantity,ResourceId,ResourceGroup,SubscriptionId,ChargeType,PricingModel,benefitId,ReservationId,Tags,AdditionalInfo,ResourceLocation,ConsumedService,MeterId\n"

func readString(t *testing.T, input string, o *Options) ([]*Record, []*LineError) {
	t.Helper()
	_, recs, bad := readAll(t, "t.csv", []byte(input), o)
	return recs, bad
}

func TestRecordValues(t *testing.T) {
	const rid = "/subscriptions/1CAAA5A3-2B66-438E-8AB4-BCE37D518C5D/resourceGroups/AHBTest/providers/Microsoft.Sql/servers/ahbtest1/databases/nonmanaged"
	for _, tc := range []struct {
		name    string
		line    string
		rawCost string
		want    Record // only the fields compared below
		tags    map[string]string
		info    map[string]any
	}{
		{
			name:    "full line",
			line:    `09/04/2023,0.4838709677419368,USD,0.03225806,` + rid + `,AHBTest,1CAAA5A3-2B66-438E-8AB4-BCE37D518C5D,Usage,OnDemand,,,"""env"": ""prod"",""org"": """"","{""AHB"":""True"",""vCores"":2,""ConsumedQuantity"":1.0}",West US 2,Microsoft.Sql,ABC`,
			rawCost: "0.4838709677419368",
			want: Record{
				Date: "2023-09-04", ChargePeriodStart: time.Date(2023, 9, 4, 0, 0, 0, 0, time.UTC),
				BillingCurrency: "USD", BilledCost: decimal.RequireFromString("0.4838709677419368"),
				EffectiveCost: decimal.RequireFromString("0.4838709677419368"), Quantity: decimal.RequireFromString("0.03225806"),
				ResourceID: strings.ToLower(rid), ResourceGroup: "ahbtest", ResourceType: "microsoft.sql/servers/databases",
				SubAccountID: "1caaa5a3-2b66-438e-8ab4-bce37d518c5d", ChargeType: "Usage", ChargeCategory: "Usage",
				PricingModel: "OnDemand", RegionID: "westus2", MeterID: "ABC",
			},
			tags: map[string]string{"env": "prod", "org": ""},
			info: map[string]any{"AHB": "True", "vCores": jsonNumber("2"), "ConsumedQuantity": jsonNumber("1.0")},
		},
		{
			name:    "reservation purchase: no resource group, group from nowhere, benefit lower-cased",
			line:    `09/21/2023,3.25,USD,1,/providers/Microsoft.Capacity/reservationOrders/49ED/reservations/,,1caaa5a3-2b66-438e-8ab4-bce37d518c5d,Purchase,Reservation,/providers/Microsoft.Capacity/reservationOrders/49ED/reservations/,49ed,,,uksouth,Microsoft.Capacity,`,
			rawCost: "3.25",
			want: Record{
				Date: "2023-09-21", ChargePeriodStart: time.Date(2023, 9, 21, 0, 0, 0, 0, time.UTC),
				BillingCurrency: "USD", BilledCost: decimal.RequireFromString("3.25"), EffectiveCost: decimal.RequireFromString("3.25"),
				Quantity: decimal.RequireFromString("1"), ResourceID: "/providers/microsoft.capacity/reservationorders/49ed/reservations/",
				ResourceType: "microsoft.capacity/reservationorders/reservations", SubAccountID: "1caaa5a3-2b66-438e-8ab4-bce37d518c5d",
				ChargeType: "Purchase", ChargeCategory: "Purchase", PricingModel: "Reservation", RegionID: "uksouth",
				BenefitID: "/providers/microsoft.capacity/reservationorders/49ed/reservations/",
			},
			tags: map[string]string{}, info: map[string]any{},
		},
		{
			name:    "refund, exponent amount, NULL quantity, tags object with non-string values, zero GUID",
			line:    `2023-09-01,-1.5E-05,EUR,NULL,,,00000000-0000-0000-0000-000000000000,Refund,,,ABCD,"{""n"": 1, ""b"": true, ""z"": null}",NULL,,,`,
			rawCost: "-1.5E-05",
			want: Record{
				Date: "2023-09-01", ChargePeriodStart: time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC),
				BillingCurrency: "EUR", BilledCost: decimal.RequireFromString("-0.000015"), EffectiveCost: decimal.RequireFromString("-0.000015"),
				ChargeType: "Refund", ChargeCategory: "Purchase", ChargeClass: "Correction", BenefitID: "abcd",
			},
			tags: map[string]string{"n": "1", "b": "true", "z": ""}, info: map[string]any{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, bad := readString(t, eaHeader+tc.line+"\n", nil)
			if len(bad) != 0 || len(recs) != 1 {
				t.Fatalf("got %d records, bad %v", len(recs), bad)
			}
			rec := *recs[0]
			got := Record{
				Date: rec.Date, ChargePeriodStart: rec.ChargePeriodStart, BillingCurrency: rec.BillingCurrency,
				BilledCost: rec.BilledCost, EffectiveCost: rec.EffectiveCost, Quantity: rec.Quantity,
				ResourceID: rec.ResourceID, ResourceGroup: rec.ResourceGroup, ResourceType: rec.ResourceType,
				SubAccountID: rec.SubAccountID, ChargeType: rec.ChargeType, ChargeCategory: rec.ChargeCategory,
				ChargeClass: rec.ChargeClass, PricingModel: rec.PricingModel, RegionID: rec.RegionID, MeterID: rec.MeterID,
				BenefitID: rec.BenefitID,
			}
			if d := compare.Compare(tc.want, got); d != "" {
				t.Errorf("record (-want +got):\n%s", d)
			}
			if d := compare.Compare(tc.tags, rec.Tags.Map()); d != "" {
				t.Errorf("tags (-want +got):\n%s", d)
			}
			if d := compare.Compare(tc.info, rec.AdditionalInfo.Map()); d != "" {
				t.Errorf("additional info (-want +got):\n%s", d)
			}
			if cost, _ := rec.Raw.Get("CostInBillingCurrency"); rec.Raw.Len() != 16 || cost != tc.rawCost {
				t.Errorf("Raw = %v, want all 16 columns, cost %q verbatim", rec.Raw.Map(), tc.rawCost)
			}
		})
	}
}

func jsonNumber(s string) any {
	m, err := parseObject(`{"n":` + s + `}`)
	if err != nil {
		panic(err)
	}
	return m["n"]
}

func TestFOCUSRecord(t *testing.T) {
	const header = "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargeCategory,ChargeClass,SubAccountId,ResourceId,RegionId,ServiceName,ServiceCategory,x_PricingCurrency,x_BilledCostInUsd,x_BillingExchangeRate,PricingQuantity,Tags,x_SkuDetails,BillingPeriodStart,x_ResourceGroupName,CommitmentDiscountId\n"
	line := `0.0000496065685939103754949709,0.4834626378113516439680699237,EUR,2025-10-16T00:00:00Z,Usage,NULL,/subscriptions/81FCEDAF-0000-4000-8000-000000000001,/subscriptions/81FCEDAF-0000-4000-8000-000000000001/resourcegroups/rg1/providers/microsoft.web/sites/app,westeurope,App Service,Web,USD,0.000058,0.8552856654122477,10,"{""a"":""1""}","{""x"":""y""}",2025-10-01T00:00:00Z,,`
	recs, bad := readString(t, header+line+"\n", nil)
	if len(bad) != 0 || len(recs) != 1 {
		t.Fatalf("got %d records, bad %v", len(recs), bad)
	}
	rec := recs[0]
	usd := decimal.RequireFromString("0.000058")
	want := Record{
		Date: "2025-10-16", BillingPeriodStart: "2025-10-01", BillingCurrency: "EUR",
		BilledCost:    decimal.RequireFromString("0.0000496065685939103754949709"),
		EffectiveCost: decimal.RequireFromString("0.4834626378113516439680699237"),
		Quantity:      decimal.RequireFromString("10"), PricingCurrency: "USD", CostInUSD: &usd, ExchangeRate: "0.8552856654122477",
		SubAccountID: "81fcedaf-0000-4000-8000-000000000001", ResourceGroup: "rg1", ResourceType: "microsoft.web/sites",
		RegionID: "westeurope", ServiceName: "App Service", ServiceCategory: "Web", ChargeCategory: "Usage",
	}
	got := Record{
		Date: rec.Date, BillingPeriodStart: rec.BillingPeriodStart, BillingCurrency: rec.BillingCurrency,
		BilledCost: rec.BilledCost, EffectiveCost: rec.EffectiveCost, Quantity: rec.Quantity,
		PricingCurrency: rec.PricingCurrency, CostInUSD: rec.CostInUSD, ExchangeRate: rec.ExchangeRate,
		SubAccountID: rec.SubAccountID, ResourceGroup: rec.ResourceGroup, ResourceType: rec.ResourceType,
		RegionID: rec.RegionID, ServiceName: rec.ServiceName, ServiceCategory: rec.ServiceCategory,
		ChargeCategory: rec.ChargeCategory, ChargeClass: rec.ChargeClass,
	}
	if d := compare.Compare(want, got); d != "" {
		t.Errorf("record (-want +got):\n%s", d)
	}
}

// TestQuarantine checks every kind of bad line, with exact line numbers,
// after a quoted field that spans lines, in LF and CRLF files.
func TestQuarantine(t *testing.T) {
	const header = "Date,CostInBillingCurrency,BillingCurrencyCode,Tags,AdditionalInfo,ResourceId\n"
	lines := []string{
		`09/01/2023,1.0,USD,"{""a"": ""x"",`, // 2: record, quoted tags span lines 2-4
		`""b"": ""y""`,
		`}",,r1`,
		`09/01/2023,abc,USD,,,r2`, // 5: amount
		`09/01/2023,2,USD,"multi`, // 6: broken tags, spanning 6-8
		`line`,
		`tag",,r3`,
		`09/01/2023,1,USD`,                  // 9: too few fields
		`09/01/2023,1,USD,,,r4,extra`,       // 10: too many fields
		`09/01/2023,1,U"SD,,,r5`,            // 11: bare quote
		`13/45/2023,1,USD,,,r6`,             // 12: date
		``,                                  // 13: blank, skipped
		`09/01/2023,,USD,,,r7`,              // 14: empty cost
		`09/01/2023,1,USD,,"{""a"":",r8`,    // 15: additional info
		`09/01/2023,1,USD,"a"b,,r9`,         // 16: extraneous quote
		`NULL,1,USD,,,r10`,                  // 17: NULL date
		`2023-09-02,3,USD,,"{""k"":1}",r11`, // 18: record
	}
	want := []*LineError{
		{Line: 5, Column: "CostInBillingCurrency", Reason: `unparsable amount: not a decimal number "abc"`},
		{Line: 6, Column: "Tags", Reason: "invalid JSON object: unexpected 'm' at offset 0, want a string key"},
		{Line: 9, Column: "Tags", Reason: "line has 3 fields, header has 6"},
		{Line: 10, Reason: "line has 7 fields, header has 6"},
		{Line: 11, Column: "BillingCurrencyCode", Reason: `bare " in non-quoted-field (line 11, byte 15)`},
		{Line: 12, Column: "Date", Reason: `unparsable date "13/45/2023": no such day "13/45/2023"`},
		{Line: 14, Column: "CostInBillingCurrency", Reason: "empty amount"},
		{Line: 15, Column: "AdditionalInfo", Reason: "invalid JSON object: unexpected end, want a value"},
		{Line: 16, Column: "Tags", Reason: `extraneous or missing " in quoted-field (line 16, byte 20)`},
		{Line: 17, Column: "Date", Reason: "empty date"},
	}
	wantLines := []int{2, 18}
	for _, eol := range []string{"\n", "\r\n"} {
		t.Run(strings.ReplaceAll(strings.ReplaceAll(eol, "\r", "CR"), "\n", "LF"), func(t *testing.T) {
			input := strings.ReplaceAll(header, "\n", eol) + strings.Join(lines, eol) + eol
			recs, bad := readString(t, input, nil)
			var gotLines []int
			for _, r := range recs {
				gotLines = append(gotLines, r.Line)
			}
			if d := compare.Compare(wantLines, gotLines); d != "" {
				t.Errorf("record lines (-want +got):\n%s", d)
			}
			if len(recs) == 0 {
				return
			}
			if d := compare.Compare(map[string]string{"a": "x", "b": "y"}, recs[0].Tags.Map()); d != "" {
				t.Errorf("multi-line tags (-want +got):\n%s", d)
			}
			for _, b := range bad {
				b.File, b.Fields = "", nil
			}
			if d := compare.Compare(want, bad); d != "" {
				t.Errorf("quarantined (-want +got):\n%s", d)
			}
		})
	}
}

func TestLineErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  *LineError
		want string
	}{
		{&LineError{File: "a.csv", Line: 7, Column: "Tags", Reason: "invalid JSON object"}, "file a.csv line 7 column Tags: invalid JSON object"},
		{&LineError{File: "a.csv", Line: 7, Reason: "line has 7 fields, header has 6"}, "file a.csv line 7: line has 7 fields, header has 6"},
		{&LineError{Line: 3, Column: "Date", Reason: "empty date"}, "line 3 column Date: empty date"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestLineErrorFields(t *testing.T) {
	_, bad := readString(t, "Date,Cost,BillingCurrency\n09/01/2023,x,USD\n", nil)
	if len(bad) != 1 {
		t.Fatalf("bad = %v", bad)
	}
	if d := compare.Compare([]string{"09/01/2023", "x", "USD"}, bad[0].Fields); d != "" {
		t.Errorf("Fields (-want +got):\n%s", d)
	}
}

// TestUnterminatedQuote: a quoted field left open swallows every later line,
// so it is fatal (naming the line), not one quarantined line.
func TestUnterminatedQuote(t *testing.T) {
	input := "Date,Cost,BillingCurrency\n09/01/2023,1,USD\n09/02/2023,\"2,USD\n09/03/2023,3,USD\n09/04/2023,4,USD\n"
	r, err := NewReader(strings.NewReader(input), &Options{File: "cut.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := r.Next(); err != nil || rec.Line != 2 {
		t.Fatalf("first Next = %v, %v", rec, err)
	}
	_, err = r.Next()
	var le *LineError
	if err == nil || errors.As(err, &le) || errors.Is(err, io.EOF) {
		t.Fatalf("Next error = %v, want a fatal error", err)
	}
	if !strings.Contains(err.Error(), "cut.csv: line 3: quoted field still open at end of file") || !errors.Is(err, ErrCorrupt) {
		t.Errorf("error %q does not name the file and line, or is not ErrCorrupt", err)
	}
	if _, again := r.Next(); again != err {
		t.Errorf("Next after a fatal error = %v, want the same error", again)
	}

	// Open on the last line only: nothing else is lost, one bad line.
	_, bad := readString(t, "Date,Cost,BillingCurrency\n09/01/2023,1,USD\n09/02/2023,\"2,USD", nil)
	if len(bad) != 1 || bad[0].Line != 3 {
		t.Errorf("bad = %v, want line 3", bad)
	}
}

type failingReader struct{ data io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.data.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("connection reset")
	}
	return n, err
}

func TestIOErrorIsFatal(t *testing.T) {
	r, err := NewReader(&failingReader{strings.NewReader("Date,Cost,BillingCurrency\n09/01/2023,1,USD\n")}, &Options{File: "p.csv"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := r.Next()
		var le *LineError
		if errors.As(err, &le) {
			t.Fatalf("I/O error reported as a line error: %v", err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "connection reset") || errors.Is(err, io.EOF) || errors.Is(err, ErrCorrupt) {
				t.Errorf("error = %v, want the I/O error, not ErrCorrupt", err)
			}
			return
		}
	}
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestIDs(t *testing.T) {
	const header = "Date,Cost,BillingCurrency,ResourceId,Tags,AdditionalInfo,CostCenter\n"
	ids := func(body string, o *Options) []*Record {
		t.Helper()
		recs, bad := readString(t, header+body, o)
		if len(bad) != 0 {
			t.Fatalf("bad lines: %v", bad)
		}
		return recs
	}
	base := ids("09/01/2023,1,USD,/subscriptions/S/resourceGroups/RG/x,\"\"\"a\"\": \"\"1\"\",\"\"b\"\": \"\"2\"\"\",\"{\"\"k\"\":1,\"\"j\"\":{\"\"z\"\":1,\"\"y\"\":2}}\",ACM9000\n", nil)[0]
	if !hex32.MatchString(base.ID) || !hex32.MatchString(base.ContentHash) {
		t.Fatalf("ID %q, ContentHash %q: want 32 hex digits", base.ID, base.ContentHash)
	}
	for _, tc := range []struct {
		name    string
		line    string
		o       *Options
		sameID  bool
		sameSum bool
	}{
		{"identical", "09/01/2023,1,USD,/subscriptions/S/resourceGroups/RG/x,\"\"\"a\"\": \"\"1\"\",\"\"b\"\": \"\"2\"\"\",\"{\"\"k\"\":1,\"\"j\"\":{\"\"z\"\":1,\"\"y\"\":2}}\",ACM9000\n", nil, true, true},
		{"amount changed", "09/01/2023,2,USD,/subscriptions/S/resourceGroups/RG/x,\"\"\"a\"\": \"\"1\"\",\"\"b\"\": \"\"2\"\"\",\"{\"\"k\"\":1,\"\"j\"\":{\"\"z\"\":1,\"\"y\"\":2}}\",ACM9000\n", nil, true, false},
		{"casing and tag/info key order", "09/01/2023,1,USD,/SUBSCRIPTIONS/s/resourcegroups/rg/X,\"{\"\"b\"\": \"\"2\"\", \"\"a\"\": \"\"1\"\"}\",\"{\"\"j\"\":{\"\"y\"\":2,\"\"z\"\":1},\"\"k\"\":1}\",acm9000\n", nil, true, false},
		{"date form", "2023-09-01,1,USD,/subscriptions/S/resourceGroups/RG/x,\"\"\"a\"\": \"\"1\"\",\"\"b\"\": \"\"2\"\"\",\"{\"\"k\"\":1,\"\"j\"\":{\"\"z\"\":1,\"\"y\"\":2}}\",ACM9000\n", nil, true, false},
		{"part 0 is no part", "09/01/2023,1,USD,/subscriptions/S/resourceGroups/RG/x,\"\"\"a\"\": \"\"1\"\",\"\"b\"\": \"\"2\"\"\",\"{\"\"k\"\":1,\"\"j\"\":{\"\"z\"\":1,\"\"y\"\":2}}\",ACM9000\n", &Options{Part: 0}, true, true},
		{"part 2", "09/01/2023,1,USD,/subscriptions/S/resourceGroups/RG/x,\"\"\"a\"\": \"\"1\"\",\"\"b\"\": \"\"2\"\"\",\"{\"\"k\"\":1,\"\"j\"\":{\"\"z\"\":1,\"\"y\"\":2}}\",ACM9000\n", &Options{Part: 2}, false, true},
		{"tag value changed", "09/01/2023,1,USD,/subscriptions/S/resourceGroups/RG/x,\"\"\"a\"\": \"\"1\"\",\"\"b\"\": \"\"3\"\"\",\"{\"\"k\"\":1,\"\"j\"\":{\"\"z\"\":1,\"\"y\"\":2}}\",ACM9000\n", nil, false, false},
		{"tag key case is identity", "09/01/2023,1,USD,/subscriptions/S/resourceGroups/RG/x,\"\"\"A\"\": \"\"1\"\",\"\"b\"\": \"\"2\"\"\",\"{\"\"k\"\":1,\"\"j\"\":{\"\"z\"\":1,\"\"y\"\":2}}\",ACM9000\n", nil, false, false},
		{"additional info number text", "09/01/2023,1,USD,/subscriptions/S/resourceGroups/RG/x,\"\"\"a\"\": \"\"1\"\",\"\"b\"\": \"\"2\"\"\",\"{\"\"k\"\":1.0,\"\"j\"\":{\"\"z\"\":1,\"\"y\"\":2}}\",ACM9000\n", nil, false, false},
		{"next day", "09/02/2023,1,USD,/subscriptions/S/resourceGroups/RG/x,\"\"\"a\"\": \"\"1\"\",\"\"b\"\": \"\"2\"\"\",\"{\"\"k\"\":1,\"\"j\"\":{\"\"z\"\":1,\"\"y\"\":2}}\",ACM9000\n", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(tc.line, tc.o)[0]
			if (got.ID == base.ID) != tc.sameID {
				t.Errorf("ID %s vs %s: same = %v, want %v", got.ID, base.ID, got.ID == base.ID, tc.sameID)
			}
			if (got.ContentHash == base.ContentHash) != tc.sameSum {
				t.Errorf("ContentHash same = %v, want %v", got.ContentHash == base.ContentHash, tc.sameSum)
			}
		})
	}
}

func TestOccurrences(t *testing.T) {
	body := "Date,Cost,BillingCurrency,ResourceId\n" +
		"09/01/2023,1,USD,a\n" +
		"09/01/2023,1,USD,b\n" +
		"09/01/2023,2,USD,a\n" + // same key as line 2, different cost
		"09/01/2023,x,USD,a\n" + // quarantined: uses no occurrence number
		"09/01/2023,1,USD,a\n"
	recs, bad := readString(t, body, nil)
	if len(bad) != 1 {
		t.Fatalf("bad = %v", bad)
	}
	type occ struct {
		Line, Occurrence int
	}
	var got []occ
	ids := map[string]bool{}
	for _, r := range recs {
		got = append(got, occ{r.Line, r.Occurrence})
		ids[r.ID] = true
	}
	want := []occ{{2, 1}, {3, 1}, {4, 2}, {6, 3}}
	if d := compare.Compare(want, got); d != "" {
		t.Errorf("occurrences (-want +got):\n%s", d)
	}
	if len(ids) != len(recs) {
		t.Errorf("%d distinct ids for %d records", len(ids), len(recs))
	}
}

func TestTotals(t *testing.T) {
	var tot Totals
	for _, r := range []Record{
		{Date: "2023-09-02", BillingCurrency: "USD", BilledCost: decimal.RequireFromString("0.1"), EffectiveCost: decimal.RequireFromString("0.2")},
		{Date: "2023-09-01", BillingCurrency: "USD", BilledCost: decimal.RequireFromString("0.2"), EffectiveCost: decimal.RequireFromString("0.2")},
		{Date: "2023-09-02", BillingCurrency: "EUR", BilledCost: decimal.RequireFromString("1E-28"), EffectiveCost: decimal.Zero},
		{Date: "2023-09-02", BillingCurrency: "USD", BilledCost: decimal.RequireFromString("0.2"), EffectiveCost: decimal.RequireFromString("-0.1")},
	} {
		tot.Add(&r)
	}
	want := []DayTotal{
		{Date: "2023-09-01", Currency: "USD", Rows: 1, BilledCost: decimal.RequireFromString("0.2"), EffectiveCost: decimal.RequireFromString("0.2")},
		{Date: "2023-09-02", Currency: "EUR", Rows: 1, BilledCost: decimal.RequireFromString("0.0000000000000000000000000001"), EffectiveCost: decimal.Zero},
		{Date: "2023-09-02", Currency: "USD", Rows: 2, BilledCost: decimal.RequireFromString("0.3"), EffectiveCost: decimal.RequireFromString("0.1")},
	}
	if d := compare.Compare(want, tot.ByDayCurrency()); d != "" {
		t.Errorf("ByDayCurrency (-want +got):\n%s", d)
	}
	if tot.Rows() != 4 {
		t.Errorf("Rows() = %d, want 4", tot.Rows())
	}
	var empty Totals
	if empty.Rows() != 0 || len(empty.ByDayCurrency()) != 0 {
		t.Errorf("zero Totals not empty")
	}
}

func TestServicesLookup(t *testing.T) {
	const data = "\ufeffConsumedService,ResourceType,ServiceName,ServiceCategory,ServiceSubcategory\n" +
		"microsoft.compute,microsoft.compute/virtualmachines,Virtual Machines,Compute,x\n" +
		"microsoft.compute,microsoft.compute/virtualmachinescalesets,Virtual Machine Scale Sets,Compute,x\n" +
		"microsoft.sql,microsoft.sql/servers,Azure SQL Database,Databases,x\n" +
		",microsoft.network/internetanalyzerprofiles,Azure Internet Analyzer,Networking,x\n" +
		"microsoft.storage,microsoft.storage/storageaccounts,Storage Accounts,Storage,x\n"
	s, err := LoadServices(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cs, rt       string
		name, cat    string
		ok           bool
		explaination string
	}{
		{"Microsoft.Compute", "Microsoft.Compute/virtualMachines", "Virtual Machines", "Compute", true, "exact, any case"},
		{"MICROSOFT.SQL", "microsoft.sql/servers/databases", "Azure SQL Database", "Databases", true, "parent type"},
		{"Microsoft.Network", "microsoft.network/internetanalyzerprofiles", "Azure Internet Analyzer", "Networking", true, "row without consumed service"},
		{"other", "microsoft.storage/storageaccounts", "Storage Accounts", "Storage", true, "type alone"},
		{"microsoft.storage", "", "Storage Accounts", "Storage", true, "consumed service alone, unambiguous"},
		{"microsoft.compute", "", "", "", false, "consumed service alone, ambiguous"},
		{"nothing", "nothing/else", "", "", false, "unknown"},
	} {
		name, cat, ok := s.Lookup(tc.cs, tc.rt)
		if name != tc.name || cat != tc.cat || ok != tc.ok {
			t.Errorf("%s: Lookup(%q, %q) = %q, %q, %v; want %q, %q, %v", tc.explaination, tc.cs, tc.rt, name, cat, ok, tc.name, tc.cat, tc.ok)
		}
	}
	var none *Services
	if _, _, ok := none.Lookup("a", "b"); ok {
		t.Errorf("nil Services answered")
	}
	if _, err := LoadServices(strings.NewReader("a,b\n")); err == nil {
		t.Errorf("LoadServices accepted a file without its columns")
	}
}

func TestResourceTypeOf(t *testing.T) {
	for in, want := range map[string]string{
		"/subscriptions/s/resourcegroups/rg/providers/microsoft.sql/servers/a/databases/b":      "microsoft.sql/servers/databases",
		"/providers/microsoft.capacity/reservationorders/1/reservations/":                       "microsoft.capacity/reservationorders/reservations",
		"/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm":     "microsoft.compute/virtualmachines",
		"/subscriptions/s/resourcegroups/rg/providers/a.b/x/y/providers/microsoft.insights/z/w": "microsoft.insights/z",
		"/subscriptions/s/resourcegroups/rg":                                                    "",
		"/subscriptions/s/resourcegroups/rg/providers/":                                         "",
		"/subscriptions/s/resourcegroups/rg/providers/microsoft.web":                            "",
		"arn:aws:s3:::bucket": "",
	} {
		if got := resourceTypeOf(in); got != want {
			t.Errorf("resourceTypeOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReaderHeader(t *testing.T) {
	r, err := NewReader(strings.NewReader("\ufeff Date ,Kosten (Cost),BillingCurrency\r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header()
	if d := compare.Compare([]string{"Date", "Kosten (Cost)", "BillingCurrency"}, h); d != "" {
		t.Errorf("Header (-want +got):\n%s", d)
	}
	h[0] = "changed"
	if r.Header()[0] != "Date" {
		t.Errorf("Header() shares its slice with the reader")
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next on a header-only file = %v, want io.EOF", err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("second Next after EOF = %v, want io.EOF", err)
	}
}

func TestToLower(t *testing.T) {
	for _, s := range []string{
		"", "a", "A", "abcdefgh", "ABCDEFGH", "abcdefgH", "Habcdefgh", "@[`{AZaz",
		"/subscriptions/1CAAA5A3-2B66-438E-8AB4-BCE37D518C5D/resourceGroups/AHBTest/providers/Microsoft.Sql/servers/x",
		"/subscriptions/1caaa5a3/resourcegroups/ahbtest", "Zürich-RG/ÄÖÜ", "abcdefghÄ", "\x7f\x40\x5b\x60\x7bAZ",
	} {
		if got, want := toLower(s), strings.ToLower(s); got != want {
			t.Errorf("toLower(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestChargeCategory(t *testing.T) {
	for _, tc := range []struct{ chargeType, category, class string }{
		{"Usage", "Usage", ""}, {"usage", "Usage", ""}, {"UnusedReservation", "Usage", ""}, {"UnusedSavingsPlan", "Usage", ""},
		{"Purchase", "Purchase", ""}, {"Refund", "Purchase", "Correction"}, {"Credit", "Credit", ""}, {"Tax", "Tax", ""},
		{"RoundingAdjustment", "Adjustment", ""}, {"SomethingNew", "Adjustment", ""}, {"", "", ""},
	} {
		if cat, class := chargeCategory(tc.chargeType); cat != tc.category || class != tc.class {
			t.Errorf("chargeCategory(%q) = %q, %q; want %q, %q", tc.chargeType, cat, class, tc.category, tc.class)
		}
	}
}

func TestLowerASCII(t *testing.T) {
	for _, s := range []string{"", "AZaz@[`{", "/SUBSCRIPTIONS/ABC/resourceGroups/RG-1/Zürich\xc3\x84\xff\xc1Z", strings.Repeat("AbC\x80\xc1\xdaZ", 9)} {
		b := []byte(s)
		lowerASCII(b)
		want := []byte(s)
		for i, c := range want {
			if 'A' <= c && c <= 'Z' {
				want[i] = c + 'a' - 'A'
			}
		}
		if string(b) != string(want) {
			t.Errorf("lowerASCII(%q) = %q, want %q", s, b, want)
		}
	}
}

// TestOccurrenceCounts: counts per fingerprint from 1, past the one-byte
// counter (spilled), across table growth, and 0 as a fingerprint like any.
func TestOccurrenceCounts(t *testing.T) {
	var o occurrences
	want := map[uint64]uint32{}
	rng := rand.New(rand.NewPCG(4, 5))
	for i := range 300000 {
		fp := rng.Uint64()
		switch {
		case i%3 == 0:
			fp = 42 // one key seen 100,000 times
		case i%1000 == 1:
			fp = 0
		}
		want[fp]++
		if got, err := o.next(fp); err != nil || got != want[fp] {
			t.Fatalf("line %d: fingerprint %x occurrence %d, %v; want %d", i, fp, got, err, want[fp])
		}
	}
	if o.spills != 0 {
		t.Errorf("%d keys spilled %d times: the default budget holds them", len(want), o.spills)
	}
	if want[42] != 100000 || want[0] == 0 {
		t.Fatalf("test data: %d, %d", want[42], want[0])
	}
}

// TestPeriodEnds: FOCUS ends are exclusive and kept; EA's inclusive
// BillingPeriodEndDate becomes the day after, and a daily line's charge
// period ends at the next midnight.
func TestPeriodEnds(t *testing.T) {
	for _, tc := range []struct {
		name, input              string
		chargeEnd                time.Time
		billingStart, billingEnd string
	}{
		{"ea", "Date,Cost,BillingCurrency,BillingPeriodStartDate,BillingPeriodEndDate\n02/28/2024,1,USD,02/01/2024,02/29/2024\n",
			time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "2024-02-01", "2024-03-01"},
		{"focus hourly", "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,BillingPeriodStart,BillingPeriodEnd\n1,1,USD,2024-09-18 22:00:00,2024-09-18 23:00:00,2024-09-01 00:00:00,2024-10-01 00:00:00\n",
			time.Date(2024, 9, 18, 23, 0, 0, 0, time.UTC), "2024-09-01", "2024-10-01"},
		{"focus without ends", "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,BillingPeriodEnd\n1,1,USD,2025-10-16T00:00:00Z,NULL,\n",
			time.Time{}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, bad := readString(t, tc.input, nil)
			if len(recs) != 1 || len(bad) != 0 {
				t.Fatalf("%d records, bad %v", len(recs), bad)
			}
			rec := recs[0]
			if !rec.ChargePeriodEnd.Equal(tc.chargeEnd) || rec.BillingPeriodStart != tc.billingStart || rec.BillingPeriodEnd != tc.billingEnd {
				t.Errorf("charge end %s, billing %q..%q; want %s, %q..%q", rec.ChargePeriodEnd, rec.BillingPeriodStart, rec.BillingPeriodEnd, tc.chargeEnd, tc.billingStart, tc.billingEnd)
			}
		})
	}
}
