package costcsv

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/internal/parquetgen"
)

// readRecords reads a whole file through Open, quarantining bad lines.
func readRecords(t *testing.T, name string, data []byte) (*Reader, []*Record, []*LineError) {
	t.Helper()
	r, err := Open(bytes.NewReader(data), int64(len(data)), &Options{File: name})
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	var recs []*Record
	var bad []*LineError
	for {
		rec, err := r.Next()
		var le *LineError
		switch {
		case errors.Is(err, io.EOF):
			return r, recs, bad
		case errors.As(err, &le):
			bad = append(bad, le)
		case err != nil:
			t.Fatalf("Next: %v", err)
		default:
			recs = append(recs, rec)
		}
	}
}

func gzipped(t *testing.T, members ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range members {
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(m); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// sameRecords compares what two readings of the same data produced: ids,
// lines, normalised fields and exact amounts.
func sameRecords(t *testing.T, want, got []*Record) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	type view struct {
		ID, Date, Start, End, BillingStart, BillingEnd, Currency, Billed, Effective, Quantity string
		Line, Occurrence                                                                      int
		SubAccount, Resource, Group, Region, Service, Category, Charge, Pricing, Benefit      string
		Tags                                                                                  map[string]string
		Info                                                                                  map[string]any
	}
	v := func(r *Record) view {
		return view{r.ID, r.Date, r.ChargePeriodStart.String(), r.ChargePeriodEnd.String(), r.BillingPeriodStart, r.BillingPeriodEnd,
			r.BillingCurrency, r.BilledCost.String(), r.EffectiveCost.String(), r.Quantity.String(), r.Line, r.Occurrence,
			r.SubAccountID, r.ResourceID, r.ResourceGroup, r.RegionID, r.ServiceName, r.ServiceCategory, r.ChargeCategory,
			r.PricingModel, r.BenefitID, r.Tags.Map(), r.AdditionalInfo.Map()}
	}
	for i := range want {
		if d := compare.Compare(v(want[i]), v(got[i])); d != "" {
			t.Fatalf("record %d (-want +got):\n%s", i, d)
		}
	}
}

func TestGzipCSV(t *testing.T) {
	path := filepath.Join(realDir(t), "finops-toolkit", "powershell-test-assets", "EA_AmortizedCost_Small.csv")
	plain, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := readRecords(t, "a.csv", plain)
	if len(want) != 28 {
		t.Fatalf("%d records from the plain file", len(want))
	}

	// Split after the tenth line into two gzip members: a multi-member
	// stream reads as one file.
	cut := 0
	for range 11 {
		cut += bytes.IndexByte(plain[cut:], '\n') + 1
	}
	gz := gzipped(t, plain[:cut], plain[cut:])
	for _, tc := range []struct {
		name string
		open func() (*Reader, []*Record, []*LineError)
	}{
		{"Open by content", func() (*Reader, []*Record, []*LineError) { return readRecords(t, "part_0_0001.csv.gz", gz) }},
		{"Open without extension", func() (*Reader, []*Record, []*LineError) { return readRecords(t, "blob", gz) }},
		{"NewReader streams it", func() (*Reader, []*Record, []*LineError) {
			return readAll(t, "part.csv.gz", gz, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, got, bad := tc.open()
			if r.Format() != FormatGzipCSV || len(bad) != 0 {
				t.Fatalf("format %q, %d bad lines", r.Format(), len(bad))
			}
			sameRecords(t, want, got)
		})
	}

	t.Run("a failing source is not corrupt", func(t *testing.T) {
		r, err := NewReader(&failingReader{bytes.NewReader(gz)}, &Options{File: "net.csv.gz"})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				var le *LineError
				if errors.As(err, &le) {
					continue
				}
				if !strings.Contains(err.Error(), "connection reset") || errors.Is(err, ErrCorrupt) {
					t.Fatalf("Next error = %v, want the source's error, not ErrCorrupt", err)
				}
				return
			}
		}
	})

	t.Run("truncated stream is fatal", func(t *testing.T) {
		r, err := NewReader(bytes.NewReader(gz[:len(gz)/2]), &Options{File: "cut.csv.gz"})
		if err != nil {
			t.Fatal(err)
		}
		for {
			_, err := r.Next()
			var le *LineError
			if errors.As(err, &le) {
				continue
			}
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "cut.csv.gz") || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Next error = %v, want a fatal ErrCorrupt naming the file", err)
			}
			return
		}
	})
}

func TestFormatMismatch(t *testing.T) {
	csvData := []byte("Date,Cost,BillingCurrency\n09/01/2023,1,USD\n")
	pq := parquetgen.Write(t, []parquetgen.Column{{Name: "BilledCost", Kind: parquetgen.Text}}, [][]string{{"1"}})
	for _, tc := range []struct {
		name, file string
		data       []byte
		open       func(name string, data []byte) error
		want       string
	}{
		{"parquet name, csv content", "x.parquet", csvData, openErr, "not a Parquet file"},
		{"gzip name, csv content", "x.csv.gz", csvData, openErr, "not a gzip file"},
		{"parquet to a stream", "x", pq, streamErr, "needs random access"},
		{"corrupt gzip header", "x.gz", []byte{0x1f, 0x8b, 0, 0}, streamErr, "gzip"},
		{"corrupt parquet footer", "x.parquet", []byte("PAR1 not really PAR1"), openErr, "parquet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.open(tc.file, tc.data)
			var he *HeaderError
			if !errors.As(err, &he) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) {
				t.Errorf("error = %v, want a *HeaderError naming %s and saying %q", err, tc.file, tc.want)
			}
		})
	}
}

func openErr(name string, data []byte) error {
	_, err := Open(bytes.NewReader(data), int64(len(data)), &Options{File: name})
	return err
}

func streamErr(name string, data []byte) error {
	_, err := NewReader(bytes.NewReader(data), &Options{File: name})
	return err
}

// TestParquetTypes writes one column of every type a Parquet export may use
// and checks the exact text each becomes.
func TestParquetTypes(t *testing.T) {
	cols := []parquetgen.Column{
		{Name: "BilledCost", Kind: parquetgen.DecimalFixed, Scale: 28},
		{Name: "EffectiveCost", Kind: parquetgen.Decimal64, Scale: 6},
		{Name: "x_Dec32", Kind: parquetgen.Decimal32, Scale: 2},
		{Name: "x_DecBytes", Kind: parquetgen.DecimalBytes, Scale: 4},
		{Name: "ChargePeriodStart", Kind: parquetgen.TimestampMillis},
		{Name: "ChargePeriodEnd", Kind: parquetgen.TimestampNanos},
		{Name: "BillingPeriodStart", Kind: parquetgen.Int96},
		{Name: "x_Day", Kind: parquetgen.Date},
		{Name: "BillingCurrency", Kind: parquetgen.Text},
		{Name: "ConsumedQuantity", Kind: parquetgen.Double},
		{Name: "x_Float", Kind: parquetgen.Float},
		{Name: "x_Flag", Kind: parquetgen.Bool},
		{Name: "x_Count", Kind: parquetgen.Int32},
		{Name: "Tags", Kind: parquetgen.Text},
	}
	rows := [][]string{
		{"0.4834626378113516439680699237", "1.5", "-12.34", "-0.0001", "2025-10-16T00:00:00Z", "2025-10-17T00:00:00Z", "2025-10-01T00:00:00Z", "2025-10-16", "EUR", "1.5E-05", "0.1", "true", "42", `{"env":"prod"}`},
		{"-1.5", "-0.000001", "0", "123456789012.3456", "2025-10-16T13:00:00.5Z", "2025-10-16T14:00:00Z", "2025-10-01T00:00:00Z", "1970-01-01", "", "123456789.123", "-2.5", "false", "-7", ""},
		{"", "0", "1", "1", "2025-10-16T00:00:00Z", "2025-10-17T00:00:00Z", "", "", "EUR", "", "", "", "", "NULL"},
	}
	data := parquetgen.Write(t, cols, rows)
	r, recs, bad := readRecords(t, "part_0_0001.snappy.parquet", data)
	if r.Format() != FormatParquet || r.Schema() != SchemaFOCUS10 {
		t.Fatalf("format %q, schema %q", r.Format(), r.Schema())
	}
	wantRaw := [][]string{
		{"0.4834626378113516439680699237", "1.5", "-12.34", "-0.0001", "2025-10-16T00:00:00Z", "2025-10-17T00:00:00Z", "2025-10-01T00:00:00Z", "2025-10-16", "EUR", "0.000015", "0.1", "true", "42", `{"env":"prod"}`},
		{"-1.5", "-0.000001", "0", "123456789012.3456", "2025-10-16T13:00:00.5Z", "2025-10-16T14:00:00Z", "2025-10-01T00:00:00Z", "1970-01-01", "", "123456789.123", "-2.5", "false", "-7", ""},
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, bad %v", len(recs), bad)
	}
	for i, rec := range recs {
		if d := compare.Compare(wantRaw[i], rec.Raw.Values()); d != "" {
			t.Errorf("row %d raw (-want +got):\n%s", i+1, d)
		}
	}
	if rec := recs[1]; rec.Line != 3 || rec.Date != "2025-10-16" || !rec.ChargePeriodStart.Equal(time.Date(2025, 10, 16, 13, 0, 0, 5e8, time.UTC)) ||
		!rec.BilledCost.Equal(decimal.RequireFromString("-1.5")) || rec.BillingPeriodStart != "2025-10-01" {
		t.Errorf("second record: line %d, date %s, start %s, billed %s, billing start %q", rec.Line, rec.Date, rec.ChargePeriodStart, rec.BilledCost, rec.BillingPeriodStart)
	}
	// The third row has a null BilledCost: quarantined, on line 4.
	want := []*LineError{{Line: 4, Column: "BilledCost", Reason: "empty amount"}}
	for _, b := range bad {
		b.File, b.Fields = "", nil
	}
	if d := compare.Compare(want, bad); d != "" {
		t.Errorf("quarantined (-want +got):\n%s", d)
	}
}

// TestParquetMatchesCSV writes the real FOCUS sample as a typed Parquet file
// (decimals, doubles, timestamps, nulls; several row groups) and checks that
// it reads into the same records, ids and exact totals as the CSV.
func TestParquetMatchesCSV(t *testing.T) {
	path := filepath.Join(realDir(t), "focus-sample-data", "focus_sample.csv")
	plain, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	all, err := csv.NewReader(bytes.NewReader(plain)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header, rows := all[0], all[1:]
	kinds := map[string]parquetgen.Kind{
		"BilledCost": parquetgen.DecimalFixed, "EffectiveCost": parquetgen.DecimalFixed, "ListCost": parquetgen.DecimalFixed, "ContractedCost": parquetgen.DecimalFixed,
		"PricingQuantity": parquetgen.DecimalBytes, "ContractedUnitPrice": parquetgen.Decimal64, "ConsumedQuantity": parquetgen.Double, "Id": parquetgen.Int64,
		"ChargePeriodStart": parquetgen.TimestampMicros, "ChargePeriodEnd": parquetgen.TimestampMicros,
		"BillingPeriodStart": parquetgen.TimestampMicros, "BillingPeriodEnd": parquetgen.TimestampMicros,
	}
	var cols []parquetgen.Column
	for j, name := range header {
		c := parquetgen.Column{Name: name, Kind: kinds[name]}
		for _, row := range rows { // the scale that keeps every digit
			if _, frac, ok := strings.Cut(row[j], "."); ok && row[j] != "NULL" {
				c.Scale = max(c.Scale, int32(len(frac)))
			}
		}
		cols = append(cols, c)
	}
	data := parquetgen.Write(t, cols, rows)
	_, want, wantBad := readRecords(t, "focus_sample.csv", plain)
	r, got, bad := readRecords(t, "focus_sample.parquet", data)
	if len(wantBad) != 0 || len(bad) != 0 {
		t.Fatalf("quarantined: csv %v, parquet %v", wantBad, bad)
	}
	if r.Schema() != SchemaFOCUS10 || len(got) != 1000 {
		t.Fatalf("schema %q, %d records", r.Schema(), len(got))
	}
	sameRecords(t, want, got)
	var wt, gt Totals
	for i := range want {
		wt.Add(want[i])
		gt.Add(got[i])
		// A double reads back as the shortest text of the same number.
		csvText, _ := want[i].Raw.Get("ConsumedQuantity")
		pqText, _ := got[i].Raw.Get("ConsumedQuantity")
		if csvText != "NULL" {
			f, _ := strconv.ParseFloat(csvText, 64)
			if pqText != strconv.FormatFloat(f, 'f', -1, 64) {
				t.Fatalf("line %d ConsumedQuantity %q from %q", want[i].Line, pqText, csvText)
			}
		}
	}
	if d := compare.Compare(wt.ByDayCurrency(), gt.ByDayCurrency()); d != "" {
		t.Errorf("totals (-csv +parquet):\n%s", d)
	}
}

func TestParquetNested(t *testing.T) {
	leaf, err := schema.NewPrimitiveNodeLogical("key", parquet.Repetitions.Required, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	group, err := schema.NewGroupNode("Tags", parquet.Repetitions.Repeated, schema.FieldList{leaf}, -1)
	if err != nil {
		t.Fatal(err)
	}
	cost, _ := schema.NewPrimitiveNodeLogical("BilledCost", parquet.Repetitions.Optional, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1)
	root, err := schema.NewGroupNode("schema", parquet.Repetitions.Required, schema.FieldList{cost, group}, -1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := file.NewParquetWriter(&buf, root)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	err = openErr("nested.parquet", buf.Bytes())
	var he *HeaderError
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "Tags.key") {
		t.Errorf("error = %v, want a *HeaderError naming Tags.key", err)
	}
}

// TestFOCUSMetadataLayouts builds, for each of Microsoft's FocusCost
// dataset metadata files (the exact column list and types of the export),
// a CSV and a typed Parquet file of one line, and checks that both are
// recognised as the right FOCUS version and read into the same record.
func TestFOCUSMetadataLayouts(t *testing.T) {
	for _, tc := range []struct {
		file   string
		schema Schema
	}{
		{"FocusCost_1.0-preview(v1).json", SchemaFOCUSPre},
		{"FocusCost_1.0.json", SchemaFOCUS10},
		{"FocusCost_1.2-preview.json", SchemaFOCUS12},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(realDir(t), "finops-toolkit", "dataset-metadata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var meta struct {
				Columns []struct{ ColumnName, DataType string }
			}
			if err := json.Unmarshal(b, &meta); err != nil {
				t.Fatal(err)
			}
			value := map[string]string{ // a value of each type, as an export writes it
				"Decimal": "0.0000496065685939103754949709", "DateTime": "2025-10-16T00:00:00Z", "Number": "10000",
				"Boolean": "true", "JSON": `{"env":"prod"}`, "String": "x",
			}
			kind := map[string]parquetgen.Kind{"Decimal": parquetgen.DecimalFixed, "DateTime": parquetgen.TimestampMicros,
				"Number": parquetgen.Double, "Boolean": parquetgen.Bool, "JSON": parquetgen.Text, "String": parquetgen.Text}
			var header, row []string
			var cols []parquetgen.Column
			for _, c := range meta.Columns {
				v, ok := value[c.DataType]
				if !ok {
					t.Fatalf("column %s has type %s", c.ColumnName, c.DataType)
				}
				switch c.ColumnName {
				case "ChargePeriodEnd":
					v = "2025-10-17T00:00:00Z"
				case "BillingCurrency":
					v = "EUR"
				}
				header, row = append(header, c.ColumnName), append(row, v)
				cols = append(cols, parquetgen.Column{Name: c.ColumnName, Kind: kind[c.DataType], Scale: 28})
			}
			var buf bytes.Buffer
			w := csv.NewWriter(&buf)
			if err := w.WriteAll([][]string{header, row}); err != nil {
				t.Fatal(err)
			}
			csvReader, want, bad := readRecords(t, "focus.csv", buf.Bytes())
			if csvReader.Schema() != tc.schema || len(want) != 1 || len(bad) != 0 {
				t.Fatalf("csv: schema %q, %d records, bad %v", csvReader.Schema(), len(want), bad)
			}
			pqReader, got, bad := readRecords(t, "focus.parquet", parquetgen.Write(t, cols, [][]string{row}))
			if pqReader.Schema() != tc.schema || len(bad) != 0 {
				t.Fatalf("parquet: schema %q, bad %v", pqReader.Schema(), bad)
			}
			sameRecords(t, want, got)
			rec := got[0]
			if !rec.BilledCost.Equal(decimal.RequireFromString(value["Decimal"])) || rec.BillingCurrency != "EUR" ||
				rec.Date != "2025-10-16" || !rec.ChargePeriodEnd.Equal(time.Date(2025, 10, 17, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("record: billed %s %s, date %s, end %s", rec.BilledCost, rec.BillingCurrency, rec.Date, rec.ChargePeriodEnd)
			}
		})
	}
}
