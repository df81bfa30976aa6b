package costcsv

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// benchFile is a generated EA file of 20,000 lines (about 20 MB), shared by
// the benchmarks so that their MB/s compare; built on first use only.
var benchFile = sync.OnceValue(func() []byte {
	header, lines := genEA(7, 20000, 5)
	return []byte(header + strings.Join(lines, ""))
})

// BenchmarkReader reads the whole generated EA file into records. Compare its
// MB/s with BenchmarkBareCSV. The heap-MB metric is the live heap after the
// last line, which stays flat as files grow (records are not retained).
func BenchmarkReader(b *testing.B) {
	data := benchFile()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var rows int
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data), &Options{File: "bench.csv"})
		if err != nil {
			b.Fatal(err)
		}
		rows = 0
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows++
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(float64(rows), "rows")
}

// BenchmarkBareCSV is the floor: encoding/csv reading the same bytes with
// ReuseRecord and nothing else.
func BenchmarkBareCSV(b *testing.B) {
	data := benchFile()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		cr := csv.NewReader(bytes.NewReader(data))
		cr.ReuseRecord = true
		cr.FieldsPerRecord = -1
		for {
			_, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
