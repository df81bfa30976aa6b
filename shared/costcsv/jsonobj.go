package costcsv

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeObject decodes one JSON object filling the whole of s (surrounding
// whitespace allowed) into what encoding/json with UseNumber produces:
// map[string]any of string, json.Number, bool, nil, []any and map[string]any,
// with the same rules (last duplicate key wins, invalid UTF-8 and unpaired
// surrogates become U+FFFD). When bare is true, s holds the members of an
// object without its braces (the EA Tags form). When tags is true, the
// object's values are instead returned as strings in tagMap (see parseTags),
// which saves building the intermediate map for Tags columns.
//
// It exists because encoding/json's Decoder was a quarter of the reader's
// time; FuzzDecodeObject checks it against encoding/json.
func decodeObject(s string, bare, tags bool) (obj map[string]any, tagMap map[string]string, err error) {
	var p jsonParser
	return p.decode(s, bare, tags, false, true)
}

// decode is decodeObject with a reusable parser. When canon is true it also
// leaves in p.out the canonical JSON text of what it reads, as
// appendCanonical would write it from the decoded values (FuzzDecodeObject
// checks that). When build is false it only checks the object and builds
// its canonical text: it returns nil maps and allocates nothing per value.
func (p *jsonParser) decode(s string, bare, tags, canon, build bool) (obj map[string]any, tagMap map[string]string, err error) {
	*p = jsonParser{s: s, bare: bare, canon: canon, build: build, out: p.out[:0], stack: p.stack[:0], slow: p.slow[:0], tmp: p.tmp}
	p.skipSpace()
	if !bare && (p.i >= len(p.s) || p.s[p.i] != '{') {
		return nil, nil, p.fail("want '{'")
	}
	if tags {
		tagMap, err = p.stringObject()
	} else {
		obj, err = p.object(0)
	}
	if err != nil {
		return nil, nil, err
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return nil, nil, p.fail("data after the object")
	}
	return obj, tagMap, nil
}

type jsonParser struct {
	s    string
	i    int
	bare bool // the outermost object has no braces: it ends at the end of s

	canon bool     // build the canonical text in out
	build bool     // build the maps and values (else only check and canonicalise)
	out   []byte   // canonical text
	stack []member // the open objects' members so far, innermost last
	slow  []string // keys that are not a plain substring of s (escapes)
	tmp   []byte   // where an object's members wait to be sorted

	// The last string read was s[strFrom:strTo] when strPlain is true.
	strFrom, strTo int
	strPlain       bool
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// member is one member of an object being read: its canonical "key":value
// is out[start:end]; its key is s[kfrom:kto], or slow[kfrom] when kto < 0.
// A member holds no pointer, so the stack of members costs the garbage
// collector nothing.
type member struct {
	kfrom, kto int
	start, end int
}

func (p *jsonParser) key(m member) string {
	if m.kto < 0 {
		return p.slow[m.kfrom]
	}
	return p.s[m.kfrom:m.kto]
}

func (p *jsonParser) fail(want string) error {
	if p.i >= len(p.s) {
		return fmt.Errorf("unexpected end, %s", want)
	}
	return fmt.Errorf("unexpected %q at offset %d, %s", p.s[p.i], p.i, want)
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// members walks the members of an object whose '{' is at p.i (or, for the
// outermost object of bare input, which starts at p.i and ends at the end of
// the input), calling member with each key once the parser stands on the
// member's value.
func (p *jsonParser) members(member func(key string) error) error {
	bare := p.bare
	p.bare = false // nested objects have braces
	if !bare {
		p.i++ // '{'
	}
	p.skipSpace()
	switch {
	case bare && p.i == len(p.s): // "{ }" without its braces
		return nil
	case !bare && p.i < len(p.s) && p.s[p.i] == '}':
		p.i++
		return nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return p.fail("want a string key")
		}
		key, err := p.str()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return p.fail("want ':'")
		}
		p.i++
		p.skipSpace()
		if err := member(key); err != nil {
			return err
		}
		p.skipSpace()
		switch {
		case bare && p.i == len(p.s):
			return nil
		case p.i >= len(p.s):
			return p.fail("want ',' or '}'")
		case p.s[p.i] == ',':
			p.i++
		case p.s[p.i] == '}' && !bare:
			p.i++
			return nil
		default:
			return p.fail("want ',' or '}'")
		}
	}
}

func (p *jsonParser) object(depth int) (map[string]any, error) {
	if depth >= maxJSONDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxJSONDepth)
	}
	var m map[string]any
	if p.build {
		m = map[string]any{}
	}
	open, base := p.openObject()
	err := p.members(func(key string) error {
		mb := p.beginMember(key, base)
		v, err := p.value(depth + 1)
		if m != nil {
			m[key] = v
		}
		p.endMember(mb)
		return err
	})
	p.closeObject(open, base)
	return m, err
}

// stringObject reads a flat object as tag strings: strings as they are, null
// as "", anything else as its compact canonical JSON text. Its canonical
// text has those strings as values.
func (p *jsonParser) stringObject() (map[string]string, error) {
	var m map[string]string
	if p.build {
		m = map[string]string{}
	}
	open, base := p.openObject()
	err := p.members(func(key string) error {
		mb := p.beginMember(key, base)
		defer p.endMember(mb)
		if p.i < len(p.s) && p.s[p.i] == '"' {
			v, err := p.str()
			if m != nil {
				m[key] = v
			}
			p.emitString(v)
			return err
		}
		// Any other value's tag string is its canonical text; null's is "".
		mark := len(p.out)
		canon := p.canon
		p.canon = true
		_, err := p.value(1)
		tag := string(p.out[mark:])
		p.out, p.canon = p.out[:mark], canon
		if tag == "null" {
			tag = ""
		}
		if m != nil {
			m[key] = tag
		}
		if p.canon {
			p.out = appendJSONString(p.out, tag) // made here, not read
		}
		return err
	})
	p.closeObject(open, base)
	return m, err
}

// openObject starts an object's canonical text; it returns where the text
// starts and where the object's members start on the members stack.
func (p *jsonParser) openObject() (open, base int) {
	if p.canon {
		p.out = append(p.out, '{')
	}
	return len(p.out) - 1, len(p.stack)
}

// beginMember writes `"key":` (after a comma for all but the first member)
// for the key just read.
func (p *jsonParser) beginMember(key string, base int) member {
	if !p.canon {
		return member{}
	}
	m := member{kfrom: p.strFrom, kto: p.strTo}
	if !p.strPlain {
		m.kfrom, m.kto = len(p.slow), -1
		p.slow = append(p.slow, key)
	}
	if len(p.stack) > base {
		p.out = append(p.out, ',')
	}
	m.start = len(p.out)
	p.emitString(key)
	p.out = append(p.out, ':')
	return m
}

func (p *jsonParser) endMember(m member) {
	if p.canon {
		m.end = len(p.out)
		p.stack = append(p.stack, m)
	}
}

// closeObject ends an object's canonical text. Members come in any order
// and may repeat; canonical text has them sorted by key, the last of equal
// keys kept (as a map keeps it). Sorted input, the usual case, is left as
// written.
func (p *jsonParser) closeObject(open, base int) {
	if !p.canon {
		return
	}
	ms := p.stack[base:]
	sorted := true
	for i := 1; i < len(ms) && sorted; i++ {
		sorted = p.key(ms[i-1]) < p.key(ms[i])
	}
	switch {
	case sorted:
	case len(ms) <= 16:
		// Insertion sort, stable, for the handful of members objects have.
		for i := 1; i < len(ms); i++ {
			m, k := ms[i], p.key(ms[i])
			j := i
			for ; j > 0 && p.key(ms[j-1]) > k; j-- {
				ms[j] = ms[j-1]
			}
			ms[j] = m
		}
	default:
		slices.SortStableFunc(ms, func(a, b member) int { return strings.Compare(p.key(a), p.key(b)) })
	}
	if !sorted {
		p.tmp = append(p.tmp[:0], p.out[open+1:]...)
		p.out = p.out[:open+1]
		for i, m := range ms {
			if i+1 < len(ms) && p.key(ms[i+1]) == p.key(m) {
				continue // a later duplicate wins
			}
			if len(p.out) > open+1 {
				p.out = append(p.out, ',')
			}
			p.out = append(p.out, p.tmp[m.start-open-1:m.end-open-1]...)
		}
	}
	p.out = append(p.out, '}')
	p.stack = p.stack[:base]
}

// emitString writes the canonical text of the string v just read: as
// written when it was plain ASCII without escapes (all printable, nothing
// to escape), else escaped anew.
func (p *jsonParser) emitString(v string) {
	if !p.canon {
		return
	}
	if p.strPlain {
		p.out = append(p.out, p.s[p.strFrom-1:p.strTo+1]...) // with its quotes
		return
	}
	p.out = appendJSONString(p.out, v)
}

// emitRaw writes the canonical text of a number or literal: as written.
func (p *jsonParser) emitRaw(from int) {
	if p.canon {
		p.out = append(p.out, p.s[from:p.i]...)
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if p.i >= len(p.s) {
		return nil, p.fail("want a value")
	}
	start := p.i
	switch c := p.s[p.i]; {
	case c == '"':
		v, err := p.str()
		p.emitString(v)
		if !p.build {
			return nil, err // no boxing
		}
		return v, err
	case c == '{':
		m, err := p.object(depth)
		if m == nil {
			return nil, err
		}
		return m, err
	case c == '[':
		a, err := p.array(depth)
		if !p.build {
			return nil, err
		}
		return a, err
	case c == '-' || (c >= '0' && c <= '9'):
		v, err := p.number()
		p.emitRaw(start)
		if !p.build {
			return nil, err
		}
		return v, err
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
		p.emitRaw(start)
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
		p.emitRaw(start)
		return false, nil
	case strings.HasPrefix(p.s[p.i:], "null"):
		p.i += 4
		p.emitRaw(start)
		return nil, nil
	}
	return nil, p.fail("want a value")
}

func (p *jsonParser) array(depth int) ([]any, error) {
	if depth >= maxJSONDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxJSONDepth)
	}
	p.i++ // '['
	a := []any{}
	p.emitByte('[')
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		p.emitByte(']')
		return a, nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.build {
			a = append(a, v)
		}
		p.skipSpace()
		if p.i >= len(p.s) {
			return nil, p.fail("want ',' or ']'")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			p.emitByte(',')
		case ']':
			p.i++
			p.emitByte(']')
			return a, nil
		default:
			return nil, p.fail("want ',' or ']'")
		}
	}
}

func (p *jsonParser) emitByte(c byte) {
	if p.canon {
		p.out = append(p.out, c)
	}
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? as its text.
func (p *jsonParser) number() (json.Number, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.s) && p.s[p.i] == '0':
		p.i++
	case digits() == 0:
		return "", p.fail("want a digit")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return "", p.fail("want a digit")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return "", p.fail("want a digit")
		}
	}
	return json.Number(p.s[start:p.i]), nil
}

// str reads a string whose '"' is at p.i. Without escapes or invalid UTF-8
// it returns a substring of the input.
func (p *jsonParser) str() (string, error) {
	p.i++ // '"'
	start := p.i
	for p.i < len(p.s) {
		// Pass eight plain bytes at a time: none a quote, a backslash, a
		// control character (no bit of 0xe0 set) or above ASCII.
		for p.i+8 <= len(p.s) {
			w := load64(p.s[p.i:])
			m := zeroBytes(w^('"'*loBits)) | zeroBytes(w^('\\'*loBits)) | zeroBytes(w&(0xe0*loBits)) | w&hiBits
			if m != 0 {
				p.i += bits.TrailingZeros64(m) >> 3
				break
			}
			p.i += 8
		}
		if p.i >= len(p.s) {
			break
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			p.strFrom, p.strTo, p.strPlain = start, p.i-1, true
			return p.s[start : p.i-1], nil
		case c == '\\' || c >= utf8.RuneSelf:
			p.strPlain = false
			return p.slowStr(start)
		case c < 0x20:
			return "", p.fail("control character in string")
		}
		p.i++
	}
	return "", p.fail("unterminated string")
}

func (p *jsonParser) slowStr(start int) (string, error) {
	b := []byte(p.s[start:p.i])
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(b), nil
		case c < 0x20:
			return "", p.fail("control character in string")
		case c == '\\':
			if p.i+1 >= len(p.s) {
				p.i++
				return "", p.fail("unterminated escape")
			}
			switch e := p.s[p.i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := p.escapedRune(p.i)
				if !ok {
					p.i++
					return "", p.fail("bad \\u escape")
				}
				p.i += 6
				if utf16.IsSurrogate(r) {
					// As encoding/json: a valid pair is one rune, anything
					// else U+FFFD (and a following escape is read on its own).
					r2, ok := p.escapedRune(p.i)
					if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
						r = dec
						p.i += 6
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				p.i++
				return "", p.fail("bad escape")
			}
			p.i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			p.i++
		default:
			r, size := utf8.DecodeRuneInString(p.s[p.i:])
			b = utf8.AppendRune(b, r) // an invalid byte becomes U+FFFD
			p.i += size
		}
	}
	return "", p.fail("unterminated string")
}

// escapedRune reads a \uXXXX escape starting at i.
func (p *jsonParser) escapedRune(i int) (rune, bool) {
	if i+6 > len(p.s) || p.s[i] != '\\' || p.s[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.s[i+2 : i+6]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
