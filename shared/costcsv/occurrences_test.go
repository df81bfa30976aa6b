package costcsv

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tinyLimits are budgets small enough that a few thousand keys spill many
// times: a shard holds one to three keys, the filter is saturated (every
// new key is looked up on disk), runs are merged often, and with maxDirBits
// 0 and a page of 8 entries every lookup in a run interpolates.
var tinyLimits = map[string]occLimits{
	"one key a shard":    {shardSlots: 2, filterBytes: 8, maxRuns: 1, maxDirBits: 0, pageEntries: 8},
	"interpolation":      {shardSlots: 4, filterBytes: 8, maxRuns: 3, maxDirBits: 0, pageEntries: 8},
	"directory":          {shardSlots: 16, filterBytes: 64, maxRuns: 4, maxDirBits: 6, pageEntries: 4},
	"filter, few spills": {shardSlots: 32, filterBytes: 1 << 12, maxRuns: 2, maxDirBits: 14, pageEntries: 512},
}

// TestOccurrencesSpilled: with budgets that force spills, merges and
// lookups on disk, every occurrence number equals that of one unbounded
// map, for keys that recur across spills, one key counted far beyond the
// one-byte counter, fingerprints at both ends of the range and 0 (counted
// with 1, as the table does); and Close leaves no file behind.
func TestOccurrencesSpilled(t *testing.T) {
	for name, lim := range tinyLimits {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			o := occurrences{lim: lim, dir: dir}
			want := map[uint64]uint32{}
			rng := rand.New(rand.NewPCG(6, 7))
			pool := make([]uint64, 3000)
			for i := range pool {
				pool[i] = rng.Uint64()
			}
			pool[0], pool[1], pool[2], pool[3] = 1, 2, ^uint64(0), ^uint64(0)-1
			lines := 60000
			if lim.shardSlots < 4 {
				lines = 10000 // it spills every few lines: keep the test short
			}
			for i := range lines {
				var fp uint64
				switch r := rng.IntN(100); {
				case r < 5:
					fp = 42 // 500 to 3,000 times, with spills in between
				case r < 6:
					fp = 0
				case r < 80:
					fp = pool[rng.IntN(len(pool))]
				default:
					fp = rng.Uint64()
				}
				key := max(fp, 1)
				want[key]++
				got, err := o.next(fp)
				if err != nil {
					t.Fatalf("line %d: %v", i, err)
				}
				if got != want[key] {
					t.Fatalf("line %d (after %d spills): fingerprint %x occurrence %d, want %d", i, o.spills, fp, got, want[key])
				}
			}
			if want[42] < 300 || o.spills <= 2*lim.maxRuns {
				t.Fatalf("the test needs a key counted past 255 (%d) and merges (%d spills)", want[42], o.spills)
			}
			t.Logf("%d keys, %d spills, %d runs left", len(want), o.spills, len(o.runs))
			if len(o.runs) > lim.maxRuns {
				t.Errorf("%d runs kept, at most %d", len(o.runs), lim.maxRuns)
			}
			if err := o.close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("files left behind: %v", left)
			}
		})
	}
}

// TestReaderSpillsSameIDs: a Reader whose occurrence counts spill to disk
// many times gives every line the same occurrence number and id as one that
// keeps them all in memory, on a file whose natural keys repeat throughout.
func TestReaderSpillsSameIDs(t *testing.T) {
	text := newEAGen(11, 60, 4, 10).file(8000) // 720 natural keys, 10 % of lines repeated exactly
	data := []byte(text)
	read := func(lim occLimits, dir string) (*Reader, []*Record) {
		t.Helper()
		r, err := NewReader(bytes.NewReader(data), &Options{File: "gen.csv", Part: 2, TempDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		r.seen.lim = lim
		var recs []*Record
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			recs = append(recs, rec)
		}
		return r, recs
	}
	unbounded, want := read(occDefaults, "")
	if unbounded.seen.spills != 0 {
		t.Fatalf("the default budget spilled %d times on a small file", unbounded.seen.spills)
	}
	maxOcc := 0
	for _, rec := range want {
		maxOcc = max(maxOcc, rec.Occurrence)
	}
	if maxOcc < 5 {
		t.Fatalf("at most %d lines per natural key: the test needs repeats", maxOcc)
	}
	for name, lim := range tinyLimits {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r, got := read(lim, dir)
			t.Logf("%d spills, %d runs left", r.seen.spills, len(r.seen.runs))
			if r.seen.spills <= lim.maxRuns {
				t.Fatalf("%d spills: the budget is not small enough to test them", r.seen.spills)
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].Occurrence != want[i].Occurrence || got[i].ID != want[i].ID {
					t.Fatalf("line %d: occurrence %d id %s, want %d %s", want[i].Line, got[i].Occurrence, got[i].ID, want[i].Occurrence, want[i].ID)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("files left behind: %v", left)
			}
		})
	}
}

// TestSpillFails: when the counts must spill and the temporary folder is
// unusable, Next fails for good with an error that names the folder, and
// does not number lines it could not count.
func TestSpillFails(t *testing.T) {
	text := newEAGen(12, 200, 4, 0).file(500)
	dir := filepath.Join(t.TempDir(), "missing")
	r, err := NewReader(strings.NewReader(text), &Options{File: "gen.csv", TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	r.seen.lim = tinyLimits["one key a shard"]
	var first error
	for range 500 {
		_, err := r.Next()
		if err == nil {
			continue
		}
		var le *LineError
		if errors.As(err, &le) || errors.Is(err, io.EOF) {
			t.Fatalf("Next: %v, want a fatal spill error", err)
		}
		first = err
		break
	}
	if first == nil || !strings.Contains(first.Error(), "spill occurrence counts") || !strings.Contains(first.Error(), dir) {
		t.Fatalf("error %v, want one naming the spill and %s", first, dir)
	}
	if _, err := r.Next(); err != first {
		t.Errorf("Next after a fatal error: %v, want %v again", err, first)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestReaderClose: Next after Close fails rather than number lines without
// the counts Close dropped; the file is not read after Close returns (the
// reader reads ahead on a goroutine, which Close stops) and was read only
// a bounded way ahead; Close twice is harmless.
func TestReaderClose(t *testing.T) {
	text := newEAGen(3, 50, 2, 1).file(20000)
	cr := &countingReader{r: strings.NewReader(text)}
	r, err := NewReader(cr, &Options{File: "ea.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	n := cr.n.Load()
	time.Sleep(20 * time.Millisecond)
	if cr.n.Load() != n {
		t.Error("the file was read after Close returned")
	}
	if n >= int64(len(text)) {
		t.Errorf("read %d of %d bytes for one line: not bounded", n, len(text))
	}
	if _, err := r.Next(); !errors.Is(err, errClosed) {
		t.Errorf("Next after Close: %v, want %v", err, errClosed)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
