// Package parquetgen writes small Parquet files from text rows for tests,
// with arrow-go itself: one column of any type an export may use.
package parquetgen

import (
	"bytes"
	"errors"
	"math/big"
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

// Kind is a column's Parquet type.
type Kind int

// The kinds: text is a UTF-8 BYTE_ARRAY; decimals are DECIMAL(38 or 18 or
// 9, scale) in each physical type; timestamps are INT64 adjusted to UTC
// (nanoseconds: not adjusted); Int96 is the legacy timestamp.
const (
	Text Kind = iota
	DecimalFixed
	DecimalBytes
	Decimal64
	Decimal32
	TimestampMillis
	TimestampMicros
	TimestampNanos
	Int96
	Date
	Double
	Float
	Bool
	Int32
	Int64
)

// Column is one column to write: its name, its Parquet type and, for
// decimals, its scale.
type Column struct {
	Name  string
	Kind  Kind
	Scale int32
}

func (c Column) node(t testing.TB) schema.Node {
	opt := parquet.Repetitions.Optional
	var n schema.Node
	var err error
	switch c.Kind {
	case Text:
		n, err = schema.NewPrimitiveNodeLogical(c.Name, opt, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1)
	case DecimalFixed:
		n, err = schema.NewPrimitiveNodeLogical(c.Name, opt, schema.NewDecimalLogicalType(38, c.Scale), parquet.Types.FixedLenByteArray, 16, -1)
	case DecimalBytes:
		n, err = schema.NewPrimitiveNodeLogical(c.Name, opt, schema.NewDecimalLogicalType(38, c.Scale), parquet.Types.ByteArray, -1, -1)
	case Decimal64:
		n, err = schema.NewPrimitiveNodeLogical(c.Name, opt, schema.NewDecimalLogicalType(18, c.Scale), parquet.Types.Int64, -1, -1)
	case Decimal32:
		n, err = schema.NewPrimitiveNodeLogical(c.Name, opt, schema.NewDecimalLogicalType(9, c.Scale), parquet.Types.Int32, -1, -1)
	case TimestampMillis:
		n, err = schema.NewPrimitiveNodeLogical(c.Name, opt, schema.NewTimestampLogicalType(true, schema.TimeUnitMillis), parquet.Types.Int64, -1, -1)
	case TimestampMicros:
		n, err = schema.NewPrimitiveNodeLogical(c.Name, opt, schema.NewTimestampLogicalType(true, schema.TimeUnitMicros), parquet.Types.Int64, -1, -1)
	case TimestampNanos:
		n, err = schema.NewPrimitiveNodeLogical(c.Name, opt, schema.NewTimestampLogicalType(false, schema.TimeUnitNanos), parquet.Types.Int64, -1, -1)
	case Int96:
		n, err = schema.NewPrimitiveNode(c.Name, opt, parquet.Types.Int96, -1, -1)
	case Date:
		n, err = schema.NewPrimitiveNodeLogical(c.Name, opt, schema.DateLogicalType{}, parquet.Types.Int32, -1, -1)
	case Double:
		n, err = schema.NewPrimitiveNode(c.Name, opt, parquet.Types.Double, -1, -1)
	case Float:
		n, err = schema.NewPrimitiveNode(c.Name, opt, parquet.Types.Float, -1, -1)
	case Bool:
		n, err = schema.NewPrimitiveNode(c.Name, opt, parquet.Types.Boolean, -1, -1)
	case Int32:
		n, err = schema.NewPrimitiveNode(c.Name, opt, parquet.Types.Int32, -1, -1)
	case Int64:
		n, err = schema.NewPrimitiveNode(c.Name, opt, parquet.Types.Int64, -1, -1)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Write writes rows (text as in a CSV; "" and NULL are null) as a snappy
// Parquet file of row groups of 300 rows and pages of about 4 KiB.
func Write(t testing.TB, cols []Column, rows [][]string) []byte {
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
				t.Fatalf("column %s: %v", c.Name, err)
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

func writeColumn(cw file.ColumnChunkWriter, c Column, texts []string, defs []int16) error {
	unscaled := func(s string) (*big.Int, error) {
		d, err := decimal.NewFromString(s)
		if err != nil {
			return nil, err
		}
		return d.Shift(c.Scale).BigInt(), nil
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
			if c.Kind == DecimalBytes {
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
			switch c.Kind {
			case Decimal64:
				v, err := unscaled(s)
				if err != nil {
					return err
				}
				vals[i] = v.Int64()
			case TimestampMillis, TimestampMicros, TimestampNanos:
				ts, err := timeOf(s)
				if err != nil {
					return err
				}
				vals[i] = map[Kind]int64{TimestampMillis: ts.UnixMilli(), TimestampMicros: ts.UnixMicro(), TimestampNanos: ts.UnixNano()}[c.Kind]
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
			switch c.Kind {
			case Decimal32:
				v, err := unscaled(s)
				if err != nil {
					return err
				}
				vals[i] = int32(v.Int64())
			case Date:
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
