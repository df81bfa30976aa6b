package store_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/store"
	"github.com/shopspring/decimal"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestDocumentShapes pins the JSON of each document kind: other tools and
// the README read these shapes.
func TestDocumentShapes(t *testing.T) {
	pricing := decimal.RequireFromString("12.3456789012345678901234567")
	usd := decimal.RequireFromString("-0.0000000000000000000000000001")
	rec := &costcsv.Record{
		ID:                    "3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f",
		Occurrence:            1,
		Line:                  42,
		ContentHash:           "9b1c",
		Date:                  "2026-03-01",
		BillingCurrency:       "EUR",
		BilledCost:            decimal.RequireFromString("11.2233445566778899001122334"),
		EffectiveCost:         decimal.RequireFromString("11.2233445566778899001122334"),
		PricingCurrency:       "USD",
		CostInPricingCurrency: &pricing,
		CostInUSD:             &usd,
		ExchangeRate:          "0.9091",
		BillingAccountID:      "12345678",
		SubAccountID:          "0b1f6471-1bf0-4dda-aec3-111122223333",
		SubAccountName:        "Production",
		ResourceID:            "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourcegroups/rg-web/providers/microsoft.compute/virtualmachines/vm1",
		ResourceName:          "vm1",
		ResourceGroup:         "rg-web",
		ResourceType:          "microsoft.compute/virtualmachines",
		ServiceName:           "Virtual Machines",
		ServiceCategory:       "Compute",
		RegionID:              "westeurope",
		ChargeCategory:        "Usage",
		ChargeType:            "Usage",
		PricingModel:          "OnDemand",
		MeterID:               "a1b2c3d4-0000-0000-0000-000000000000",
		MeterName:             "D2s v5",
		MeterCategory:         "Virtual Machines",
		Quantity:              decimal.RequireFromString("24.000000"),
		UnitOfMeasure:         "1 Hour",
		Tags:                  costcsv.NewTags(map[string]string{"env": "prod"}),
		AdditionalInfo:        costcsv.MustObject(map[string]any{"VCPUs": float64(2)}),
		Raw:                   costcsv.NewRaw([]string{"CostInBillingCurrency", "Date"}, []string{"11.2233445566778899001122334", "03/01/2026"}),
	}
	wid := store.WindowID("/subscriptions/0B1F6471-1BF0-4DDA-AEC3-111122223333", "ActualCost", "2026-03-01", "2026-03-31")
	at := time.Date(2026, 3, 2, 4, 5, 6, 0, time.UTC)
	total := decimal.RequireFromString("-12.3456789012345678901234567")
	w := store.Window{
		ID: wid, PK: store.LedgerPK("/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333"), Kind: store.KindWindow,
		Scope: "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333", Metric: "ActualCost",
		From: "2026-03-01", To: "2026-03-31", State: store.StateIngesting,
		OperationURL: "https://management.azure.com/providers/Microsoft.CostManagement/costDetailsOperationResults/1",
		Attempts:     2, Throttles: 1, Generation: 1772424306000000, PartsTotal: 3, PartsDone: 1, Rows: 2,
		PartsGeneration: 1772424306000000, PartsIn: []int{1},
		Totals:      []store.CurrencyTotal{{Currency: "EUR", BilledCost: total}},
		Days:        []store.DayTotal{{Date: "2026-03-01", Currency: "EUR", Rows: 2, BilledCost: total}},
		Errors:      []string{"poll: 429 Too Many Requests"},
		Quarantined: 1, CreatedAt: at, UpdatedAt: at, ETag: `"not serialised"`,
	}
	q := store.Quarantine{
		ID: store.QuarantineID(wid, "cost-reports/sub/2026-03/part_1.csv", 17), PK: w.PK, Kind: store.KindQuarantine,
		Scope: w.Scope, WindowID: wid, File: "cost-reports/sub/2026-03/part_1.csv", Line: 17,
		Column: "CostInBillingCurrency", Reason: `not a number: "1,2"`, Generation: w.Generation,
	}
	p := store.Part{
		ID: store.PartID(wid, w.Generation, 1), PK: w.PK, Kind: store.KindPart, Scope: w.Scope, WindowID: wid,
		Generation: w.Generation, Index: 1, Blob: "cost-reports/sub/2026-03/part_1.csv", Line: 4001, Sent: 2001,
		CreatedAt: at, UpdatedAt: at, ETag: `"not serialised"`,
	}
	for name, v := range map[string]any{
		"part.json":       p,
		"cost.json":       store.NewCost(rec, "/subscriptions/0B1F6471-1BF0-4DDA-AEC3-111122223333", "ActualCost", wid, w.Generation, "cost-reports/sub/2026-03/part_1.csv"),
		"window.json":     w,
		"quarantine.json": q,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s changed; run with -update if that is intended:\n%s", path, got)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	cases := []struct {
		name, got, want string
	}{
		{"window", store.WindowID("/Subscriptions/ABC", "ActualCost", "2026-01-01", "2026-01-31"),
			"window|~ssubscriptions~sabc|ActualCost|2026-01-01|2026-01-31"},
		{"quarantine", store.QuarantineID("window|x", `a/b\c?d#e|f~g.csv`, 7),
			`window|x|a~sb~bc~qd~he~pf~~g.csv|7`},
		{"cost pk", store.CostPK("/Subscriptions/ABC", "ActualCost", "2026-01-01"),
			"/subscriptions/abc|ActualCost|2026-01-01"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s id = %q, want %q", c.name, c.got, c.want)
		}
	}
	// Escaping is injective: '~' and '|' inside a part cannot forge another id.
	a := store.QuarantineID("w", "x|1", 2)
	b := store.QuarantineID("w", "x", 1) // would be "w|x|1|2"-like without escaping
	if a == b || store.QuarantineID("w", "~s", 1) == store.QuarantineID("w", "/", 1) {
		t.Error("quarantine ids collide")
	}
}

func TestIndexingPolicies(t *testing.T) {
	c := store.CostsIndexingPolicy()
	excluded := map[string]bool{}
	for _, p := range c.ExcludedPaths {
		excluded[p.Path] = true
	}
	if !excluded["/*"] {
		t.Error("costs policy does not exclude the root: /raw/*, /tags/* and /additionalInfo/* would be indexed")
	}
	var included []string
	for _, p := range c.IncludedPaths {
		included = append(included, p.Path)
	}
	// Every path the store's one query of the costs container filters on,
	// and nothing else, is indexed: each indexed path costs request units
	// on every write.
	_, where, ok := strings.Cut(store.SummaryQuery, " WHERE ")
	if !ok {
		t.Fatalf("query %q has no WHERE clause", store.SummaryQuery)
	}
	var filtered []string
	for _, m := range regexp.MustCompile(`c\.([A-Za-z_]+)`).FindAllStringSubmatch(where, -1) {
		filtered = append(filtered, "/"+m[1]+"/?")
	}
	if fmt.Sprint(included) != fmt.Sprint(filtered) {
		t.Errorf("costs policy indexes %v, the query filters on %v", included, filtered)
	}
}
