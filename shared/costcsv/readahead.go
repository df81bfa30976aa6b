package costcsv

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// readAhead reads the rows of a CSV source on a goroutine of its own, a
// batch ahead of the Reader: while the Reader builds the records of one
// batch, the next is scanned (and, for gzip, decompressed). Scanning is a
// quarter to a third of the work on an EA file: with a second core a
// Reader streams about 40 % faster (make bench); with one core it costs a
// channel operation per batch. Memory stays bounded: at most readAheadBatches
// batches exist, each about readAheadBytes of text (one longer row makes
// its batch longer, and that batch is dropped once read).
//
// It yields exactly what its source yields, in the same order: the same
// rows, the same *rowError for a bad row followed by the rows after it,
// and the same final io.EOF or fatal error, which it then repeats.
type readAhead struct {
	in rowSource

	full chan *rowBatch // batches read, in order
	free chan *rowBatch // batches the Reader is done with
	quit chan struct{}  // closed by stop: read no further
	gone chan struct{}  // closed when the goroutine has returned

	started bool
	cur     *rowBatch
	i       int
	err     error // the final error, once returned
}

const (
	readAheadBatches = 3         // one being read, one waiting, one with the Reader
	readAheadBytes   = 256 << 10 // rows' text (and ends) per batch
	readAheadRows    = 4096      // rows per batch, however short
)

// rowBatch holds rows as the source gave them. Each row's text is in buf,
// followed by room for its ends as four little-endian bytes each: the
// Reader appends them there (see Reader.Next) without touching the next
// row.
type rowBatch struct {
	buf  []byte
	ends []uint32
	rows []batchRow
}

type batchRow struct {
	from, to int // text is buf[from:to]; its ends' room follows
	endsFrom int // ends are ends[endsFrom : endsFrom+n]
	n        int
	line     int
	err      error // a *rowError, or the final error (io.EOF or fatal)
	final    bool
}

func newReadAhead(in rowSource) *readAhead {
	a := &readAhead{
		in:   in,
		full: make(chan *rowBatch, readAheadBatches),
		free: make(chan *rowBatch, readAheadBatches),
		quit: make(chan struct{}),
		gone: make(chan struct{}),
	}
	for range readAheadBatches {
		a.free <- &rowBatch{}
	}
	return a
}

// header is the source's: the Reader reads it before wrapping the source.
func (a *readAhead) header() ([]string, error) { return a.in.header() }

func (a *readAhead) next() ([]byte, []uint32, int, error) {
	if a.err != nil {
		return nil, nil, 0, a.err
	}
	if !a.started {
		a.started = true
		go a.run()
	}
	for a.cur == nil || a.i == len(a.cur.rows) {
		if a.cur != nil {
			a.free <- a.cur // never blocks: there are as many slots as batches
		}
		a.cur, a.i = <-a.full, 0
	}
	r := &a.cur.rows[a.i]
	a.i++
	if r.err != nil {
		if r.final {
			a.err = r.err
			a.cur = nil // the goroutine has returned; nothing more comes
		}
		return nil, nil, r.line, r.err
	}
	b := a.cur
	return b.buf[r.from : r.to : r.to+4*r.n], b.ends[r.endsFrom : r.endsFrom+r.n], r.line, nil
}

// run reads batches until the source ends, fails or stop is called.
func (a *readAhead) run() {
	defer close(a.gone)
	for {
		var b *rowBatch
		select {
		case b = <-a.free:
		case <-a.quit:
			return
		}
		if cap(b.buf) > 2*readAheadBytes {
			*b = rowBatch{} // a batch that held a very long row: let it go
		}
		b.buf, b.ends, b.rows = b.buf[:0], b.ends[:0], b.rows[:0]
		final := a.fill(b)
		select {
		case a.full <- b:
		case <-a.quit:
			return
		}
		if final {
			return
		}
	}
}

// fill reads rows into b until it is full or the source ends; it tells
// whether the source has ended (b's last row holds the final error).
func (a *readAhead) fill(b *rowBatch) (final bool) {
	defer func() {
		// A panic in the scanner would otherwise end the process from a
		// goroutine nobody can recover: it becomes the file's fatal error.
		if p := recover(); p != nil {
			b.rows = append(b.rows, batchRow{err: fmt.Errorf("costcsv: reading rows: panic: %v", p), final: true})
			final = true
		}
	}()
	for len(b.buf) < readAheadBytes && len(b.rows) < readAheadRows {
		text, ends, line, err := a.in.next()
		if err != nil {
			var re *rowError
			fatal := !errors.As(err, &re)
			b.rows = append(b.rows, batchRow{line: line, err: err, final: fatal})
			if fatal {
				return true
			}
			continue
		}
		from := len(b.buf)
		b.buf = append(b.buf, text...)
		to := len(b.buf)
		for _, e := range ends {
			b.buf = binary.LittleEndian.AppendUint32(b.buf, e)
		}
		b.rows = append(b.rows, batchRow{from: from, to: to, endsFrom: len(b.ends), n: len(ends), line: line})
		b.ends = append(b.ends, ends...)
		select {
		case <-a.quit:
			return false
		default:
		}
	}
	return false
}

// stop ends the reading ahead and returns once the goroutine has returned,
// so that the source's reader is not read after it. It may be called more
// than once.
func (a *readAhead) stop() {
	if !a.started {
		return
	}
	select {
	case <-a.quit:
	default:
		close(a.quit)
	}
	<-a.gone
}
