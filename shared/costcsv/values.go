package costcsv

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// isNull reports whether a trimmed source value means "no value".
func isNull(s string) bool {
	return s == "" || (len(s) == 4 && strings.EqualFold(s, "null"))
}

// clean trims a source value and maps "NULL" to "".
func clean(s string) string {
	s = strings.TrimSpace(s)
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
	if d, ok := smallAmount(s); ok {
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

// smallAmount is parseAmount's fast path for the common plain form
// -?d+(.d+)? with at most 18 digits, which fit an int64 coefficient.
func smallAmount(s string) (decimal.Decimal, bool) {
	i, neg := 0, false
	if len(s) > 0 && s[0] == '-' {
		i, neg = 1, true
	}
	var v int64
	var exp int32
	digits, dot := 0, -1
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			v = v*10 + int64(c-'0')
			digits++
			if dot >= 0 {
				exp--
			}
		case c == '.' && dot < 0 && digits > 0:
			dot = i
		default:
			return decimal.Decimal{}, false
		}
	}
	if digits == 0 || digits > 18 || dot == len(s)-1 {
		return decimal.Decimal{}, false
	}
	if neg {
		v = -v
	}
	return decimal.New(v, exp), true
}

// parseObject decodes a JSON object column (AdditionalInfo, x_SkuDetails).
// A brace-less fragment (`"k": "v","k2": "v2"`, the EA form) is read as the
// object it abbreviates. Empty and NULL give an empty map. Numbers stay
// json.Number so no digit is lost.
func parseObject(s string) (map[string]any, error) {
	s, bare := objectText(s)
	if s == "" {
		return map[string]any{}, nil
	}
	m, _, err := decodeObject(s, bare, false)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON object: %w", err)
	}
	return m, nil
}

// parseTags decodes a Tags column like parseObject, as strings: string
// values as they are, null as "", anything else as its canonical JSON text.
func parseTags(s string) (map[string]string, error) {
	s, bare := objectText(s)
	if s == "" {
		return map[string]string{}, nil
	}
	_, m, err := decodeObject(s, bare, true)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON object: %w", err)
	}
	return m, nil
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
	s = strings.ToLower(s)
	if rest, ok := strings.CutPrefix(s, "/subscriptions/"); ok {
		s, _, _ = strings.Cut(rest, "/")
	}
	if s == "00000000-0000-0000-0000-000000000000" {
		return ""
	}
	return s
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
	s = strings.ToLower(s)
	if strings.IndexByte(s, ' ') >= 0 {
		s = strings.ReplaceAll(s, " ", "")
	}
	return s
}

// chargeCategory maps an EA/MCA ChargeType to FOCUS ChargeCategory and
// ChargeClass, following the finops-toolkit FOCUS mapping.
func chargeCategory(chargeType string) (category, class string) {
	switch strings.ToLower(chargeType) {
	case "usage", "unusedreservation", "unusedsavingsplan":
		return "Usage", ""
	case "purchase":
		return "Purchase", ""
	case "refund":
		return "Purchase", "Correction"
	case "roundingadjustment":
		return "Adjustment", ""
	case "tax":
		return "Tax", ""
	}
	return "", ""
}
