package costcsv

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format is the encoding of a cost file.
type Format string

// The formats a Reader reads. Cost Details reports are CSV; exports write
// CSV, gzip-compressed CSV or Parquet.
const (
	FormatCSV     Format = "csv"
	FormatGzipCSV Format = "csv+gzip"
	FormatParquet Format = "parquet"
)

// ErrCorrupt is in the chain of a fatal error that comes from the file's
// content rather than from reading it: a corrupt or truncated gzip stream or
// Parquet file, a quoted field left open to the end, a record longer than
// 32 MiB. Reading the same file again fails the same way, so such a file is
// a permanent failure, not one to retry.
var ErrCorrupt = errors.New("corrupt file")

var (
	gzipMagic    = []byte{0x1f, 0x8b}
	parquetMagic = []byte("PAR1")
	utf8BOM      = []byte("\xef\xbb\xbf")
)

// rowSource yields the rows of a file as text fields, whatever its format.
type rowSource interface {
	// header returns the column names, once, before the first row.
	header() ([]string, error)
	// next returns the next row as its fields' text, concatenated, and
	// each field's end offset in it (both valid until the next call), and
	// the 1-based line where the row starts (the header is line 1). A row
	// the source cannot read is a *rowError and the source moves past it;
	// io.EOF ends the rows; any other error is fatal.
	next() (text []byte, ends []uint32, line int, err error)
}

// rowError is a row a source could not read as fields.
type rowError struct {
	line   int
	fields []string // as far as they were read
	reason string
}

func (e *rowError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.reason) }

// sniff returns up to n leading bytes of br without consuming them.
func sniff(br *bufio.Reader, n int) []byte {
	b, _ := br.Peek(n) // a short read is fine: the caller compares prefixes
	return b
}

// streamSource returns the source of a CSV or gzip-compressed CSV stream,
// told apart by the gzip magic bytes. A Parquet stream is refused: it needs
// random access (Open).
func streamSource(r io.Reader, file string) (rowSource, Format, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head := sniff(br, len(parquetMagic))
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		src := &sourceErrs{r: br}
		zr, err := gzip.NewReader(src)
		if err != nil {
			if src.err != nil {
				return nil, "", fmt.Errorf("read %s: %w", file, err)
			}
			return nil, "", &HeaderError{File: file, Reason: "gzip: " + err.Error()}
		}
		s := newCSVSource(zr, file)
		s.src = src
		return s, FormatGzipCSV, nil
	case bytes.Equal(head, parquetMagic):
		return nil, "", &HeaderError{File: file, Reason: "a Parquet file needs random access: open it with costcsv.Open, not NewReader"}
	}
	return newCSVSource(br, file), FormatCSV, nil
}

// csvSource reads CSV: RFC 4180 quoting, LF or CRLF line ends, a leading
// UTF-8 byte order mark skipped.
type csvSource struct {
	file string
	sc   csvScanner
	// src, for a decompressed stream, tells an error of the underlying
	// reader from one of the decompressor (corrupt content).
	src *sourceErrs
}

// sourceErrs remembers the first error, other than io.EOF, of a reader.
type sourceErrs struct {
	r   io.Reader
	err error
}

func (s *sourceErrs) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
		s.err = err
	}
	return n, err
}

// corrupt tells whether an error that is not a CSV parse error comes from
// the content (a record too long, a decompressor's complaint) rather than
// from the underlying reader.
func (s *csvSource) corrupt(err error) bool {
	return errors.Is(err, errRecordTooLong) || (s.src != nil && s.src.err == nil)
}

// skipBOM buffers r (unless it is buffered already) and skips a leading
// UTF-8 byte order mark.
func skipBOM(r io.Reader) *bufio.Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	if bytes.Equal(sniff(br, len(utf8BOM)), utf8BOM) {
		_, _ = br.Discard(len(utf8BOM)) // cannot fail: the bytes are buffered
	}
	return br
}

func newCSVSource(r io.Reader, file string) *csvSource {
	return &csvSource{file: file, sc: csvScanner{br: skipBOM(r)}}
}

func (s *csvSource) header() ([]string, error) {
	text, ends, _, err := s.sc.read()
	if err != nil {
		var se *scanError
		switch {
		case errors.Is(err, io.EOF):
			return nil, &HeaderError{File: s.file, Reason: "empty file, no header line"}
		case errors.As(err, &se):
			return nil, &HeaderError{File: s.file, Reason: se.Error()}
		case s.corrupt(err):
			return nil, &HeaderError{File: s.file, Reason: err.Error()}
		}
		return nil, fmt.Errorf("read header of %s: %w", s.file, err)
	}
	header := splitFields(nil, string(text), ends)
	for i, h := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
	}
	return header, nil
}

func (s *csvSource) next() ([]byte, []uint32, int, error) {
	text, ends, line, err := s.sc.read()
	if err == nil || errors.Is(err, io.EOF) {
		return text, ends, line, err
	}
	var se *scanError
	if !errors.As(err, &se) {
		if s.corrupt(err) {
			return nil, nil, 0, fmt.Errorf("read %s: %w: %w", s.file, ErrCorrupt, err)
		}
		return nil, nil, 0, fmt.Errorf("read %s: %w", s.file, err)
	}
	pe := &se.ParseError
	if errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine {
		if _, perr := s.sc.br.Peek(1); perr != nil {
			// The quoted field swallowed every line to the end: a truncated
			// or corrupt file, not one bad line.
			return nil, nil, 0, fmt.Errorf("read %s: line %d: quoted field still open at end of file (line %d): %w: %w", s.file, pe.StartLine, pe.Line, ErrCorrupt, pe)
		}
	}
	return nil, nil, 0, &rowError{line: pe.StartLine, fields: splitFields(nil, string(text), ends),
		reason: fmt.Sprintf("%v (line %d, byte %d)", pe.Err, pe.Line, pe.Column)}
}
