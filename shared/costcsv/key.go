package costcsv

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/zeebo/xxh3"
)

// Identity
//
// A line's natural key is the schema family followed by the values of the
// spec's key roles (legacyKey, focusKey in schema.go), each normalised and
// length-prefixed:
//
//   - the charge period start as RFC 3339 in UTC (the usage day at midnight
//     for daily files, the hour for hourly FOCUS rows);
//   - resource id, subscription, benefit id and resource group as in Record;
//   - Tags and AdditionalInfo as canonical JSON: keys sorted at every level,
//     strings escaped only where JSON requires, numbers as written;
//   - every other value trimmed, NULL as empty, ASCII lower-cased, so that
//     the casing noise of Azure exports ("ACM9000" / "acm9000") does not
//     split a line's identity between runs;
//   - a role whose column the file lacks as the empty string.
//
// keySum = XXH3-128(natural key), big-endian. The reader counts lines per
// keySum (its low 64 bits, in a compact table that spills to disk: see
// occurrences.go; never the line itself) to number identical lines 1, 2,
// ... in file order. ID is, in
// hex, XXH3-128(keySum || uvarint(occurrence) [|| 'p' || uvarint(part)]),
// the part only when Options.Part > 0. XXH3 is not a cryptographic hash:
// ids guard against accidents (two of a million lines collide with odds
// near 2^-88), not against a file crafted to collide, and cost files come
// from Azure. It is ten times cheaper than SHA-256 per line.

// appendField appends one length-prefixed key field.
func appendField[S string | []byte](b []byte, v S) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendLowerField appends one length-prefixed, ASCII-lower-cased key field.
func appendLowerField(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	n := len(b)
	b = append(b, v...)
	lowerASCII(b[n:])
	return b
}

// lowerASCII lower-cases the ASCII letters of b in place, eight bytes at a
// time; other bytes are left as they are.
func lowerASCII(b []byte) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		// upperBits needs ASCII bytes: mask the high bit off and only
		// lower bytes that had none.
		up := upperBits(w&^hiBits) &^ w
		if up != 0 {
			binary.LittleEndian.PutUint64(b[i:], w|up>>2)
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// appendTime appends t as RFC 3339 (UTC, fractional seconds only if any).
func appendTime(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, time.RFC3339Nano)
}

// keySum hashes a natural key.
func keySum(key []byte) [16]byte { return xxh3.Hash128(key).Bytes() }

// idSum turns a key sum and an occurrence number into a record id's bytes.
func idSum(keySum *[16]byte, occurrence uint32, part int) [16]byte {
	var buf [16 + 2*binary.MaxVarintLen64 + 1]byte
	b := append(buf[:0], keySum[:]...)
	b = binary.AppendUvarint(b, uint64(occurrence))
	if part > 0 {
		b = append(b, 'p')
		b = binary.AppendUvarint(b, uint64(part))
	}
	return xxh3.Hash128(b).Bytes()
}

// appendCanonical appends v (a decoded JSON value, or map[string]string) as
// canonical JSON: object keys sorted bytewise at every level, no whitespace,
// strings escaped only where JSON requires, json.Number as written.
func appendCanonical(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		if v {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case string:
		return appendJSONString(b, v)
	case json.Number:
		return append(b, v...)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	case map[string]any:
		return appendSortedObject(b, v, appendCanonical)
	case map[string]string:
		return appendSortedObject(b, v, appendJSONString)
	}
	panic(fmt.Sprintf("appendCanonical: unexpected %T", v)) // decodeObject makes only the types above
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping only '"', '\\' and
// control characters; invalid UTF-8 bytes become U+FFFD as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		b = utf8.AppendRune(b, r)
		i += size
	}
	return append(b, '"')
}

// appendSortedObject appends m as a JSON object with its keys sorted.
func appendSortedObject[V any](b []byte, m map[string]V, appendValue func([]byte, V) []byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendValue(b, m[k])
	}
	return append(b, '}')
}
