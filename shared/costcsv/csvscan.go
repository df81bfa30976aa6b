package costcsv

import (
	"bufio"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// csvScanner reads CSV records exactly as encoding/csv's Reader does with
// its defaults (comma, RFC 4180 quotes, no comments, FieldsPerRecord -1):
// the same fields, the same skipped blank lines, the same \r\n to \n, and
// the same errors at the same line and byte (FuzzCSVScanner checks it
// against encoding/csv). It exists for speed: one scan per field instead
// of two, and a record kept as one string plus field offsets, which is
// also how Raw stores it.
type csvScanner struct {
	br      *bufio.Reader
	numLine int    // physical lines read so far
	raw     []byte // a line longer than br's buffer
	rec     []byte // the record's unescaped text
	ends    []uint32
	sp      []uint32 // where the current line has a comma or a quote
	errRead error
}

// maxRecordBytes bounds one record: a quote that is never closed would
// otherwise gather the whole file into memory.
const maxRecordBytes = 32 << 20

// scanError is a malformed record: encoding/csv's ParseError, kept with the
// fields read before it.
type scanError struct {
	csv.ParseError
}

var errRecordTooLong = errors.New("record longer than 32 MiB")

// readLine reads the next physical line, with its \n, \r\n normalised to \n,
// a final line without \n returned as it is (minus a trailing \r).
func (s *csvScanner) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.raw = append(s.raw[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(s.raw) > maxRecordBytes {
				return nil, errRecordTooLong
			}
			line, err = s.br.ReadSlice('\n')
			s.raw = append(s.raw, line...)
		}
		line = s.raw
	}
	if len(line) > 0 && err == io.EOF {
		err = nil
		if line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
	}
	s.numLine++
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		line[n-2] = '\n'
		line = line[:n-1]
	}
	return line, err
}

func lengthNL(b []byte) int {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return 1
	}
	return 0
}

// read returns the next record as its text (the unescaped fields, each
// followed by one separator byte) and field end offsets (valid until the
// next call) and the line where it starts. Errors: io.EOF at the
// end; *scanError for a malformed record (the text and ends then hold the
// fields before the error, and reading goes on after the offending line);
// anything else from the underlying reader, or errRecordTooLong.
func (s *csvScanner) read() (text []byte, ends []uint32, line int, err error) {
	var l []byte
	errRead := s.errRead
	for errRead == nil {
		l, errRead = s.readLine()
		if errRead == nil && len(l) == lengthNL(l) {
			continue // blank line
		}
		break
	}
	if errRead == io.EOF {
		return nil, nil, 0, io.EOF
	}
	if errRead != nil && len(l) == 0 {
		s.errRead = errRead
		return nil, nil, 0, errRead
	}
	recLine := s.numLine
	s.rec, s.ends = s.rec[:0], s.ends[:0]
	// k is the cursor in the line l; the byte column of l[k] is colBase+k.
	// sp lists where l has a comma or a quote (one pass over the line), si
	// the first of them not passed yet. l[from:k] is not copied to rec yet:
	// unquoted fields and the commas between them are copied in one piece
	// when a quote or the end of the line comes, so rec holds each field
	// followed by its comma, and a field that ends at l[p] ends in rec at
	// len(rec)+p-from.
	k, from, colBase, posLine := 0, 0, 1, s.numLine
	sp := s.specials(l)
	si := 0
	flush := func(to int) {
		s.rec = append(s.rec, l[from:to]...)
		from = to
	}
fields:
	for {
		if k == len(l) || l[k] != '"' {
			// An unquoted field ends at the next comma; a quote before it
			// is a bare quote.
			if si == len(sp) {
				flush(len(l) - lengthNL(l))
				s.ends = append(s.ends, uint32(len(s.rec)))
				break fields
			}
			p := int(sp[si])
			if l[p] == '"' {
				flush(k)
				err = s.parseErr(recLine, s.numLine, colBase+p, csv.ErrBareQuote)
				break fields
			}
			s.ends = append(s.ends, uint32(len(s.rec)+p-from))
			k, si = p+1, si+1
			continue
		}
		// A quoted field: the quote at k opens it.
		flush(k)
		k, si = k+1, si+1
		from = k
		for {
			for si < len(sp) && l[sp[si]] != '"' {
				si++ // a comma inside the quotes
			}
			switch {
			case si < len(sp):
				p := int(sp[si])
				flush(p)
				k, si = p+1, si+1
				from = k
				switch {
				case k < len(l) && l[k] == '"': // "" is a quote: the second one is copied
					k, si = k+1, si+1
					continue
				case k < len(l) && l[k] == ',':
					s.ends = append(s.ends, uint32(len(s.rec)))
					k, si = k+1, si+1
					continue fields
				case len(l)-k == lengthNL(l[k:]):
					s.ends = append(s.ends, uint32(len(s.rec)))
					break fields
				}
				err = s.parseErr(recLine, s.numLine, colBase+p, csv.ErrQuote)
				break fields
			case k < len(l):
				// The field goes on on the next line.
				flush(len(l))
				if len(s.rec) > maxRecordBytes {
					s.errRead = errRecordTooLong
					return nil, nil, recLine, errRecordTooLong
				}
				if errRead != nil {
					break fields
				}
				col := colBase + len(l)
				l, errRead = s.readLine()
				if len(l) > 0 {
					posLine++
					col = 1
				}
				if errRead == io.EOF {
					errRead = nil
				}
				k, from, colBase = 0, 0, col
				sp, si = s.specials(l), 0
			default:
				// The file ends inside the quotes.
				if errRead == nil {
					err = s.parseErr(recLine, posLine, colBase+k, csv.ErrQuote)
					break fields
				}
				s.ends = append(s.ends, uint32(len(s.rec)))
				break fields
			}
		}
	}
	if errRead != nil && errRead != io.EOF {
		s.errRead = errRead
		if err == nil {
			err = errRead
		}
	}
	return s.rec, s.ends, recLine, err
}

// specials returns the offsets of every ',' and '"' in l, in order. It
// tests eight bytes at a time: this one pass replaces a search per field.
func (s *csvScanner) specials(l []byte) []uint32 {
	if cap(s.sp) < len(l) {
		s.sp = make([]uint32, len(l)+len(l)/2)
	}
	sp := s.sp[:len(l)] // room for every byte: no append in the loop
	n, i := 0, 0
	for ; i+8 <= len(l); i += 8 {
		w := binary.LittleEndian.Uint64(l[i:])
		m := zeroBytes(w^(','*loBits)) | zeroBytes(w^('"'*loBits))
		for m != 0 {
			sp[n] = uint32(i + bits.TrailingZeros64(m)>>3)
			n++
			m &= m - 1
		}
	}
	for ; i < len(l); i++ {
		if l[i] == ',' || l[i] == '"' {
			sp[n] = uint32(i)
			n++
		}
	}
	return sp[:n]
}

// zeroBytes has the high bit set in each byte of x that is zero, and only
// there: adding 0x7f to the low seven bits sets the high bit of every
// nonzero byte without carrying into the next.
func zeroBytes(x uint64) uint64 {
	const low7 = hiBits >> 7 * 0x7f // 0x7f in every byte
	return ^((x&low7 + low7) | x) & hiBits
}

func (s *csvScanner) parseErr(start, line, col int, err error) error {
	return &scanError{csv.ParseError{StartLine: start, Line: line, Column: col, Err: err}}
}

// splitFields returns the fields of a record's text, appended to dst[:0].
// Field i ends at ends[i]; each is followed by one separator byte.
func splitFields(dst []string, text string, ends []uint32) []string {
	dst = dst[:0]
	for i := range ends {
		dst = append(dst, text[fieldStart(ends, i):ends[i]])
	}
	return dst
}

// fieldStart is where field i starts: after the separator that follows
// field i-1.
func fieldStart(ends []uint32, i int) uint32 {
	if i == 0 {
		return 0
	}
	return ends[i-1] + 1
}

func (e *scanError) Error() string { return fmt.Sprint(&e.ParseError) }
