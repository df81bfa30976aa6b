package costcsv

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"slices"
	"sort"
)

// occurrences counts the lines seen per natural key, to number lines that
// are identical in every identifying column. It is the only state of a
// Reader that would grow with the file, so its memory has a fixed budget
// (about 14 MiB, occDefaults) and what does not fit goes to temporary files.
//
// A key is 64 bits of its hash (never the line). Counts live first in a
// table in memory: open-addressing shards of a fingerprint and a one-byte
// count per slot (counts above 254 in a map), 9 bytes a slot, shards that
// grow one at a time up to shardSlots each (2^20 slots, 9 MiB in all:
// about 760,000 keys; make bench's 1 GiB file, a million lines of some
// 900,000 keys, spills once). When a shard is full, or the
// map of large counts is, the whole table is spilled: written, sorted by
// fingerprint, as a run of 12-byte (fingerprint, count) entries to a
// temporary file (Options.TempDir, else os.TempDir; unlinked at once where
// the system allows, else removed by Close), then emptied.
//
// A fingerprint the table lacks is looked up in the runs, newest first,
// and inserted into the table with the count found plus one: the table
// then shadows the runs (its count is the newer), and so does a newer run
// an older one. So the count of a key is always that of the table, else of
// the newest run holding it, else 0: exactly what one unbounded table
// would hold, and the numbering does not depend on when spills happen.
//
// Lookups stay cheap without an index that grows: fingerprints are
// uniformly random, so a run keeps in memory only a directory of where
// each of at most 2^14 top-bit buckets starts (one read of about 64
// entries per lookup; in a very large run, interpolation between the
// bucket's bounds finds the page in one or two reads). A filter of the
// spilled keys (4 MiB, three bits in one word per key: under 1 % false
// positives up to two million spilled keys, and only slower, never wrong,
// beyond) answers "never spilled" for most new keys without touching
// disk. When there are more than four runs they are merged into one, so a
// lookup reads a page from each of at most four runs. On disk a key takes 12 bytes: a file of
// two million distinct keys spills about 24 MB.
//
// Measured by make bench (BenchmarkEAFile, peak heap / memory held by the
// Go runtime): 31-33 / 41-42 MiB at 1 GiB (1 spill), 30 / 40 MiB at 2 GiB
// (2 spills), 33 / 43 MiB at 8 GiB (10 spills, merged twice); without
// spills, 40-41 / 51-52 MiB at 1 GiB and 77 / 88 MiB at 2 GiB. Throughput
// stayed within the noise of a shared machine (47-49 % of a bare
// encoding/csv read per CPU-second at 1 GiB, against 48-50 % without).
//
// Two different keys share a counter only if their 64-bit fingerprints are
// equal: for a million distinct keys the chance is about 3 in 100 million.
// Even then ids stay distinct (they hash the whole key) and deterministic
// for a given file; only reordering such a file could renumber those lines.
type occurrences struct {
	lim occLimits // the zero value means occDefaults
	dir string    // where runs go; "" means os.TempDir()

	shards [occShards]occShard
	big    map[uint64]uint32 // counts from occBig up, of keys in shards

	filter  []uint64  // a filter of the spilled keys; nil before the first spill
	runs    []*occRun // oldest first
	spills  int       // how many times the table was spilled (for tests)
	scratch []occEntry
	w       *bufio.Writer
	page    []byte
}

// occLimits bounds the memory of occurrences. Tests shrink them to force
// spills, merges and interpolation on small files.
type occLimits struct {
	shardSlots  int // slots per shard at most: a power of two
	filterBytes int // size of the filter of spilled keys: a power of two, at least 8
	maxRuns     int // runs kept before they are merged into one
	maxDirBits  int // a run's directory has at most 2^maxDirBits buckets
	pageEntries int // entries read at once from a run
}

var occDefaults = occLimits{
	shardSlots:  1 << 14, // 2^20 slots in all: 9 MiB
	filterBytes: 4 << 20,
	maxRuns:     4,
	maxDirBits:  14, // 128 KiB per run
	pageEntries: 512,
}

const (
	occShardBits = 6
	occShards    = 1 << occShardBits
	occMinSlots  = 64
	occBig       = 255 // count byte meaning "see the map of large counts"
	occEntrySize = 12  // a run's entry: big-endian fingerprint and count
	occBucketDiv = 64  // a run's directory aims at this many entries a bucket
)

type occShard struct {
	fps    []uint64 // 0 = empty slot
	counts []uint8
	n      int
}

type occEntry struct {
	fp    uint64
	count uint32
}

// next counts one more line with fingerprint fp and returns its occurrence
// number, from 1. An error (the temporary files cannot be written or read)
// leaves the count undefined: the caller stops reading.
func (o *occurrences) next(fp uint64) (uint32, error) {
	if fp == 0 {
		fp = 1 // 0 marks an empty slot
	}
	if o.lim.shardSlots == 0 {
		o.lim = occDefaults
	}
	s := &o.shards[fp>>(64-occShardBits)]
	if i, ok := s.find(fp); ok {
		c := o.increment(s, i, fp)
		return c, o.spillIfBig()
	}
	c, err := o.spilled(fp)
	if err != nil {
		return 0, err
	}
	if len(s.fps) >= o.lim.shardSlots && 4*(s.n+1) > 3*len(s.fps) {
		if err := o.spill(); err != nil {
			return 0, err
		}
	}
	c++
	o.insert(s, fp, c)
	return c, o.spillIfBig()
}

// find returns the slot of fp in s, or false.
func (s *occShard) find(fp uint64) (int, bool) {
	if len(s.fps) == 0 {
		return 0, false
	}
	mask := uint64(len(s.fps) - 1)
	for i := fp & mask; ; i = (i + 1) & mask {
		switch s.fps[i] {
		case 0:
			return 0, false
		case fp:
			return int(i), true
		}
	}
}

// increment adds one to the count in slot i of s, and returns it.
func (o *occurrences) increment(s *occShard, i int, fp uint64) uint32 {
	switch c := s.counts[i]; {
	case c < occBig-1:
		s.counts[i] = c + 1
		return uint32(c) + 1
	case c == occBig-1:
		s.counts[i] = occBig
		o.setBig(fp, occBig)
		return occBig
	default:
		o.big[fp]++
		return o.big[fp]
	}
}

func (o *occurrences) setBig(fp uint64, c uint32) {
	if o.big == nil {
		o.big = map[uint64]uint32{}
	}
	o.big[fp] = c
}

// insert puts fp, absent from s, with count c into s, growing it if it
// must (the caller has made room under shardSlots).
func (o *occurrences) insert(s *occShard, fp uint64, c uint32) {
	if 4*(s.n+1) > 3*len(s.fps) {
		s.grow(min(occMinSlots, o.lim.shardSlots))
	}
	mask := uint64(len(s.fps) - 1)
	i := fp & mask
	for s.fps[i] != 0 {
		i = (i + 1) & mask
	}
	s.fps[i] = fp
	s.n++
	if c < occBig {
		s.counts[i] = uint8(c)
		return
	}
	s.counts[i] = occBig
	o.setBig(fp, c)
}

func (s *occShard) grow(minSlots int) {
	n := max(minSlots, 2*len(s.fps))
	fps, counts := make([]uint64, n), make([]uint8, n)
	mask := uint64(n - 1)
	for j, fp := range s.fps {
		if fp == 0 {
			continue
		}
		i := fp & mask
		for fps[i] != 0 {
			i = (i + 1) & mask
		}
		fps[i], counts[i] = fp, s.counts[j]
	}
	s.fps, s.counts = fps, counts
}

// spillIfBig spills the table when the map of large counts has outgrown its
// share of the budget (a sixteenth of the slots).
func (o *occurrences) spillIfBig() error {
	if len(o.big) <= occShards*o.lim.shardSlots/16 {
		return nil
	}
	return o.spill()
}

// spilled returns the count of fp in the newest run that holds it, or 0.
func (o *occurrences) spilled(fp uint64) (uint32, error) {
	if len(o.runs) == 0 || !o.filterHas(fp) {
		return 0, nil
	}
	if o.page == nil {
		o.page = make([]byte, o.lim.pageEntries*occEntrySize)
	}
	for k := len(o.runs) - 1; k >= 0; k-- {
		c, ok, err := o.runs[k].lookup(fp, o.page)
		if err != nil {
			return 0, fmt.Errorf("read occurrence counts spilled to %s: %w", o.runs[k].f.Name(), err)
		}
		if ok {
			return c, nil
		}
	}
	return 0, nil
}

// filterWord returns the word of the filter for fp and the three bits of
// it that fp sets. The fingerprint is mixed first: its low bits also pick
// its table slot.
func (o *occurrences) filterWord(fp uint64) (*uint64, uint64) {
	h := fp * 0x9e3779b97f4a7c15
	w := &o.filter[(h>>32)&uint64(len(o.filter)-1)]
	return w, 1<<(h&63) | 1<<(h>>6&63) | 1<<(h>>12&63)
}

func (o *occurrences) filterHas(fp uint64) bool {
	w, m := o.filterWord(fp)
	return *w&m == m
}

func (o *occurrences) filterAdd(fp uint64) {
	w, m := o.filterWord(fp)
	*w |= m
}

// spill writes the table as a new run, sorted by fingerprint, empties it,
// and merges the runs when there are too many.
func (o *occurrences) spill() error {
	n := 0
	for i := range o.shards {
		n += o.shards[i].n
	}
	if n == 0 {
		return nil
	}
	if o.filter == nil {
		o.filter = make([]uint64, o.lim.filterBytes/8)
	}
	b, err := o.newRun(int64(n))
	if err != nil {
		return err
	}
	// The shards hold consecutive ranges of fingerprints (by their top
	// bits): sorting each sorts the run.
	for i := range o.shards {
		s := &o.shards[i]
		es := o.scratch[:0]
		for j, fp := range s.fps {
			if fp == 0 {
				continue
			}
			c := uint32(s.counts[j])
			if c == occBig {
				c = o.big[fp]
			}
			es = append(es, occEntry{fp, c})
		}
		slices.SortFunc(es, func(a, b occEntry) int { return cmp.Compare(a.fp, b.fp) })
		for _, e := range es {
			b.add(e)
			o.filterAdd(e.fp)
		}
		o.scratch = es
		clear(s.fps)
		clear(s.counts)
		s.n = 0
	}
	clear(o.big)
	run, err := b.finish()
	if err != nil {
		return err
	}
	o.runs = append(o.runs, run)
	o.spills++
	if len(o.runs) > o.lim.maxRuns {
		return o.merge()
	}
	return nil
}

// merge replaces the runs by one holding, for each fingerprint, the count
// of the newest run that has it.
func (o *occurrences) merge() error {
	var total int64
	type cursor struct {
		r    *bufio.Reader
		e    occEntry
		left int64
	}
	cs := make([]cursor, len(o.runs))
	for k, run := range o.runs {
		total += run.n
		cs[k] = cursor{r: bufio.NewReaderSize(io.NewSectionReader(run.f, 0, run.n*occEntrySize), 32<<10), left: run.n}
	}
	var buf [occEntrySize]byte
	advance := func(c *cursor) error { // c.left > 0
		if _, err := io.ReadFull(c.r, buf[:]); err != nil {
			return fmt.Errorf("merge occurrence counts: %w", err)
		}
		c.e = occEntry{binary.BigEndian.Uint64(buf[:]), binary.BigEndian.Uint32(buf[8:])}
		c.left--
		return nil
	}
	live := make([]*cursor, 0, len(cs)) // cursors with a current entry
	for k := range cs {
		if cs[k].left > 0 {
			if err := advance(&cs[k]); err != nil {
				return err
			}
			live = append(live, &cs[k])
		}
	}
	b, err := o.newRun(total)
	if err != nil {
		return err
	}
	for len(live) > 0 {
		// The smallest fingerprint; among runs holding it, the newest
		// (cursors are in run order) has its count.
		m := live[0].e
		for _, c := range live[1:] {
			if c.e.fp <= m.fp {
				m = c.e
			}
		}
		b.add(m)
		next := live[:0]
		for _, c := range live {
			if c.e.fp == m.fp {
				if c.left == 0 {
					continue
				}
				if err := advance(c); err != nil {
					b.run.close()
					return err
				}
			}
			next = append(next, c)
		}
		live = next
	}
	run, err := b.finish()
	if err != nil {
		return err
	}
	var errs []error
	for _, old := range o.runs {
		errs = append(errs, old.close())
	}
	o.runs = append(o.runs[:0], run)
	return errors.Join(errs...)
}

// close closes and removes the runs. The counts are gone: the owner reads
// no more lines.
func (o *occurrences) close() error {
	var errs []error
	for _, run := range o.runs {
		errs = append(errs, run.close())
	}
	o.runs, o.filter = nil, nil
	return errors.Join(errs...)
}

// occRun is a sorted run of (fingerprint, count) entries in a temporary
// file, with a directory of where each bucket of fingerprints (by their top
// bits) starts.
type occRun struct {
	f        *os.File
	unlinked bool // removed from its folder already; closing deletes it
	n        int64
	bits     uint    // the directory has 2^bits buckets
	dir      []int64 // dir[b] is the index of the first entry of bucket b; dir[2^bits] = n
	page     int     // entries read at once
}

// runBuilder writes a run's entries in fingerprint order.
type runBuilder struct {
	run    *occRun
	w      *bufio.Writer
	bucket int // next directory bucket to fill
	buf    [occEntrySize]byte
}

// newRun starts a run of at most n entries in a new temporary file.
func (o *occurrences) newRun(n int64) (*runBuilder, error) {
	f, err := os.CreateTemp(o.dir, "costcsv-occurrences-*")
	if err != nil {
		return nil, fmt.Errorf("spill occurrence counts: %w", err)
	}
	// Unlinking the open file (Unix) leaves nothing behind even if the
	// process dies; where it fails (Windows), close removes it.
	run := &occRun{f: f, unlinked: os.Remove(f.Name()) == nil, page: o.lim.pageEntries}
	run.bits = uint(min(o.lim.maxDirBits, max(0, bits.Len64(uint64(n/occBucketDiv)))))
	run.dir = make([]int64, 1<<run.bits+1)
	if o.w == nil {
		o.w = bufio.NewWriterSize(f, 64<<10)
	}
	o.w.Reset(f)
	return &runBuilder{run: run, w: o.w}, nil
}

// bucket returns the directory bucket of fp.
func (r *occRun) bucket(fp uint64) int { return int(fp >> (64 - r.bits)) } // a shift by 64 is 0

func (b *runBuilder) add(e occEntry) {
	r := b.run
	for bk := r.bucket(e.fp); b.bucket <= bk; b.bucket++ {
		r.dir[b.bucket] = r.n
	}
	binary.BigEndian.PutUint64(b.buf[:], e.fp)
	binary.BigEndian.PutUint32(b.buf[8:], e.count)
	b.w.Write(b.buf[:]) // an error sticks: finish reports it
	r.n++
}

func (b *runBuilder) finish() (*occRun, error) {
	r := b.run
	for ; b.bucket < len(r.dir); b.bucket++ {
		r.dir[b.bucket] = r.n
	}
	if err := b.w.Flush(); err != nil {
		r.close()
		return nil, fmt.Errorf("spill occurrence counts to %s: %w", r.f.Name(), err)
	}
	b.w.Reset(nil)
	return r, nil
}

func (r *occRun) close() error {
	err := r.f.Close()
	if !r.unlinked {
		if rerr := os.Remove(r.f.Name()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// lookup returns the count of fp in the run, reading it through page (room
// for r.page entries).
func (r *occRun) lookup(fp uint64, page []byte) (uint32, bool, error) {
	bk := r.bucket(fp)
	lo, hi := r.dir[bk], r.dir[bk+1]
	// The fingerprints of entries lo..hi-1 lie within [keyLo, keyHi].
	keyLo := uint64(bk) << (64 - r.bits)
	keyHi := keyLo + (^uint64(0) >> r.bits)
	for lo < hi {
		i, j := lo, hi
		if span := int64(r.page); hi-lo > span {
			// Fingerprints are uniform: guess where fp is and read the
			// page around it.
			frac := float64(fp-keyLo) / (float64(keyHi-keyLo) + 1)
			guess := lo + int64(frac*float64(hi-lo))
			i = min(max(lo, guess-span/2), hi-span)
			j = i + span
		}
		b := page[:(j-i)*occEntrySize]
		if _, err := r.f.ReadAt(b, i*occEntrySize); err != nil {
			return 0, false, err
		}
		at := func(k int) uint64 { return binary.BigEndian.Uint64(b[k*occEntrySize:]) }
		m := int(j - i)
		switch k := sort.Search(m, func(k int) bool { return at(k) >= fp }); {
		case k < m && at(k) == fp:
			return binary.BigEndian.Uint32(b[k*occEntrySize+8:]), true, nil
		case k == 0 && i > lo:
			hi, keyHi = i, at(0)-1
		case k == m && j < hi:
			lo, keyLo = j, at(m-1)+1
		default:
			return 0, false, nil // between two entries of the page, or the page was the whole range
		}
	}
	return 0, false, nil
}
