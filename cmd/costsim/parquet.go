package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/shopspring/decimal"
)

// Parquet export partitions (snappy): the same columns as the CSV form.
// Amounts, prices, quantities and rates are DECIMAL(38, 24), so that they
// keep every digit the CSV form writes (costsim's amounts have at most 24
// decimals); every other column is a UTF-8 string, an empty CSV value a
// null.

const parquetScale = 24

// parquetDecimals are the numeric columns, by lower-cased name, of the EA,
// MCA and FOCUS layouts.
var parquetDecimals = map[string]bool{}

func init() {
	for _, c := range strings.Split("quantity,effectiveprice,cost,costinbillingcurrency,unitprice,paygprice,"+
		"costinpricingcurrency,costinusd,paygcostinbillingcurrency,paygcostinusd,exchangeratepricingtobilling,"+
		"billedcost,effectivecost,listcost,contractedcost,consumedquantity,pricingquantity,listunitprice,contractedunitprice,"+
		"x_billedcostinusd,x_effectivecostinusd,x_billingexchangerate,x_effectiveunitprice", ",") {
		parquetDecimals[c] = true
	}
}

// parquetPart encodes one partition as a snappy-compressed Parquet file.
func parquetPart(header []string, rows [][]string) ([]byte, error) {
	fields := make([]arrow.Field, len(header))
	for i, h := range header {
		fields[i] = arrow.Field{Name: h, Type: arrow.BinaryTypes.String, Nullable: true}
		if parquetDecimals[strings.ToLower(h)] {
			fields[i].Type = &arrow.Decimal128Type{Precision: 38, Scale: parquetScale}
		}
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	for n, row := range rows {
		for i, v := range row {
			switch fb := b.Field(i).(type) {
			case *array.StringBuilder:
				if v == "" {
					fb.AppendNull()
				} else {
					fb.Append(v)
				}
			case *array.Decimal128Builder:
				if v == "" {
					fb.AppendNull()
					continue
				}
				d, err := toDecimal128(v)
				if err != nil {
					return nil, fmt.Errorf("row %d column %s: %w", n+1, header[i], err)
				}
				fb.Append(d)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
	if err != nil {
		return nil, err
	}
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// toDecimal128 is a decimal text at parquetScale, exactly.
func toDecimal128(text string) (decimal128.Num, error) {
	d, err := decimal.NewFromString(text)
	if err != nil {
		return decimal128.Num{}, err
	}
	if -d.Exponent() > parquetScale {
		return decimal128.Num{}, fmt.Errorf("%s has more than %d decimals", text, parquetScale)
	}
	return decimal128.FromBigInt(d.Shift(parquetScale).BigInt()), nil
}
