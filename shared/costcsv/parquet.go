package costcsv

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/shopspring/decimal"
)

// Parquet exports (FOCUS or actual/amortized, snappy or not) are read
// column chunk by column chunk, a batch of rows at a time, and each value is
// turned into the text a CSV export of the same data holds, so that one
// record builder serves every format:
//
//   - strings (and JSON, enums) as they are; null as the empty string;
//   - DECIMAL(p, s) of any physical type exactly, from its unscaled integer:
//     "0.4834626378113516439680699237", trailing zeros dropped;
//   - integers in decimal; booleans as "true" and "false";
//   - DOUBLE and FLOAT as the shortest decimal that reads back as the same
//     binary number ("1.5e-05" stays 0.000015, written "0.000015"). That is
//     exact for the number in the file, but a double holds 15 to 17
//     significant digits: an export that writes money as DOUBLE has already
//     rounded the 28-digit amounts its CSV form carries, and totals of such
//     a file can differ from the CSV export's in the last digits;
//   - TIMESTAMP (milli, micro, nano; INT96 too) as RFC 3339 in UTC with
//     seconds ("2025-10-16T00:00:00Z", fractions only when present), a
//     timestamp not adjusted to UTC read as UTC; DATE as "2025-10-16".
//
// A row's line number is its position in the file plus one, as if the
// column names were line 1. Only flat files are read: a nested or repeated
// column is a *HeaderError naming it. Memory holds the file's footer, one
// batch of rows and one page per column, whatever the file's size.
//
// A corrupt file is an error, and a panic of the Parquet library on one is
// turned into an error too. But fuzzing found corrupt page headers on
// which arrow-go v18.7.0 loops forever without reading: a Parquet file from
// an untrusted source needs a time limit around its reading.

// parquetBatch is how many rows are decoded per column at a time.
const parquetBatch = 256

type parquetSource struct {
	file   string
	src    *readerAtErrs
	rdr    *file.Reader
	cols   []*schema.Column
	names  []string
	rg     int                      // the next row group to open
	chunks []file.ColumnChunkReader // the open row group's columns
	left   int64                    // rows of the open row group not yet decoded

	batch [][]string // per column, the decoded batch
	n, i  int        // rows in the batch, next row
	row   int64      // rows returned so far
	text  []byte
	ends  []uint32
	defs  []int16
	err   error
}

// corrupt turns a panic of the Parquet library, which trusts more of a
// file's metadata than a corrupt file deserves, into an error.
func corrupt(name string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("read parquet %s: %w: %v", name, ErrCorrupt, p)
	}
}

func newParquetSource(r io.ReaderAt, size int64, name string) (s *parquetSource, err error) {
	defer corrupt(name, &err)
	props := parquet.NewReaderProperties(nil)
	props.BufferedStreamEnabled = true // read pages as needed, not whole column chunks
	src := &readerAtErrs{r: r}
	rdr, err := file.NewParquetReader(io.NewSectionReader(src, 0, size), file.WithReadProps(props))
	if err != nil {
		if src.err != nil {
			return nil, fmt.Errorf("read parquet %s: %w", name, src.err)
		}
		return nil, &HeaderError{File: name, Reason: "parquet: " + err.Error()}
	}
	sc := rdr.MetaData().Schema
	s = &parquetSource{file: name, rdr: rdr, src: src}
	var nested []string
	for i := range sc.NumColumns() {
		c := sc.Column(i)
		if c.MaxRepetitionLevel() > 0 || len(c.ColumnPath()) > 1 {
			nested = append(nested, c.Path())
			continue
		}
		s.cols = append(s.cols, c)
		s.names = append(s.names, strings.TrimSpace(c.Name()))
	}
	if len(nested) > 0 {
		return nil, &HeaderError{File: name, Reason: "parquet: nested or repeated columns are not supported: " + strings.Join(nested, ", ")}
	}
	s.batch = make([][]string, len(s.cols))
	for j := range s.batch {
		s.batch[j] = make([]string, parquetBatch)
	}
	s.defs = make([]int16, parquetBatch)
	return s, nil
}

func (s *parquetSource) header() ([]string, error) {
	if len(s.names) == 0 {
		return nil, &HeaderError{File: s.file, Reason: "parquet: no columns"}
	}
	return s.names, nil
}

func (s *parquetSource) next() ([]byte, []uint32, int, error) {
	if s.err != nil {
		return nil, nil, 0, s.err
	}
	if s.i == s.n {
		if err := s.fill(); err != nil {
			s.err = err
			return nil, nil, 0, err
		}
	}
	s.text, s.ends = s.text[:0], s.ends[:0]
	for j := range s.batch {
		s.text = append(s.text, s.batch[j][s.i]...)
		s.ends = append(s.ends, uint32(len(s.text)))
		s.text = append(s.text, ',')
	}
	s.i++
	s.row++
	return s.text, s.ends, int(s.row) + 1, nil
}

// fill decodes the next batch of rows, opening row groups as needed.
func (s *parquetSource) fill() (err error) {
	defer corrupt(s.file, &err)
	for s.left == 0 {
		if s.rg == s.rdr.NumRowGroups() {
			return io.EOF
		}
		rg := s.rdr.RowGroup(s.rg)
		s.rg++
		s.left = rg.NumRows()
		s.chunks = s.chunks[:0]
		for j := range s.cols {
			c, err := rg.Column(j)
			if err != nil {
				return s.readErr(j, err)
			}
			s.chunks = append(s.chunks, c)
		}
	}
	n := int(min(s.left, parquetBatch))
	for j, c := range s.chunks {
		if err := s.decode(j, c, n); err != nil {
			return s.readErr(j, err)
		}
	}
	s.left -= int64(n)
	s.n, s.i = n, 0
	return nil
}

// readErr classifies an error reading column j: the underlying reader's,
// or corrupt content (ErrCorrupt).
func (s *parquetSource) readErr(j int, err error) error {
	if s.src.err != nil {
		return fmt.Errorf("read parquet %s: column %s: %w", s.file, s.names[j], s.src.err)
	}
	return fmt.Errorf("read parquet %s: column %s: %w: %w", s.file, s.names[j], ErrCorrupt, err)
}

// readerAtErrs remembers the first error, other than io.EOF, of a ReaderAt.
type readerAtErrs struct {
	r   io.ReaderAt
	mu  sync.Mutex
	err error
}

func (s *readerAtErrs) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.r.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return n, err
}

// decode reads n rows of column j into s.batch[j].
func (s *parquetSource) decode(j int, c file.ColumnChunkReader, n int) error {
	col := s.cols[j]
	out := s.batch[j][:n]
	maxDef := col.MaxDefinitionLevel()
	var defs []int16
	if maxDef > 0 {
		defs = s.defs[:n]
	}
	switch c := c.(type) {
	case *file.ByteArrayColumnChunkReader:
		return readColumn(c.ReadBatch, make([]parquet.ByteArray, n), defs, maxDef, out, byteArrayText(col))
	case *file.FixedLenByteArrayColumnChunkReader:
		return readColumn(c.ReadBatch, make([]parquet.FixedLenByteArray, n), defs, maxDef, out, fixedText(col))
	case *file.Int32ColumnChunkReader:
		return readColumn(c.ReadBatch, make([]int32, n), defs, maxDef, out, int32Text(col))
	case *file.Int64ColumnChunkReader:
		return readColumn(c.ReadBatch, make([]int64, n), defs, maxDef, out, int64Text(col))
	case *file.Int96ColumnChunkReader:
		return readColumn(c.ReadBatch, make([]parquet.Int96, n), defs, maxDef, out, func(v parquet.Int96) string { return timeText(v.ToTime()) })
	case *file.Float64ColumnChunkReader:
		return readColumn(c.ReadBatch, make([]float64, n), defs, maxDef, out, func(v float64) string { return floatText(v, 64) })
	case *file.Float32ColumnChunkReader:
		return readColumn(c.ReadBatch, make([]float32, n), defs, maxDef, out, func(v float32) string { return floatText(float64(v), 32) })
	case *file.BooleanColumnChunkReader:
		return readColumn(c.ReadBatch, make([]bool, n), defs, maxDef, out, strconv.FormatBool)
	}
	return fmt.Errorf("unsupported physical type %s", col.PhysicalType())
}

// readColumn reads len(out) rows of one column with read and writes each
// row's text into out: null as "".
func readColumn[T any](read func(int64, []T, []int16, []int16) (int64, int, error), vals []T, defs []int16, maxDef int16, out []string, text func(T) string) error {
	rows := 0
	for rows < len(out) {
		var d []int16
		if defs != nil {
			d = defs[rows:]
		}
		total, nvals, err := read(int64(len(out)-rows), vals, d, nil)
		if err != nil {
			return err
		}
		if total == 0 {
			return errors.New("column ends before its row group")
		}
		v := 0
		for k := range int(total) {
			if d != nil && d[k] < maxDef {
				out[rows+k] = ""
				continue
			}
			if v >= nvals {
				return errors.New("fewer values than definition levels")
			}
			out[rows+k] = text(vals[v])
			v++
		}
		rows += int(total)
	}
	return nil
}

func byteArrayText(c *schema.Column) func(parquet.ByteArray) string {
	if scale, ok := decimalScale(c); ok {
		return func(v parquet.ByteArray) string { return bigDecimalText(v, scale) }
	}
	return func(v parquet.ByteArray) string { return string(v) }
}

func fixedText(c *schema.Column) func(parquet.FixedLenByteArray) string {
	if scale, ok := decimalScale(c); ok {
		return func(v parquet.FixedLenByteArray) string { return bigDecimalText(v, scale) }
	}
	if _, ok := c.LogicalType().(schema.UUIDLogicalType); ok {
		return func(v parquet.FixedLenByteArray) string {
			h := fmt.Sprintf("%x", []byte(v))
			if len(h) != 32 {
				return h
			}
			return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		}
	}
	return func(v parquet.FixedLenByteArray) string { return string(v) }
}

func int32Text(c *schema.Column) func(int32) string {
	if scale, ok := decimalScale(c); ok {
		return func(v int32) string { return decimal.New(int64(v), -scale).String() }
	}
	if _, ok := c.LogicalType().(schema.DateLogicalType); ok || c.ConvertedType() == schema.ConvertedTypes.Date {
		return func(v int32) string { return time.Unix(int64(v)*86400, 0).UTC().Format(time.DateOnly) }
	}
	return func(v int32) string { return strconv.FormatInt(int64(v), 10) }
}

func int64Text(c *schema.Column) func(int64) string {
	if scale, ok := decimalScale(c); ok {
		return func(v int64) string { return decimal.New(v, -scale).String() }
	}
	unit := schema.TimeUnitUnknown
	if ts, ok := c.LogicalType().(schema.TimestampLogicalType); ok {
		unit = ts.TimeUnit()
	} else {
		switch c.ConvertedType() {
		case schema.ConvertedTypes.TimestampMillis:
			unit = schema.TimeUnitMillis
		case schema.ConvertedTypes.TimestampMicros:
			unit = schema.TimeUnitMicros
		}
	}
	switch unit {
	case schema.TimeUnitMillis:
		return func(v int64) string { return timeText(time.UnixMilli(v)) }
	case schema.TimeUnitMicros:
		return func(v int64) string { return timeText(time.UnixMicro(v)) }
	case schema.TimeUnitNanos:
		return func(v int64) string { return timeText(time.Unix(0, v)) }
	}
	return func(v int64) string { return strconv.FormatInt(v, 10) }
}

// decimalScale reports a DECIMAL column's scale.
func decimalScale(c *schema.Column) (int32, bool) {
	if d, ok := c.LogicalType().(schema.DecimalLogicalType); ok {
		return d.Scale(), true
	}
	if c.ConvertedType() == schema.ConvertedTypes.Decimal {
		return c.SchemaNode().(*schema.PrimitiveNode).DecimalMetadata().Scale, true
	}
	return 0, false
}

// bigDecimalText reads a big-endian two's complement unscaled integer.
func bigDecimalText(b []byte, scale int32) string {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return decimal.NewFromBigInt(v, -scale).String()
}

func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// floatText is the shortest decimal that reads back as v; exponent form
// only for a number that plain form would make long.
func floatText(v float64, bits int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, bits)
	}
	s := strconv.FormatFloat(v, 'f', -1, bits)
	if len(s) > 40 {
		s = strconv.FormatFloat(v, 'e', -1, bits)
	}
	return s
}
