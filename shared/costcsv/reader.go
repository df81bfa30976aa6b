package costcsv

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Options configures a Reader. A nil *Options means the zero value.
type Options struct {
	File string // name used in errors/quarantine entries
	Part int    // report part index; mixed into ids only when > 0 so ids of single-part reports are stable
	// Services, when set, fills Record.ServiceName and ServiceCategory of
	// EA, MCA and PAYG lines; FOCUS files carry their own.
	Services *Services
}

// Reader streams the records of one cost file. It holds one line at a time
// plus a small count per distinct natural key (for occurrence numbers). A
// Reader is not safe for concurrent use.
type Reader struct {
	file     string
	part     int
	services *Services

	br     *bufio.Reader
	cr     *csv.Reader
	header []string
	lay    *layout
	focus  bool

	seen map[[16]byte]uint32
	done error // io.EOF or a fatal error, returned by every later Next

	keyBuf, contentBuf, jsonBuf []byte
	usageDay, billingDay        dateCache
}

// dateCache remembers the last date column value parsed: lines of a file
// mostly repeat the one before's date.
type dateCache struct {
	text string
	t    time.Time
	day  string // YYYY-MM-DD
}

func (c *dateCache) parse(s string) (time.Time, string, error) {
	if s != c.text || s == "" {
		t, err := parseTime(s)
		if err != nil {
			return time.Time{}, "", err
		}
		var b [10]byte
		*c = dateCache{text: s, t: t, day: string(appendDate(b[:0], t))}
	}
	return c.t, c.day, nil
}

// NewReader reads the header of a cost file from r and recognises its
// schema. An unrecognised header is a *HeaderError; other errors come from r.
// A leading UTF-8 byte order mark is skipped.
func NewReader(r io.Reader, o *Options) (*Reader, error) {
	if o == nil {
		o = &Options{}
	}
	br := stripBOM(r)
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		var pe *csv.ParseError
		switch {
		case errors.Is(err, io.EOF):
			return nil, &HeaderError{File: o.File, Reason: "empty file, no header line"}
		case errors.As(err, &pe):
			return nil, &HeaderError{File: o.File, Reason: pe.Error()}
		}
		return nil, fmt.Errorf("read header of %s: %w", o.File, err)
	}
	header = slices.Clone(header)
	for i, h := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
	}
	lay, err := detect(o.File, header)
	if err != nil {
		return nil, err
	}
	return &Reader{
		file:     o.File,
		part:     o.Part,
		services: o.Services,
		br:       br,
		cr:       cr,
		header:   header,
		lay:      lay,
		focus:    lay.spec == focusSpec,
		seen:     map[[16]byte]uint32{},
	}, nil
}

// stripBOM buffers r and skips a leading UTF-8 byte order mark. The csv
// reader reuses the returned *bufio.Reader rather than adding its own, so
// the reader can tell whether input is exhausted.
func stripBOM(r io.Reader) *bufio.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3) // cannot fail: the bytes are buffered
	}
	return br
}

// Schema returns the schema recognised from the header.
func (r *Reader) Schema() Schema { return r.lay.schema }

// Header returns the header's column names as written (BOM and surrounding
// spaces removed).
func (r *Reader) Header() []string { return slices.Clone(r.header) }

// Next returns the next record. At the end of the file it returns io.EOF. A
// line it cannot accept is a *LineError: the caller quarantines it and calls
// Next again. Any other error is fatal (I/O, or a quoted field left open to
// the end of the file) and Next returns it again on every later call.
func (r *Reader) Next() (*Record, error) {
	if r.done != nil {
		return nil, r.done
	}
	fields, err := r.cr.Read()
	if err != nil {
		return nil, r.readError(fields, err)
	}
	line, _ := r.cr.FieldPos(0)
	if len(fields) != len(r.header) {
		le := &LineError{File: r.file, Line: line, Fields: slices.Clone(fields),
			Reason: fmt.Sprintf("line has %d fields, header has %d", len(fields), len(r.header))}
		if len(fields) < len(r.header) {
			le.Column = r.header[len(fields)]
		}
		return nil, le
	}
	rec, le := r.record(line, fields)
	if le != nil {
		le.Fields = slices.Clone(fields)
		return nil, le
	}
	return rec, nil
}

func (r *Reader) readError(fields []string, err error) error {
	if errors.Is(err, io.EOF) {
		r.done = io.EOF
		return io.EOF
	}
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		r.done = fmt.Errorf("read %s: %w", r.file, err)
		return r.done
	}
	if errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine {
		if _, perr := r.br.Peek(1); perr != nil {
			// The quoted field swallowed every line to the end: a truncated
			// or corrupt file, not one bad line.
			r.done = fmt.Errorf("read %s: line %d: quoted field still open at end of file (line %d): %w", r.file, pe.StartLine, pe.Line, err)
			return r.done
		}
	}
	le := &LineError{File: r.file, Line: pe.StartLine, Fields: slices.Clone(fields),
		Reason: fmt.Sprintf("%v (line %d, byte %d)", pe.Err, pe.Line, pe.Column)}
	if len(fields) < len(r.header) {
		le.Column = r.header[len(fields)]
	}
	return le
}

// record builds the record of one line whose field count matches the header.
func (r *Reader) record(line int, fields []string) (*Record, *LineError) {
	col := &r.lay.col
	get := func(ro role) string {
		if i := col[ro]; i >= 0 {
			return clean(fields[i])
		}
		return ""
	}
	bad := func(ro role, format string, args ...any) *LineError {
		return &LineError{File: r.file, Line: line, Column: r.header[col[ro]], Reason: fmt.Sprintf(format, args...)}
	}
	// amount reads a required amount column; optional ones go through optAmount.
	amount := func(ro role) (decimal.Decimal, *LineError) {
		s := get(ro)
		if s == "" {
			return decimal.Decimal{}, bad(ro, "empty amount")
		}
		d, err := parseAmount(s)
		if err != nil {
			return decimal.Decimal{}, bad(ro, "unparsable amount: %v", err)
		}
		return d, nil
	}
	optAmount := func(ro role) (*decimal.Decimal, *LineError) {
		s := get(ro)
		if s == "" {
			return nil, nil
		}
		d, err := parseAmount(s)
		if err != nil {
			return nil, bad(ro, "unparsable amount: %v", err)
		}
		return &d, nil
	}

	rec := &Record{Line: line}
	var le *LineError

	ds := get(rDate)
	if ds == "" {
		return nil, bad(rDate, "empty date")
	}
	var err error
	if rec.ChargePeriodStart, rec.Date, err = r.usageDay.parse(ds); err != nil {
		return nil, bad(rDate, "unparsable date %q: %v", ds, err)
	}
	if s := get(rBillingPeriodStart); s != "" {
		if _, rec.BillingPeriodStart, err = r.billingDay.parse(s); err != nil {
			return nil, bad(rBillingPeriodStart, "unparsable date %q: %v", s, err)
		}
	}

	if rec.BilledCost, le = amount(rCost); le != nil {
		return nil, le
	}
	rec.EffectiveCost = rec.BilledCost
	if col[rEffectiveCost] >= 0 {
		if rec.EffectiveCost, le = amount(rEffectiveCost); le != nil {
			return nil, le
		}
	}
	if q, le := optAmount(rQuantity); le != nil {
		return nil, le
	} else if q != nil {
		rec.Quantity = *q
	}
	if rec.CostInPricingCurrency, le = optAmount(rCostInPricing); le != nil {
		return nil, le
	}
	if rec.CostInUSD, le = optAmount(rCostInUSD); le != nil {
		return nil, le
	}
	if rec.ExchangeRate = get(rExchangeRate); rec.ExchangeRate != "" {
		if _, err := parseAmount(rec.ExchangeRate); err != nil {
			return nil, bad(rExchangeRate, "unparsable exchange rate: %v", err)
		}
	}

	if rec.Tags, err = parseTags(get(rTags)); err != nil {
		return nil, bad(rTags, "%v", err)
	}
	if rec.AdditionalInfo, err = parseObject(get(rAdditionalInfo)); err != nil {
		return nil, bad(rAdditionalInfo, "%v", err)
	}

	rec.BillingCurrency = get(rCurrency)
	rec.PricingCurrency = get(rPricingCurrency)
	rec.BillingAccountID = get(rBillingAccountID)
	rec.SubAccountID = subAccount(get(rSubscription))
	rec.SubAccountName = get(rSubscriptionName)
	rec.ResourceID = strings.ToLower(get(rResourceID))
	rec.ResourceName = get(rResourceName)
	rec.ResourceGroup = strings.ToLower(get(rResourceGroup))
	if rec.ResourceGroup == "" {
		rec.ResourceGroup = resourceGroupOf(rec.ResourceID)
	}
	rec.ResourceType = strings.ToLower(get(rResourceType))
	if rec.ResourceType == "" {
		rec.ResourceType = resourceTypeOf(rec.ResourceID)
	}
	rec.RegionID = regionID(get(rRegion))
	rec.PricingModel = get(rPricingModel)
	rec.MeterID = get(rMeterID)
	rec.MeterName = get(rMeterName)
	rec.MeterCategory = get(rMeterCategory)
	rec.UnitOfMeasure = get(rUnit)
	rec.BenefitID = strings.ToLower(get(rBenefitID))
	if rec.BenefitID == "" {
		rec.BenefitID = strings.ToLower(get(rReservationID))
	}
	switch {
	case r.focus:
		rec.ChargeCategory = get(rChargeCategory)
		rec.ChargeClass = get(rChargeClass)
		rec.ServiceName = get(rServiceName)
		rec.ServiceCategory = get(rServiceCategory)
	default:
		rec.ChargeType = get(rChargeType)
		if r.lay.schema == SchemaPAYG {
			rec.ChargeCategory = "Usage" // the usage-only dataset
		} else {
			rec.ChargeCategory, rec.ChargeClass = chargeCategory(rec.ChargeType)
		}
		if r.services != nil {
			rec.ServiceName, rec.ServiceCategory, _ = r.services.Lookup(get(rConsumedService), rec.ResourceType)
		}
	}

	rec.Raw = make(map[string]string, len(fields))
	r.contentBuf = r.contentBuf[:0]
	for i, h := range r.header {
		rec.Raw[h] = fields[i]
		r.contentBuf = appendField(r.contentBuf, fields[i])
	}
	sum := sha256.Sum256(r.contentBuf)
	rec.ContentHash = hex.EncodeToString(sum[:16])

	keySum := sha256.Sum256(r.appendKey(r.keyBuf[:0], rec, get))
	var short [16]byte
	copy(short[:], keySum[:16])
	occ := r.seen[short] + 1
	r.seen[short] = occ
	rec.Occurrence = int(occ)
	rec.ID = idOf(&keySum, occ, r.part)
	return rec, nil
}

// appendKey appends the natural key of rec (see key.go) and keeps the
// buffer for the next line.
func (r *Reader) appendKey(b []byte, rec *Record, get func(role) string) []byte {
	b = appendField(b, r.lay.spec.family)
	for _, ro := range r.lay.spec.key {
		switch ro {
		case rDate:
			var tb [40]byte
			b = appendField(b, appendTime(tb[:0], rec.ChargePeriodStart))
		case rResourceID:
			b = appendField(b, rec.ResourceID)
		case rSubscription:
			b = appendField(b, rec.SubAccountID)
		case rBenefitID:
			b = appendField(b, rec.BenefitID)
		case rResourceGroup:
			b = appendField(b, rec.ResourceGroup)
		case rTags:
			r.jsonBuf = appendCanonical(r.jsonBuf[:0], rec.Tags)
			b = appendField(b, r.jsonBuf)
		case rAdditionalInfo:
			r.jsonBuf = appendCanonical(r.jsonBuf[:0], rec.AdditionalInfo)
			b = appendField(b, r.jsonBuf)
		default:
			b = appendLowerField(b, get(ro))
		}
	}
	r.keyBuf = b
	return b
}

// LineError is a data line the reader could not accept. The reader has
// already moved past it: quarantine it and call Next again.
type LineError struct {
	File   string
	Line   int    // 1-based physical line where the record starts (header = 1)
	Column string // header name of the offending column; empty when the line has too many fields
	Reason string
	// Fields are the line's values as read (partial when the CSV itself is
	// malformed), for the quarantine entry.
	Fields []string
}

// Error returns "file F line L column C: reason".
func (e *LineError) Error() string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "file %s ", e.File)
	}
	fmt.Fprintf(&b, "line %d", e.Line)
	if e.Column != "" {
		fmt.Fprintf(&b, " column %s", e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// HeaderError is a header the reader does not recognise, or cannot read as
// one (an empty file, duplicate column names).
type HeaderError struct {
	File string
	// Missing names the required columns absent for the schema that came
	// closest; each entry lists the names accepted for one column
	// ("costinbillingcurrency or cost"). Names are matched case-insensitively.
	Missing []string
	// Tried lists, per schema tried, what was missing.
	Tried []SchemaMissing
	// Reason is set instead of Missing when the header could not be read as
	// a list of column names.
	Reason string
}

// SchemaMissing is what a header lacks to be read as one schema.
type SchemaMissing struct {
	Schema  Schema
	Missing []string
}

// Error names the file and what each schema tried was missing.
func (e *HeaderError) Error() string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "file %s: ", e.File)
	}
	if e.Reason != "" {
		b.WriteString("header: ")
		b.WriteString(e.Reason)
		return b.String()
	}
	b.WriteString("unrecognised header")
	for i, t := range e.Tried {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: missing %s", t.Schema, strings.Join(t.Missing, ", "))
	}
	return b.String()
}
