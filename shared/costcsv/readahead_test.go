package costcsv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedSource yields rows of a script: a row of text and ends, a
// *rowError, or the final error. It counts its calls, and fails the test
// when called after it ended.
type scriptedSource struct {
	t     *testing.T
	steps []scriptStep
	calls atomic.Int64
}

type scriptStep struct {
	text []byte
	ends []uint32
	line int
	err  error
}

func (s *scriptedSource) header() ([]string, error) { return nil, nil }

func (s *scriptedSource) next() ([]byte, []uint32, int, error) {
	i := int(s.calls.Add(1)) - 1
	if i >= len(s.steps) {
		s.t.Errorf("source read after its final error (call %d)", i+1)
		return nil, nil, 0, io.EOF
	}
	st := s.steps[i]
	// Like the scanner, hand out a buffer that the next call overwrites.
	text := append(make([]byte, 0, len(st.text)+64), st.text...)
	return text, append([]uint32(nil), st.ends...), st.line, st.err
}

// script builds n rows of varied length (one far longer than a batch), a
// bad row every 97 rows, then final.
func script(n int, final error) []scriptStep {
	var steps []scriptStep
	for i := range n {
		line := i + 2
		if i%97 == 50 {
			steps = append(steps, scriptStep{line: line, err: &rowError{line: line, reason: fmt.Sprintf("bad %d", i)}})
			continue
		}
		f := fmt.Sprintf("row%d", i)
		if i == n/2 {
			f = strings.Repeat("x", 3*readAheadBytes)
		}
		text := []byte(f + ",v" + strings.Repeat("y", i%300) + ",")
		steps = append(steps, scriptStep{text: text, ends: []uint32{uint32(len(f)), uint32(len(text) - 1)}, line: line})
	}
	return append(steps, scriptStep{err: final})
}

// TestReadAheadYieldsTheSource checks that reading ahead changes nothing:
// every row, bad row and final error comes in order, as the source gave
// it, across many batches; the text leaves room for the ends after it
// without reaching the next row; the final error repeats; the source is
// not read past its end.
func TestReadAheadYieldsTheSource(t *testing.T) {
	fatal := errors.New("disk on fire")
	for _, final := range []error{io.EOF, fatal} {
		steps := script(20000, final)
		src := &scriptedSource{t: t, steps: steps}
		a := newReadAhead(src)
		for i, want := range steps {
			text, ends, line, err := a.next()
			if line != want.line || !errors.Is(err, want.err) {
				t.Fatalf("row %d: line %d err %v, want line %d err %v", i, line, err, want.line, want.err)
			}
			if !bytes.Equal(text, want.text) || fmt.Sprint(ends) != fmt.Sprint(want.ends) {
				t.Fatalf("row %d: %.40q %v, want %.40q %v", i, text, ends, want.text, want.ends)
			}
			if err == nil {
				if c := cap(text) - len(text); c != 4*len(ends) {
					t.Fatalf("row %d: %d bytes of room after the text, want %d", i, c, 4*len(ends))
				}
				// Fill the room as Reader.Next does: the next row, read
				// from the same batch, must come out whole all the same.
				_ = append(text, bytes.Repeat([]byte{0xff}, 4*len(ends))...)
			}
		}
		for range 2 {
			if _, _, _, err := a.next(); !errors.Is(err, final) {
				t.Fatalf("after the end: %v, want %v again", err, final)
			}
		}
		a.stop()
		a.stop() // harmless twice
		if got := src.calls.Load(); got != int64(len(steps)) {
			t.Fatalf("source read %d times, want %d", got, len(steps))
		}
	}
}

// blockingSource yields rows until told to stop, then blocks until
// released, counting reads.
type blockingSource struct {
	reads   atomic.Int64
	release chan struct{}
}

func (s *blockingSource) header() ([]string, error) { return nil, nil }

func (s *blockingSource) next() ([]byte, []uint32, int, error) {
	n := s.reads.Add(1)
	if n > 10*readAheadRows {
		<-s.release
	}
	return []byte("a,"), []uint32{1}, int(n), nil
}

// TestReadAheadStop checks that stop returns only once the goroutine has
// returned (no read of the source after it), and that a read in progress
// holds it.
func TestReadAheadStop(t *testing.T) {
	src := &blockingSource{release: make(chan struct{})}
	a := newReadAhead(src)
	if _, _, _, err := a.next(); err != nil {
		t.Fatal(err)
	}
	// The goroutine fills its batches, then waits for a free one.
	deadline := time.Now().Add(10 * time.Second)
	for src.reads.Load() < readAheadBatches*readAheadRows/2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() { a.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not return while the goroutine waited for a free batch")
	}
	reads := src.reads.Load()
	time.Sleep(20 * time.Millisecond)
	if src.reads.Load() != reads {
		t.Fatal("the source was read after stop returned")
	}
	select {
	case <-a.gone:
	default:
		t.Fatal("stop returned before the goroutine did")
	}

	// A read in progress: stop waits for it.
	src = &blockingSource{release: make(chan struct{})}
	a = newReadAhead(src)
	for range 9 * readAheadRows {
		if _, _, _, err := a.next(); err != nil {
			t.Fatal(err)
		}
	}
	for src.reads.Load() <= 10*readAheadRows && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // until the goroutine blocks in a read
	}
	stopped = make(chan struct{})
	go func() { a.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while a read of the source was in progress")
	case <-time.After(50 * time.Millisecond):
	}
	close(src.release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not return after the read ended")
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
