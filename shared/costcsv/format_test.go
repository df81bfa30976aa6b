package costcsv

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/shopspring/decimal"
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
			if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "cut.csv.gz") {
				t.Fatalf("Next error = %v, want a fatal error naming the file", err)
			}
			return
		}
	})
}

func TestFormatMismatch(t *testing.T) {
	csvData := []byte("Date,Cost,BillingCurrency\n09/01/2023,1,USD\n")
	pq := writeParquet(t, []pqColumn{{name: "BilledCost", kind: pqText}}, [][]string{{"1"}})
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
	cols := []pqColumn{
		{name: "BilledCost", kind: pqDecimalFixed, scale: 28},
		{name: "EffectiveCost", kind: pqDecimal64, scale: 6},
		{name: "x_Dec32", kind: pqDecimal32, scale: 2},
		{name: "x_DecBytes", kind: pqDecimalBytes, scale: 4},
		{name: "ChargePeriodStart", kind: pqTimestampMillis},
		{name: "ChargePeriodEnd", kind: pqTimestampNanos},
		{name: "BillingPeriodStart", kind: pqInt96},
		{name: "x_Day", kind: pqDate},
		{name: "BillingCurrency", kind: pqText},
		{name: "ConsumedQuantity", kind: pqDouble},
		{name: "x_Float", kind: pqFloat},
		{name: "x_Flag", kind: pqBool},
		{name: "x_Count", kind: pqInt32},
		{name: "Tags", kind: pqText},
	}
	rows := [][]string{
		{"0.4834626378113516439680699237", "1.5", "-12.34", "-0.0001", "2025-10-16T00:00:00Z", "2025-10-17T00:00:00Z", "2025-10-01T00:00:00Z", "2025-10-16", "EUR", "1.5E-05", "0.1", "true", "42", `{"env":"prod"}`},
		{"-1.5", "-0.000001", "0", "123456789012.3456", "2025-10-16T13:00:00.5Z", "2025-10-16T14:00:00Z", "2025-10-01T00:00:00Z", "1970-01-01", "", "123456789.123", "-2.5", "false", "-7", ""},
		{"", "0", "1", "1", "2025-10-16T00:00:00Z", "2025-10-17T00:00:00Z", "", "", "EUR", "", "", "", "", "NULL"},
	}
	data := writeParquet(t, cols, rows)
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
	kinds := map[string]pqKind{
		"BilledCost": pqDecimalFixed, "EffectiveCost": pqDecimalFixed, "ListCost": pqDecimalFixed, "ContractedCost": pqDecimalFixed,
		"PricingQuantity": pqDecimalBytes, "ContractedUnitPrice": pqDecimal64, "ConsumedQuantity": pqDouble, "Id": pqInt64,
		"ChargePeriodStart": pqTimestampMicros, "ChargePeriodEnd": pqTimestampMicros,
		"BillingPeriodStart": pqTimestampMicros, "BillingPeriodEnd": pqTimestampMicros,
	}
	var cols []pqColumn
	for j, name := range header {
		c := pqColumn{name: name, kind: kinds[name]}
		for _, row := range rows { // the scale that keeps every digit
			if _, frac, ok := strings.Cut(row[j], "."); ok && row[j] != "NULL" {
				c.scale = max(c.scale, int32(len(frac)))
			}
		}
		cols = append(cols, c)
	}
	data := writeParquet(t, cols, rows)
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

// Parquet test files are written with arrow-go itself, from text rows.

type pqKind int

const (
	pqText pqKind = iota
	pqDecimalFixed
	pqDecimalBytes
	pqDecimal64
	pqDecimal32
	pqTimestampMillis
	pqTimestampMicros
	pqTimestampNanos
	pqInt96
	pqDate
	pqDouble
	pqFloat
	pqBool
	pqInt32
	pqInt64
)

type pqColumn struct {
	name  string
	kind  pqKind
	scale int32
}

func (c pqColumn) node(t *testing.T) schema.Node {
	opt := parquet.Repetitions.Optional
	var n schema.Node
	var err error
	switch c.kind {
	case pqText:
		n, err = schema.NewPrimitiveNodeLogical(c.name, opt, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1)
	case pqDecimalFixed:
		n, err = schema.NewPrimitiveNodeLogical(c.name, opt, schema.NewDecimalLogicalType(38, c.scale), parquet.Types.FixedLenByteArray, 16, -1)
	case pqDecimalBytes:
		n, err = schema.NewPrimitiveNodeLogical(c.name, opt, schema.NewDecimalLogicalType(38, c.scale), parquet.Types.ByteArray, -1, -1)
	case pqDecimal64:
		n, err = schema.NewPrimitiveNodeLogical(c.name, opt, schema.NewDecimalLogicalType(18, c.scale), parquet.Types.Int64, -1, -1)
	case pqDecimal32:
		n, err = schema.NewPrimitiveNodeLogical(c.name, opt, schema.NewDecimalLogicalType(9, c.scale), parquet.Types.Int32, -1, -1)
	case pqTimestampMillis:
		n, err = schema.NewPrimitiveNodeLogical(c.name, opt, schema.NewTimestampLogicalType(true, schema.TimeUnitMillis), parquet.Types.Int64, -1, -1)
	case pqTimestampMicros:
		n, err = schema.NewPrimitiveNodeLogical(c.name, opt, schema.NewTimestampLogicalType(true, schema.TimeUnitMicros), parquet.Types.Int64, -1, -1)
	case pqTimestampNanos:
		n, err = schema.NewPrimitiveNodeLogical(c.name, opt, schema.NewTimestampLogicalType(false, schema.TimeUnitNanos), parquet.Types.Int64, -1, -1)
	case pqInt96:
		n, err = schema.NewPrimitiveNode(c.name, opt, parquet.Types.Int96, -1, -1)
	case pqDate:
		n, err = schema.NewPrimitiveNodeLogical(c.name, opt, schema.DateLogicalType{}, parquet.Types.Int32, -1, -1)
	case pqDouble:
		n, err = schema.NewPrimitiveNode(c.name, opt, parquet.Types.Double, -1, -1)
	case pqFloat:
		n, err = schema.NewPrimitiveNode(c.name, opt, parquet.Types.Float, -1, -1)
	case pqBool:
		n, err = schema.NewPrimitiveNode(c.name, opt, parquet.Types.Boolean, -1, -1)
	case pqInt32:
		n, err = schema.NewPrimitiveNode(c.name, opt, parquet.Types.Int32, -1, -1)
	case pqInt64:
		n, err = schema.NewPrimitiveNode(c.name, opt, parquet.Types.Int64, -1, -1)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// writeParquet writes rows (text as in a CSV; "" and NULL are null) as a
// snappy Parquet file of row groups of 300 rows.
func writeParquet(t *testing.T, cols []pqColumn, rows [][]string) []byte {
	t.Helper()
	fields := schema.FieldList{}
	for _, c := range cols {
		fields = append(fields, c.node(t))
	}
	root, err := schema.NewGroupNode("schema", parquet.Repetitions.Required, fields, -1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDataPageSize(4096))
	w := file.NewParquetWriter(&buf, root, file.WithWriterProps(props))
	for start := 0; start < len(rows); start += 300 {
		group := rows[start:min(start+300, len(rows))]
		rg := w.AppendRowGroup()
		for j, c := range cols {
			cw, err := rg.NextColumn()
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			defs := make([]int16, len(group))
			for i, row := range group {
				if v := row[j]; v != "" && v != "NULL" {
					texts = append(texts, v)
					defs[i] = 1
				}
			}
			if err := writeColumn(cw, c, texts, defs); err != nil {
				t.Fatalf("column %s: %v", c.name, err)
			}
			if err := cw.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := rg.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeColumn(cw file.ColumnChunkWriter, c pqColumn, texts []string, defs []int16) error {
	unscaled := func(s string) (*big.Int, error) {
		d, err := decimal.NewFromString(s)
		if err != nil {
			return nil, err
		}
		return d.Shift(c.scale).BigInt(), nil
	}
	twos := func(v *big.Int, n int) []byte { // big-endian two's complement in n bytes
		if v.Sign() < 0 {
			v = new(big.Int).Add(v, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
		}
		b := v.Bytes()
		out := make([]byte, n)
		copy(out[n-len(b):], b)
		return out
	}
	timeOf := func(s string) (time.Time, error) {
		return time.Parse(time.RFC3339Nano, strings.Replace(s, " ", "T", 1)+zoneIfNone(s))
	}
	var err error
	switch w := cw.(type) {
	case *file.ByteArrayColumnChunkWriter:
		vals := make([]parquet.ByteArray, len(texts))
		for i, s := range texts {
			if c.kind == pqDecimalBytes {
				v, err := unscaled(s)
				if err != nil {
					return err
				}
				vals[i] = twos(v, len(v.Bytes())+1)
			} else {
				vals[i] = parquet.ByteArray(s)
			}
		}
		_, err = w.WriteBatch(vals, defs, nil)
	case *file.FixedLenByteArrayColumnChunkWriter:
		vals := make([]parquet.FixedLenByteArray, len(texts))
		for i, s := range texts {
			v, err := unscaled(s)
			if err != nil {
				return err
			}
			vals[i] = twos(v, 16)
		}
		_, err = w.WriteBatch(vals, defs, nil)
	case *file.Int64ColumnChunkWriter:
		vals := make([]int64, len(texts))
		for i, s := range texts {
			switch c.kind {
			case pqDecimal64:
				v, err := unscaled(s)
				if err != nil {
					return err
				}
				vals[i] = v.Int64()
			case pqTimestampMillis, pqTimestampMicros, pqTimestampNanos:
				ts, err := timeOf(s)
				if err != nil {
					return err
				}
				vals[i] = map[pqKind]int64{pqTimestampMillis: ts.UnixMilli(), pqTimestampMicros: ts.UnixMicro(), pqTimestampNanos: ts.UnixNano()}[c.kind]
			default:
				if vals[i], err = strconv.ParseInt(s, 10, 64); err != nil {
					return err
				}
			}
		}
		_, err = w.WriteBatch(vals, defs, nil)
	case *file.Int32ColumnChunkWriter:
		vals := make([]int32, len(texts))
		for i, s := range texts {
			switch c.kind {
			case pqDecimal32:
				v, err := unscaled(s)
				if err != nil {
					return err
				}
				vals[i] = int32(v.Int64())
			case pqDate:
				d, err := time.Parse(time.DateOnly, s)
				if err != nil {
					return err
				}
				vals[i] = int32(d.Unix() / 86400)
			default:
				n, err := strconv.ParseInt(s, 10, 32)
				if err != nil {
					return err
				}
				vals[i] = int32(n)
			}
		}
		_, err = w.WriteBatch(vals, defs, nil)
	case *file.Int96ColumnChunkWriter:
		vals := make([]parquet.Int96, len(texts))
		for i, s := range texts {
			ts, err := timeOf(s)
			if err != nil {
				return err
			}
			day := ts.Unix() / 86400
			nanos := uint64(ts.UnixNano() - day*86400*1e9)
			vals[i] = parquet.NewInt96([3]uint32{uint32(nanos), uint32(nanos >> 32), uint32(day + 2440588)})
		}
		_, err = w.WriteBatch(vals, defs, nil)
	case *file.Float64ColumnChunkWriter:
		vals := make([]float64, len(texts))
		for i, s := range texts {
			if vals[i], err = strconv.ParseFloat(s, 64); err != nil {
				return err
			}
		}
		_, err = w.WriteBatch(vals, defs, nil)
	case *file.Float32ColumnChunkWriter:
		vals := make([]float32, len(texts))
		for i, s := range texts {
			f, err := strconv.ParseFloat(s, 32)
			if err != nil {
				return err
			}
			vals[i] = float32(f)
		}
		_, err = w.WriteBatch(vals, defs, nil)
	case *file.BooleanColumnChunkWriter:
		vals := make([]bool, len(texts))
		for i, s := range texts {
			vals[i] = s == "true"
		}
		_, err = w.WriteBatch(vals, defs, nil)
	default:
		return errors.New("no writer for this column type")
	}
	return err
}

func zoneIfNone(s string) string {
	if strings.HasSuffix(s, "Z") {
		return ""
	}
	return "Z"
}
