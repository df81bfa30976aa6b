package costcsv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/shopspring/decimal"
)

// isNull reports whether a trimmed source value means "no value".
func isNull(s string) bool {
	return s == "" || (len(s) == 4 && strings.EqualFold(s, "null"))
}

// clean trims a source value and maps "NULL" to "".
func clean(s string) string {
	if n := len(s); n > 0 && (s[0] <= ' ' || s[0] >= utf8.RuneSelf || s[n-1] <= ' ' || s[n-1] >= utf8.RuneSelf) {
		s = strings.TrimSpace(s)
	}
	if isNull(s) {
		return ""
	}
	return s
}

// parseTime reads the date and datetime forms cost files use, always as UTC:
//
//	MM/dd/yyyy, M/d/yyyy, M/d/yy (EA and MCA CSV; two-digit years are 20yy)
//	yyyy-MM-dd (PAYG), yyyyMMdd (Query API)
//	yyyy-MM-ddTHH:mm:ss[.fffffff][Z|±hh:mm] (FOCUS exports, Consumption API)
//	yyyy-MM-dd HH:mm:ss[.fff] (FOCUS sample data re-serialized from SQL)
//
// Anything else, including an impossible day such as 02/30/2023, is an error.
func parseTime(s string) (time.Time, error) {
	if strings.IndexByte(s, '/') >= 0 {
		return parseSlashDate(s)
	}
	if len(s) == 8 && allDigits(s) {
		return mkDate(atoi(s[:4]), atoi(s[4:6]), atoi(s[6:]), s)
	}
	if len(s) < 10 || s[4] != '-' || s[7] != '-' || !allDigits(s[:4]) || !allDigits(s[5:7]) || !allDigits(s[8:10]) {
		return time.Time{}, errors.New("unrecognised date format")
	}
	day, err := mkDate(atoi(s[:4]), atoi(s[5:7]), atoi(s[8:10]), s)
	if err != nil || len(s) == 10 {
		return day, err
	}
	if s[10] != 'T' && s[10] != ' ' {
		return time.Time{}, errors.New("unrecognised date format")
	}
	rest := s[11:]
	if len(rest) < 8 || rest[2] != ':' || rest[5] != ':' || !allDigits(rest[:2]) || !allDigits(rest[3:5]) || !allDigits(rest[6:8]) {
		return time.Time{}, errors.New("unrecognised time of day")
	}
	hh, mm, ss := atoi(rest[:2]), atoi(rest[3:5]), atoi(rest[6:8])
	if hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, errors.New("time of day out of range")
	}
	rest = rest[8:]
	ns := 0
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 || i > 10 {
			return time.Time{}, errors.New("bad fraction of a second")
		}
		frac := rest[1:i]
		ns = atoi(frac)
		for range 9 - len(frac) {
			ns *= 10
		}
		rest = rest[i:]
	}
	t := day.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second + time.Duration(ns))
	switch {
	case rest == "" || rest == "Z":
		return t, nil
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' && allDigits(rest[1:3]) && allDigits(rest[4:]):
		off := time.Duration(atoi(rest[1:3]))*time.Hour + time.Duration(atoi(rest[4:]))*time.Minute
		if rest[0] == '+' {
			off = -off
		}
		return t.Add(off), nil
	}
	return time.Time{}, errors.New("unrecognised time zone")
}

func parseSlashDate(s string) (time.Time, error) {
	m, rest, ok1 := strings.Cut(s, "/")
	d, y, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || len(m) < 1 || len(m) > 2 || len(d) < 1 || len(d) > 2 || (len(y) != 2 && len(y) != 4) ||
		!allDigits(m) || !allDigits(d) || !allDigits(y) {
		return time.Time{}, errors.New("unrecognised date format (want MM/dd/yyyy)")
	}
	year := atoi(y)
	if len(y) == 2 {
		year += 2000
	}
	return mkDate(year, atoi(m), atoi(d), s)
}

func mkDate(y, m, d int, s string) (time.Time, error) {
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if y < 1 || t.Year() != y || int(t.Month()) != m || t.Day() != d {
		return time.Time{}, fmt.Errorf("no such day %q", s)
	}
	return t, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// atoi reads a string allDigits accepted (at most 9 digits).
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// appendDate appends t as YYYY-MM-DD.
func appendDate(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	b = append(b, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	b = append(b, byte('0'+int(m)/10), byte('0'+int(m)%10), '-')
	return append(b, byte('0'+d/10), byte('0'+d%10))
}

// Amounts are bounded so that a hostile file cannot make a decimal whose
// text or arithmetic needs gigabytes ("1e999999999"). Real files stay far
// inside: at most 28 significant digits, exponents around -28.
const (
	maxAmountLen      = 80
	maxAmountExponent = 60
)

// parseAmount reads an exact decimal: plain or exponent form ("1.5E-05"),
// negative, up to the bounds above.
func parseAmount(s string) (decimal.Decimal, error) {
	if d, ok := fastAmount(s); ok {
		return d, nil
	}
	if len(s) > maxAmountLen {
		return decimal.Decimal{}, errors.New("amount too long")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return decimal.Decimal{}, fmt.Errorf("not a decimal number %q", s)
		}
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("not a decimal number %q", s)
	}
	if e := d.Exponent(); e > maxAmountExponent || e < -maxAmountExponent {
		return decimal.Decimal{}, fmt.Errorf("amount %q out of range", s)
	}
	return d, nil
}

// zeroAmount is "0" as decimal.NewFromString reads it.
var zeroAmount = decimal.New(0, 0)

// fastAmount is parseAmount's fast path for -?d+(.d+)?([eE][+-]?d+)? with at
// most 36 significant digits (28-digit FOCUS amounts included) and an
// exponent within bounds: it builds the same Decimal as decimal.NewFromString
// (same coefficient and exponent) without going through text-to-big.Int.
func fastAmount(s string) (decimal.Decimal, bool) {
	i, neg := 0, false
	if len(s) > 0 && s[0] == '-' {
		i, neg = 1, true
	}
	var hi, lo uint64 // the coefficient is hi*1e18 + lo
	var exp int
	sig, digits, dot := 0, 0, -1
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			if dot >= 0 {
				exp--
			}
			if sig == 0 && c == '0' {
				continue // leading zeros are not significant
			}
			if sig++; sig > 36 {
				return decimal.Decimal{}, false
			}
			if sig > 18 {
				hi = hi*10 + lo/1e17
				lo %= 1e17
			}
			lo = lo*10 + uint64(c-'0')
			continue
		case c == '.' && dot < 0 && digits > 0:
			dot = i
			continue
		}
		break
	}
	if digits == 0 || dot == i-1 {
		return decimal.Decimal{}, false
	}
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' || len(s)-i < 2 {
			return decimal.Decimal{}, false
		}
		j, eneg := i+1, false
		switch s[j] {
		case '-':
			j, eneg = j+1, true
		case '+':
			j++
		}
		if j == len(s) || len(s)-j > 3 || !allDigits(s[j:]) {
			return decimal.Decimal{}, false
		}
		e := atoi(s[j:])
		if eneg {
			e = -e
		}
		exp += e
	}
	if exp > maxAmountExponent || exp < -maxAmountExponent {
		return decimal.Decimal{}, false
	}
	if hi == 0 && lo == 0 && exp == 0 {
		return zeroAmount, true // shared: a Decimal is never modified
	}
	if hi == 0 && lo <= math.MaxInt64 {
		v := int64(lo)
		if neg {
			v = -v
		}
		return decimal.New(v, int32(exp)), true
	}
	// hi*1e18 + lo in two words, as big.Int's little-endian Words.
	h, l := bits.Mul64(hi, 1e18)
	l, carry := bits.Add64(l, lo, 0)
	h += carry
	b := new(big.Int).SetBits([]big.Word{big.Word(l), big.Word(h)})
	if neg {
		b.Neg(b)
	}
	return decimal.NewFromBigInt(b, int32(exp)), true
}

// parseObject decodes a JSON object column (AdditionalInfo, x_SkuDetails).
// A brace-less fragment (`"k": "v","k2": "v2"`, the EA form) is read as the
// object it abbreviates. Empty and NULL give an empty map. Numbers stay
// json.Number so no digit is lost.
func parseObject(s string) (map[string]any, error) {
	var p jsonParser
	return p.parseObject(s, false)
}

// parseObject is parseObject with a reusable parser; with canon it leaves
// the canonical text of the object in p.out.
func (p *jsonParser) parseObject(s string, canon bool) (map[string]any, error) {
	s, bare := objectText(s)
	if s == "" {
		p.out = append(p.out[:0], "{}"...)
		return map[string]any{}, nil
	}
	m, _, err := p.decode(s, bare, false, canon, true)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON object: %w", err)
	}
	return m, nil
}

// parseTags decodes a Tags column like parseObject, as strings: string
// values as they are, null as "", anything else as its canonical JSON text.
func parseTags(s string) (map[string]string, error) {
	var p jsonParser
	return p.parseTags(s, false)
}

// parseTags is parseTags with a reusable parser; with canon it leaves the
// canonical text of the tags in p.out.
func (p *jsonParser) parseTags(s string, canon bool) (map[string]string, error) {
	s, bare := objectText(s)
	if s == "" {
		p.out = append(p.out[:0], "{}"...)
		return map[string]string{}, nil
	}
	_, m, err := p.decode(s, bare, true, canon, true)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON object: %w", err)
	}
	return m, nil
}

// canonical checks a JSON object column (a Tags column when tags is true,
// as parseTags reads it) and leaves its canonical text in p.out, without
// building any value.
func (p *jsonParser) canonical(s string, tags bool) error {
	s, bare := objectText(s)
	if s == "" {
		p.out = append(p.out[:0], "{}"...)
		return nil
	}
	if _, _, err := p.decode(s, bare, tags, true, false); err != nil {
		return fmt.Errorf("invalid JSON object: %w", err)
	}
	return nil
}

// objectText trims a JSON object column and maps NULL to ""; bare reports a
// brace-less fragment.
func objectText(s string) (text string, bare bool) {
	s = strings.TrimSpace(s)
	if isNull(s) {
		return "", false
	}
	return s, s[0] != '{'
}

// subAccount normalises a subscription id: lower-case, a FOCUS
// "/subscriptions/<guid>" reduced to the GUID, the all-zero GUID to "".
func subAccount(s string) string {
	s = toLower(s)
	if rest, ok := strings.CutPrefix(s, "/subscriptions/"); ok {
		s, _, _ = strings.Cut(rest, "/")
	}
	if s == "00000000-0000-0000-0000-000000000000" {
		return ""
	}
	return s
}

// toLower is strings.ToLower, eight bytes at a time and with one allocation
// for the ASCII text cost files hold ("/subscriptions/.../resourceGroups/...").
func toLower(s string) string {
	first := -1 // the first word or byte with an upper-case letter
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := load64(s[i:])
		if w&hiBits != 0 {
			return strings.ToLower(s) // not ASCII
		}
		if first < 0 && upperBits(w) != 0 {
			first = i
		}
	}
	for j := i; j < len(s); j++ {
		c := s[j]
		if c >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
		if first < 0 && 'A' <= c && c <= 'Z' {
			first = j
		}
	}
	if first < 0 {
		return s
	}
	b := []byte(s)
	for i = first; i+8 <= len(b); i += 8 {
		w := load64(s[i:])
		binary.LittleEndian.PutUint64(b[i:], w|upperBits(w)>>2) // 'A'|0x20 == 'a'
	}
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is never written again
}

const (
	loBits = 0x0101010101010101
	hiBits = 0x8080808080808080
)

// load64 reads the first eight bytes of s, little-endian.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// upperBits has the high bit set in each byte of w (all ASCII) that is an
// upper-case letter. Adding 0x80-'A' sets a byte's high bit when it is >=
// 'A', adding 0x80-'Z'-1 when it is > 'Z'; ASCII bytes never carry.
func upperBits(w uint64) uint64 {
	return (w + (0x80-'A')*loBits) &^ (w + (0x80-'Z'-1)*loBits) & hiBits
}

// equalFoldASCII reports whether a and b are equal when ASCII letters are
// compared without case (other bytes must be equal).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// resourceGroupOf returns the lower-cased resource group of a lower-cased ARM id.
func resourceGroupOf(id string) string {
	const seg = "/resourcegroups/"
	i := strings.Index(id, seg)
	if i < 0 {
		return ""
	}
	rg, _, _ := strings.Cut(id[i+len(seg):], "/")
	return rg
}

// resourceTypeOf derives the ARM resource type of a lower-cased ARM id from
// its last provider segment: ".../providers/microsoft.sql/servers/a/databases/b"
// is "microsoft.sql/servers/databases".
func resourceTypeOf(id string) string {
	const seg = "/providers/"
	i := strings.LastIndex(id, seg)
	if i < 0 {
		return ""
	}
	rest := id[i+len(seg):]
	ns, after, ok := strings.Cut(rest, "/")
	if !ok || ns == "" {
		return ""
	}
	typ, after, _ := strings.Cut(after, "/")
	if typ == "" {
		return ""
	}
	_, after, _ = strings.Cut(after, "/") // the name
	if after == "" {
		return rest[:len(ns)+1+len(typ)] // one type: a substring, no copy
	}
	b := []byte(rest[:len(ns)+1+len(typ)])
	for after != "" {
		typ, after, _ = strings.Cut(after, "/")
		if typ == "" {
			break
		}
		b = append(b, '/')
		b = append(b, typ...)
		_, after, _ = strings.Cut(after, "/")
	}
	return string(b)
}

// regionID is a location lower-cased with spaces removed ("US East" ->
// "useast", "EastUS2" -> "eastus2").
func regionID(s string) string {
	s = toLower(s)
	if strings.IndexByte(s, ' ') >= 0 {
		s = strings.ReplaceAll(s, " ", "")
	}
	return s
}

// chargeCategory maps an EA/MCA ChargeType to FOCUS ChargeCategory and
// ChargeClass as the finops-toolkit's conversion guide does (focus/convert):
// Usage, Purchase, Credit and Tax stay; UnusedReservation and
// UnusedSavingsPlan are Usage; Refund is a Purchase of class Correction; any
// other charge type is an Adjustment (RoundingAdjustment, ...). An empty
// ChargeType says nothing: both are empty.
func chargeCategory(chargeType string) (category, class string) {
	switch {
	case chargeType == "":
		return "", ""
	case equalFoldASCII(chargeType, "usage"), equalFoldASCII(chargeType, "unusedreservation"), equalFoldASCII(chargeType, "unusedsavingsplan"):
		return "Usage", ""
	case equalFoldASCII(chargeType, "purchase"):
		return "Purchase", ""
	case equalFoldASCII(chargeType, "refund"):
		return "Purchase", "Correction"
	case equalFoldASCII(chargeType, "credit"):
		return "Credit", ""
	case equalFoldASCII(chargeType, "tax"):
		return "Tax", ""
	}
	return "Adjustment", ""
}
