package costcsv

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// FuzzReader: no input makes the reader panic or loop, every accepted record
// has a 32-hex id and content hash, ids within a file are distinct, and
// every line error names a line. Seeds are in testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	f.Add([]byte("Date,Cost,BillingCurrency,Tags\n09/01/2023,1.5E-05,USD,\"\"\"a\"\": \"\"b\"\"\"\n"))
	f.Add([]byte("\ufeffBilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,Tags\r\n1,2,USD,2024-09-01 00:00:00,NULL\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), &Options{File: "fuzz.csv", Part: 1})
		if err != nil {
			var he *HeaderError
			if !errors.As(err, &he) {
				t.Fatalf("NewReader on in-memory input: %v", err)
			}
			return
		}
		ids := map[string]int{}
		for range len(data) + 2 { // a reader that does not advance is a bug
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			var le *LineError
			if errors.As(err, &le) {
				if le.Line < 2 {
					t.Fatalf("line error on line %d: %v", le.Line, le)
				}
				continue
			}
			if err != nil {
				return // fatal: an unterminated quote
			}
			if !hex32.MatchString(rec.ID) || !hex32.MatchString(rec.ContentHash) {
				t.Fatalf("line %d: ID %q, ContentHash %q", rec.Line, rec.ID, rec.ContentHash)
			}
			if prev, ok := ids[rec.ID]; ok {
				t.Fatalf("lines %d and %d share id %s", prev, rec.Line, rec.ID)
			}
			ids[rec.ID] = rec.Line
			if len(rec.Date) != 10 || rec.Tags.Map() == nil || rec.AdditionalInfo.Map() == nil || rec.Raw.Len() != len(r.Header()) {
				t.Fatalf("line %d: incomplete record %+v", rec.Line, rec)
			}
		}
		t.Fatalf("reader did not reach the end of %d bytes", len(data))
	})
}

// FuzzDecodeObject checks decodeObject against encoding/json (Decoder with
// UseNumber, nothing after the value): same inputs accepted, same values.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{"a":"b"}`, `{ "UsageType": "ComputeHR",  "VCPUs": 2, "x": 1.0e-5 }`, `{"a":{"b":[1,true,null,"\u00e9\ud83d\ude00"]}}`,
		`{"a":"\ud800x"}`, `{"a":"\ud800\u0041"}`, "{\"a\":\"\xff\"}", `{"a":01}`, `{"a":-}`, `{"a":1}}`, `{"a" 1}`,
		`{"a":"b",}`, `{}`, ` {"k":"v","k":"w"} `, `{"a":"\/\b\f\n\r\t\\\""}`, `{"a":tru}`, `{"a":[1,]}`,
		`{"z":1,"a":{"y":[{"b":1,"a":2}],"x":null},"z":"again","m":true}`, `"k":"v","a":[]`, `{"t":{"b":"\u00e9","a":"\u0001"}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _, err := decodeObject(s, false, false)
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var want map[string]any
		werr := dec.Decode(&want)
		if werr == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				werr = errors.New("data after the value")
			}
		}
		if werr == nil && want == nil {
			werr = errors.New("null")
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("decodeObject(%q) error = %v, encoding/json error = %v", s, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeObject(%q) = %#v, encoding/json = %#v", s, got, want)
		}
		// The canonical text built while parsing is what appendCanonical
		// writes from the decoded values, for objects and for tags.
		var p jsonParser
		if obj, err := p.parseObject(s, true); err == nil {
			if want := appendCanonical(nil, obj); string(p.out) != string(want) {
				t.Fatalf("canonical of %q = %s, appendCanonical = %s", s, p.out, want)
			}
		}
		if tags, err := p.parseTags(s, true); err == nil {
			if want := appendCanonical(nil, tags); string(p.out) != string(want) {
				t.Fatalf("canonical tags of %q = %s, appendCanonical = %s", s, p.out, want)
			}
		}
		// Checking without building values accepts the same inputs and
		// makes the same text, which decodes back to the same values.
		for _, tags := range []bool{false, true} {
			var built, checked jsonParser
			var berr error
			if tags {
				_, berr = built.parseTags(s, true)
			} else {
				_, berr = built.parseObject(s, true)
			}
			cerr := checked.canonical(s, tags)
			if (berr == nil) != (cerr == nil) || string(built.out) != string(checked.out) {
				t.Fatalf("tags %v: canonical(%q) = %s, %v; with values %s, %v", tags, s, checked.out, cerr, built.out, berr)
			}
			if cerr != nil {
				continue
			}
			if tags {
				want, _ := parseTags(s)
				if got := (Tags{json: string(checked.out)}).Map(); !reflect.DeepEqual(got, want) {
					t.Fatalf("Tags(%q).Map() = %#v, want %#v", s, got, want)
				}
			} else {
				want, _ := parseObject(s)
				if got := (Object{json: string(checked.out)}).Map(); !reflect.DeepEqual(got, want) {
					t.Fatalf("Object(%q).Map() = %#v, want %#v", s, got, want)
				}
			}
		}
		// A brace-less fragment reads as the object it abbreviates.
		bareGot, _, berr := decodeObject(s, true, false)
		wrapped, _, werr2 := decodeObject("{"+s+"}", false, false)
		if (berr == nil) != (werr2 == nil) || !reflect.DeepEqual(bareGot, wrapped) {
			t.Fatalf("bare %q = %#v, %v; wrapped = %#v, %v", s, bareGot, berr, wrapped, werr2)
		}
		// parseTags trims the column first (any Unicode space), then decodes
		// the same way, as strings.
		if ts := strings.TrimSpace(s); strings.HasPrefix(ts, "{") {
			obj, _, oerr := decodeObject(ts, false, false)
			tags, terr := parseTags(s)
			if (terr == nil) != (oerr == nil) {
				t.Fatalf("parseTags(%q) error = %v, decodeObject error = %v", s, terr, oerr)
			}
			if terr == nil && len(tags) != len(obj) {
				t.Fatalf("parseTags(%q) has %d keys, decodeObject %d", s, len(tags), len(obj))
			}
		}
	})
}

// FuzzFastAmount checks parseAmount's fast path against decimal.NewFromString.
func FuzzFastAmount(f *testing.F) {
	for _, s := range []string{"0", "3.25", "-0.000015", "123456789012345678", "1234567890123456789", "5.", ".5", "-", "1.2.3",
		"0.0000000072922557592391990000", "7.2922557592391990000E-9", "1.5E-05", "-1e+3", "1e", "1e-", "1e1234",
		"0.4834626378113516439680699237", "-99999999999999999999999999999999.9999", "9223372036854775808", "-0", "00012.50"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := fastAmount(s)
		if !ok {
			return
		}
		want, err := decimal.NewFromString(s)
		if err != nil || !got.Equal(want) || got.Exponent() != want.Exponent() {
			t.Fatalf("fastAmount(%q) = %s (exp %d), NewFromString = %s (exp %d), %v", s, got, got.Exponent(), want, want.Exponent(), err)
		}
	})
}
