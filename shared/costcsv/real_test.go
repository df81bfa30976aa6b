package costcsv

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"github.com/costsync/costsync/internal/realdata"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kylelemons/godebug/diff"
	"github.com/shopspring/decimal"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// realDir is the shared real-data folder (see package realdata).
func realDir(t testing.TB) string { return realdata.Dir(t) }

// realServices loads the finops-toolkit Services.csv from the shared folder.
func realServices(t testing.TB, real string) *Services {
	t.Helper()
	f, err := os.Open(filepath.Join(real, "finops-toolkit", "open-data", "Services.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := LoadServices(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// realFiles are the cost CSVs under the shared real folder, with the schema
// each must be recognised as. TestRealFilesListed checks none is forgotten.
// A file may have quarantined lines only if its entry explains them, and
// explain checks that explanation against the file itself, read with
// encoding/csv alone.
var realFiles = []struct {
	path    string
	schema  Schema
	explain func(t *testing.T, rows [][]string, bad []*LineError)
}{
	{path: "finops-toolkit/powershell-test-assets/EA_ActualCost_Small.csv", schema: SchemaEA},
	{path: "finops-toolkit/powershell-test-assets/EA_AmortizedCost_Small.csv", schema: SchemaEA},
	{path: "finops-toolkit/powershell-test-assets/EA_NoRows.csv", schema: SchemaEA},
	{path: "focus-sample-data/focus_sample.csv", schema: SchemaFOCUS10},
	// BOM.csv (a header-detection fixture) has one data line that is empty
	// but for its UsageDateTime: it has no PreTaxCost, so it is quarantined
	// ("empty amount") rather than counted as a zero.
	{path: "opencost/headersets/BOM.csv", schema: SchemaPAYG, explain: func(t *testing.T, rows [][]string, bad []*LineError) {
		date := slices.Index(rows[0], "UsageDateTime")
		for i, v := range rows[1] {
			if (i == date) == (v == "") {
				t.Errorf("line 2 column %s = %q: the line is not empty but for its date", rows[0][i], v)
			}
		}
		if len(rows) != 2 || len(bad) != 1 || bad[0].Line != 2 || bad[0].Column != "PreTaxCost" || bad[0].Reason != "empty amount" {
			t.Errorf("%d data lines, quarantined %v; want the one line, for its empty PreTaxCost", len(rows)-1, bad)
		}
	}},
	{path: "opencost/headersets/Enterprise.csv", schema: SchemaEA},
	{path: "opencost/headersets/EnterpriseCamel.csv", schema: SchemaMCA},
	{path: "opencost/headersets/German.csv", schema: SchemaPAYG},
	{path: "opencost/headersets/PayAsYouGo.csv", schema: SchemaPAYG},
	// Mixed localized/camel header with Date, costInBillingCurrency and
	// Currency and no MCA-only column: the EA layout's names.
	{path: "opencost/headersets/YA.csv", schema: SchemaEA},
	// Lower-cased header with paygCostInBillingCurrency, a column only MCA
	// files have; its date is the PAYG-named UsageDateTime (see schema.go).
	{path: "opencost/values/MissingBrackets.csv", schema: SchemaMCA},
	// Template.csv's header names 11 columns, the last resourcelocation, but
	// every one of its 87 data lines has 10 fields: no line can be read
	// without guessing which column is missing, so each is quarantined.
	{path: "opencost/values/Template.csv", schema: SchemaMCA, explain: func(t *testing.T, rows [][]string, bad []*LineError) {
		for i, row := range rows[1:] {
			if len(rows[0]) != 11 || len(row) != 10 {
				t.Errorf("line %d has %d fields under %d columns", i+2, len(row), len(rows[0]))
			}
		}
		if len(bad) != len(rows)-1 {
			t.Errorf("%d of %d lines quarantined", len(bad), len(rows)-1)
		}
		for i, b := range bad {
			if b.Line != i+2 || b.Column != "resourcelocation" || b.Reason != "line has 10 fields, header has 11" {
				t.Errorf("quarantined %+v", b)
			}
		}
	}},
	{path: "opencost/values/VirtualMachine.csv", schema: SchemaMCA},
}

func TestRealFilesListed(t *testing.T) {
	found := realdata.CostFiles(t)
	var listed []string
	for _, f := range realFiles {
		listed = append(listed, f.path)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, found) {
		t.Errorf("real cost files (-listed +found):\n%s", diff.Diff(strings.Join(listed, "\n"), strings.Join(found, "\n")))
	}
}

// golden is what a real file must parse to.
type golden struct {
	Schema      Schema         `json:"schema"`
	Columns     int            `json:"columns"`
	Rows        int            `json:"rows"`
	Quarantined []goldenBad    `json:"quarantined"`
	Totals      []goldenTotal  `json:"totals"`
	IDDigest    string         `json:"idDigest"` // SHA-256 of every "line id" in file order
	Records     []goldenRecord `json:"records"`  // the first maxGoldenRecords
}

const maxGoldenRecords = 25

type goldenBad struct {
	Line   int    `json:"line"`
	Column string `json:"column,omitempty"`
	Reason string `json:"reason"`
}

type goldenTotal struct {
	Date          string `json:"date"`
	Currency      string `json:"currency"`
	Rows          int    `json:"rows"`
	BilledCost    string `json:"billedCost"`
	EffectiveCost string `json:"effectiveCost"`
}

type goldenRecord struct {
	Line            int               `json:"line"`
	ID              string            `json:"id"`
	Occurrence      int               `json:"occurrence"`
	Date            string            `json:"date"`
	Currency        string            `json:"currency"`
	BilledCost      string            `json:"billedCost"`
	EffectiveCost   string            `json:"effectiveCost"`
	Quantity        string            `json:"quantity"`
	SubAccountID    string            `json:"subAccountId,omitempty"`
	ResourceGroup   string            `json:"resourceGroup,omitempty"`
	ResourceType    string            `json:"resourceType,omitempty"`
	ServiceName     string            `json:"serviceName,omitempty"`
	ServiceCategory string            `json:"serviceCategory,omitempty"`
	RegionID        string            `json:"regionId,omitempty"`
	ChargeCategory  string            `json:"chargeCategory,omitempty"`
	ChargeClass     string            `json:"chargeClass,omitempty"`
	PricingModel    string            `json:"pricingModel,omitempty"`
	BenefitID       string            `json:"benefitId,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	AdditionalInfo  map[string]any    `json:"additionalInfo,omitempty"`
}

// readAll parses a whole file, quarantining bad lines; a fatal error fails t.
func readAll(t testing.TB, name string, data []byte, o *Options) (*Reader, []*Record, []*LineError) {
	t.Helper()
	if o == nil {
		o = &Options{}
	}
	o.File = name
	r, err := NewReader(bytes.NewReader(data), o)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	var recs []*Record
	var bad []*LineError
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r, recs, bad
		}
		var le *LineError
		if errors.As(err, &le) {
			bad = append(bad, le)
			continue
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		recs = append(recs, rec)
	}
}

func TestRealFiles(t *testing.T) {
	real := realDir(t)
	services := realServices(t, real)
	for _, f := range realFiles {
		t.Run(f.path, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(real, f.path))
			if err != nil {
				t.Fatal(err)
			}
			r, recs, bad := readAll(t, f.path, data, &Options{Services: services})
			if r.Schema() != f.schema {
				t.Errorf("Schema() = %q, want %q", r.Schema(), f.schema)
			}
			switch {
			case f.explain != nil:
				cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, utf8BOM)))
				cr.FieldsPerRecord = -1
				rows, err := cr.ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				f.explain(t, rows, bad)
			case len(bad) > 0:
				t.Errorf("%d lines quarantined that nothing explains, first: %v", len(bad), bad[0])
			}
			got := makeGolden(r, recs, bad)
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, '\n')
			path := filepath.Join("testdata", "golden", strings.ReplaceAll(f.path, "/", "__")+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(want, b) {
				t.Errorf("golden %s mismatch (-want +got):\n%s", path, diff.Diff(string(want), string(b)))
			}
		})
	}
}

func makeGolden(r *Reader, recs []*Record, bad []*LineError) golden {
	g := golden{Schema: r.Schema(), Columns: len(r.Header()), Rows: len(recs),
		Quarantined: []goldenBad{}, Totals: []goldenTotal{}, Records: []goldenRecord{}}
	for _, le := range bad {
		g.Quarantined = append(g.Quarantined, goldenBad{Line: le.Line, Column: le.Column, Reason: le.Reason})
	}
	var tot Totals
	h := sha256.New()
	for i, rec := range recs {
		tot.Add(rec)
		h.Write([]byte(strconv.Itoa(rec.Line) + " " + rec.ID + "\n"))
		if i < maxGoldenRecords {
			g.Records = append(g.Records, goldenRecord{
				Line: rec.Line, ID: rec.ID, Occurrence: rec.Occurrence, Date: rec.Date,
				Currency: rec.BillingCurrency, BilledCost: rec.BilledCost.String(),
				EffectiveCost: rec.EffectiveCost.String(), Quantity: rec.Quantity.String(),
				SubAccountID: rec.SubAccountID, ResourceGroup: rec.ResourceGroup,
				ResourceType: rec.ResourceType, ServiceName: rec.ServiceName,
				ServiceCategory: rec.ServiceCategory, RegionID: rec.RegionID,
				ChargeCategory: rec.ChargeCategory, ChargeClass: rec.ChargeClass,
				PricingModel: rec.PricingModel, BenefitID: rec.BenefitID,
				Tags: rec.Tags.Map(), AdditionalInfo: rec.AdditionalInfo.Map(),
			})
		}
	}
	g.IDDigest = hex.EncodeToString(h.Sum(nil))
	for _, d := range tot.ByDayCurrency() {
		g.Totals = append(g.Totals, goldenTotal{Date: d.Date, Currency: d.Currency, Rows: d.Rows,
			BilledCost: d.BilledCost.String(), EffectiveCost: d.EffectiveCost.String()})
	}
	return g
}

// TestEATotals checks the finops-toolkit EA files against exact sums and
// against their own Cost column read independently of the reader.
//
// cost-apis.md §5 quotes 8.545007786741936 and 16.296932136636645: those are
// float64 running sums of the Cost column (shown below). The exact decimal
// sums differ in the last digits, and exact is what we store.
func TestEATotals(t *testing.T) {
	real := realDir(t)
	for _, tc := range []struct {
		file      string
		rows      int
		exact     string
		asFloat64 float64 // the figure cost-apis.md §5 quotes
	}{
		{"EA_ActualCost_Small.csv", 11, "8.5450077867419368", 8.545007786741936},
		{"EA_AmortizedCost_Small.csv", 28, "16.296932136636644627485419", 16.296932136636645},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(real, "finops-toolkit", "powershell-test-assets", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, recs, bad := readAll(t, tc.file, data, nil)
			if len(bad) != 0 {
				t.Fatalf("quarantined %d lines, first: %v", len(bad), bad[0])
			}
			var tot Totals
			for _, rec := range recs {
				tot.Add(rec)
			}
			if tot.Rows() != tc.rows {
				t.Errorf("Rows() = %d, want %d", tot.Rows(), tc.rows)
			}
			sum := decimal.Zero
			for _, d := range tot.ByDayCurrency() {
				if d.Currency != "USD" {
					t.Errorf("currency %q, want USD", d.Currency)
				}
				sum = sum.Add(d.BilledCost)
			}
			if want := decimal.RequireFromString(tc.exact); !sum.Equal(want) {
				t.Errorf("billed total = %s, want exactly %s", sum, want)
			}

			// The same column, read with encoding/csv alone.
			cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
			rows, err := cr.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			costCol := slices.Index(rows[0], "Cost")
			indep, float := decimal.Zero, 0.0
			for _, row := range rows[1:] {
				indep = indep.Add(decimal.RequireFromString(row[costCol]))
				f, _ := strconv.ParseFloat(row[costCol], 64)
				float += f
			}
			if !indep.Equal(sum) {
				t.Errorf("reader total %s != Cost column total %s", sum, indep)
			}
			if len(rows)-1 != tot.Rows() {
				t.Errorf("reader rows %d != file rows %d", tot.Rows(), len(rows)-1)
			}
			if float != tc.asFloat64 {
				t.Errorf("float64 running sum = %v, want the documented %v", float, tc.asFloat64)
			}

			// Reconcile to the cent with the file's other columns: per day,
			// the billed total equals the sum of Quantity x EffectivePrice
			// (EA lines are priced to 8 decimals, costs to 16 and more, so
			// only the cents can agree).
			priced := map[string]decimal.Decimal{}
			for _, rec := range recs {
				q, _ := rec.Raw.Get("Quantity")
				p, _ := rec.Raw.Get("EffectivePrice")
				priced[rec.Date] = priced[rec.Date].Add(decimal.RequireFromString(q).Mul(decimal.RequireFromString(p)))
			}
			for _, d := range tot.ByDayCurrency() {
				if billed, want := d.BilledCost.Round(2), priced[d.Date].Round(2); !billed.Equal(want) {
					t.Errorf("%s: billed %s, Quantity x EffectivePrice %s: not the same to the cent", d.Date, billed, want)
				}
			}
		})
	}
}

func TestEANoRows(t *testing.T) {
	real := realDir(t)
	data, err := os.ReadFile(filepath.Join(real, "finops-toolkit", "powershell-test-assets", "EA_NoRows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	r, recs, bad := readAll(t, "EA_NoRows.csv", data, nil)
	if r.Schema() != SchemaEA || len(recs) != 0 || len(bad) != 0 {
		t.Errorf("schema %q, %d records, %d bad; want ea, 0, 0", r.Schema(), len(recs), len(bad))
	}
	if got := len(r.Header()); got != 55 {
		t.Errorf("header has %d columns, want 55", got)
	}
}
