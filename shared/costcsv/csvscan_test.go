package costcsv

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// FuzzCSVScanner checks csvScanner against encoding/csv record by record:
// the same fields, the same starting lines, the same errors at the same
// places, and the same records after an error.
func FuzzCSVScanner(f *testing.F) {
	for _, s := range []string{
		"a,b,c\n1,2,3\n",
		"a,\"b,c\",d\r\n\"x\"\"y\",,\r\n",
		"a,\"multi\nline\",b\n\n\nc,d\n",
		"a,b\"c\n1,2\n",
		"\"a\"b,c\n1,2\n",
		"\"open,1\n2,3\n",
		"a,\"x\"\r\nb\r",
		"\"\"\n\"a\nb\"\"\nc\",d\n",
		"a,b\r\n\r\nc\rd,e\n",
		"\"a\"\n",
		"x,\"y\n",
		"\"é\"é,x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := csv.NewReader(bytes.NewReader(data))
		cr.FieldsPerRecord = -1
		sc := &csvScanner{br: bufio.NewReader(bytes.NewReader(data))}
		for range len(data) + 2 {
			want, werr := cr.Read()
			text, ends, line, err := sc.read()
			if errors.Is(werr, io.EOF) != errors.Is(err, io.EOF) {
				t.Fatalf("end: encoding/csv %v, scanner %v", werr, err)
			}
			if errors.Is(werr, io.EOF) {
				return
			}
			got := splitFields(nil, string(text), ends)
			if !slices.Equal(want, got) {
				t.Fatalf("fields: encoding/csv %q (%v), scanner %q (%v)", want, werr, got, err)
			}
			var wpe *csv.ParseError
			var se *scanError
			switch {
			case werr == nil && err == nil:
				if wl, _ := cr.FieldPos(0); wl != line {
					t.Fatalf("record %q: encoding/csv line %d, scanner line %d", want, wl, line)
				}
			case errors.As(werr, &wpe) && errors.As(err, &se):
				if *wpe != se.ParseError {
					t.Fatalf("error: encoding/csv %+v, scanner %+v", *wpe, se.ParseError)
				}
			default:
				t.Fatalf("error: encoding/csv %v, scanner %v", werr, err)
			}
		}
		t.Fatalf("no end after %d records", len(data)+2)
	})
}

func TestCSVScannerLongLine(t *testing.T) {
	long := strings.Repeat("x", 100000)
	sc := &csvScanner{br: bufio.NewReaderSize(strings.NewReader("a,"+long+"\r\n\""+long+"\"\"\n\",b\n"), 16)}
	text, ends, line, err := sc.read()
	if got := splitFields(nil, string(text), ends); err != nil || line != 1 || !slices.Equal(got, []string{"a", long}) {
		t.Fatalf("first record: line %d, %d fields, %v", line, len(got), err)
	}
	text, ends, line, err = sc.read()
	if got := splitFields(nil, string(text), ends); err != nil || line != 2 || !slices.Equal(got, []string{long + "\"\n", "b"}) {
		t.Fatalf("second record: line %d, %d fields, %v", line, len(got), err)
	}
	if _, _, _, err := sc.read(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
}

func TestCSVScannerTooLong(t *testing.T) {
	huge := "\"" + strings.Repeat("0123456789\n", maxRecordBytes/10)
	sc := &csvScanner{br: bufio.NewReader(strings.NewReader("a,b\n" + huge))}
	if _, _, _, err := sc.read(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := sc.read(); !errors.Is(err, errRecordTooLong) {
		t.Fatalf("err = %v, want errRecordTooLong", err)
	}
	if _, _, _, err := sc.read(); !errors.Is(err, errRecordTooLong) {
		t.Fatalf("second err = %v, want errRecordTooLong again", err)
	}
}
