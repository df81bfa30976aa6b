package costcsv

import (
	"bufio"
	"encoding/csv"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var eaSize = flag.Int64("ea-size", 1<<30, "size in bytes of the EA file BenchmarkEAFile generates")

// BenchmarkEAFile generates an EA file of -ea-size bytes (1 GiB by default:
// about a million lines from 50,000 resources over 30 days) in a temporary
// folder, then reads it from disk twice in the same run: with a bare
// encoding/csv Reader (ReuseRecord, nothing else) and with costcsv.Reader
// (every record built, ids and all). Each reports its MB/s and the peak
// heap seen while it read (peak-heap-MiB, sampled every millisecond from
// runtime/metrics, the live and not yet collected objects) and the peak of
// the memory the Go runtime held from the OS (peak-go-MiB); the costcsv
// line also gives its share of the bare read's throughput by wall time
// (%-of-csv-MB/s) and by CPU time (%-of-csv-MB/cpu-s, the steadier on a
// machine shared with other work), and how many times the reader spilled
// its occurrence counts to a temporary file (spills: see occurrences.go).
// The budget is at least 40 % of the bare read's throughput (by wall time:
// costcsv reads CSV a batch ahead on a second goroutine, see readahead.go)
// and a peak under 64 MiB.
func BenchmarkEAFile(b *testing.B) {
	path := writeEAFile(b, *eaSize)
	var bare readCost
	b.Run("encoding-csv", func(b *testing.B) { bare = benchFile(b, path, readBare) })
	b.Run("costcsv", func(b *testing.B) {
		parser := benchFile(b, path, readCostcsv)
		if bare.wall > 0 {
			// costcsv's share of the bare read's throughput, by wall time and
			// by CPU time: the budget is at least 40 %.
			b.ReportMetric(100*bare.wall.Seconds()/parser.wall.Seconds(), "%-of-csv-MB/s")
		}
		if bare.cpu > 0 && parser.cpu > 0 {
			b.ReportMetric(100*bare.cpu.Seconds()/parser.cpu.Seconds(), "%-of-csv-MB/cpu-s")
		}
		b.ReportMetric(float64(occurrenceSpills), "spills")
	})
}

// readCost is the time one read of the file took.
type readCost struct{ wall, cpu time.Duration }

// writeEAFile writes a generated EA file of about size bytes into a
// temporary folder removed after the benchmark.
func writeEAFile(b *testing.B, size int64) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "ea.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	g := newEAGen(7, 50000, 30, 1)
	n, _ := w.WriteString("\ufeff" + g.header())
	written := int64(n)
	for written < size {
		n, _ := w.WriteString(g.line())
		written += int64(n)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchFile times read over the file at path and reports the throughput
// and peak memory; it returns the time of one read.
func benchFile(b *testing.B, path string, read func(io.Reader) (int, error)) readCost {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	runtime.GC()
	debug.FreeOSMemory()
	peak := startPeakSampler()
	var rows int
	start, cpu := time.Now(), processCPU()
	n := 0
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		rows, err = read(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	elapsed, cpu := time.Since(start), processCPU()-cpu
	heap, held := peak()
	if cpu > 0 {
		// Throughput per CPU-second (GC included) is steadier than MB/s on
		// a machine shared with other work.
		b.ReportMetric(float64(st.Size())*float64(n)/cpu.Seconds()/1e6, "MB/cpu-s")
	}
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(held)/(1<<20), "peak-go-MiB")
	b.ReportMetric(float64(rows), "rows")
	return readCost{elapsed / time.Duration(n), cpu / time.Duration(n)}
}

func readBare(r io.Reader) (int, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	rows := 0
	for {
		_, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows - 1, nil
		}
		if err != nil {
			return rows, err
		}
		rows++
	}
}

// occurrenceSpills is how many times the last readCostcsv spilled its
// occurrence counts to disk.
var occurrenceSpills int

func readCostcsv(r io.Reader) (int, error) {
	rd, err := NewReader(r, &Options{File: "ea.csv"})
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	rows := 0
	for {
		_, err := rd.Next()
		if errors.Is(err, io.EOF) {
			occurrenceSpills = rd.seen.spills
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows++
	}
}

// startPeakSampler samples the heap every millisecond until the returned
// function is called, which returns the peaks: heap objects (live and not
// yet swept) and the memory the runtime holds from the OS.
func startPeakSampler() func() (heap, held uint64) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var heap, held uint64
	sample := func() {
		metrics.Read(samples)
		heap = max(heap, samples[0].Value.Uint64())
		held = max(held, samples[1].Value.Uint64()-samples[2].Value.Uint64())
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for !stop.Load() {
			sample()
			<-t.C
		}
	}()
	return func() (uint64, uint64) {
		stop.Store(true)
		wg.Wait()
		sample()
		return heap, held
	}
}
