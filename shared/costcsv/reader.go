package costcsv

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/zeebo/xxh3"
)

// Options configures a Reader. A nil *Options means the zero value.
type Options struct {
	File string // name used in errors/quarantine entries; Open also reads its extension
	Part int    // report part index; mixed into ids only when > 0 so ids of single-part reports are stable
	// Services, when set, fills Record.ServiceName and ServiceCategory of
	// EA, MCA and PAYG lines; FOCUS files carry their own.
	Services *Services
	// TempDir is where a Reader spills occurrence counts when a file has
	// more distinct lines than its memory budget holds (about 760,000,
	// 12 bytes each on disk; see occurrences.go). Empty means os.TempDir().
	TempDir string
}

// Reader streams the records of one cost file. It holds a few batches of
// lines (CSV is read ahead on a goroutine: three batches of about 256 KiB
// of text) plus counts per distinct natural key (for occurrence numbers)
// in a fixed memory budget, beyond which they go to temporary files: call
// Close when done (reading to the end or to a fatal error also releases
// them and stops the goroutine). A Reader is not safe for concurrent use.
type Reader struct {
	file     string
	part     int
	services *Services
	format   Format

	src    rowSource
	ahead  *readAhead // src when it reads ahead, to stop it
	header []string
	lay    *layout
	focus  bool

	seen     occurrences
	done     error // io.EOF, a fatal error or errClosed, returned by every later Next
	closeErr error // of releasing the occurrence counts' temporary files

	keyBuf                      []byte
	tagsJSON, infoJSON          jsonParser // their out holds the line's canonical Tags and AdditionalInfo
	lastTags, lastInfo          interned
	dates                       dates
	resourceID, subAccount      stringCache
	region, benefit, billingEnd stringCache
}

// dates caches parsed date values: a file holds few distinct dates, so
// most lines cost one map lookup. It is cleared when it reaches
// maxCachedDates, which keeps it small whatever the file.
type dates map[string]parsedDate

type parsedDate struct {
	t   time.Time
	day string // YYYY-MM-DD
}

const maxCachedDates = 1024

func (c *dates) parse(s string) (parsedDate, error) {
	if d, ok := (*c)[s]; ok {
		return d, nil
	}
	t, err := parseTime(s)
	if err != nil {
		return parsedDate{}, err
	}
	if *c == nil || len(*c) >= maxCachedDates {
		*c = dates{}
	}
	var b [10]byte
	d := parsedDate{t: t, day: string(appendDate(b[:0], t))}
	(*c)[s] = d
	return d, nil
}

// stringCache remembers the last normalisation of a column's value, so that
// runs of lines with the same resource cost one comparison, not a copy.
type stringCache struct{ in, out string }

func (c *stringCache) get(s string, norm func(string) string) string {
	if s != c.in {
		c.in, c.out = s, norm(s)
	}
	return c.out
}

// nextDay returns the day after a YYYY-MM-DD day.
func nextDay(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		panic(err) // days come from appendDate
	}
	return t.AddDate(0, 0, 1).Format(time.DateOnly)
}

// interned keeps the last string made from bytes: consecutive lines of a
// resource often repeat their tags, which then share one string.
type interned struct{ s string }

func (c *interned) intern(b []byte) string {
	if string(b) != c.s {
		c.s = string(b)
	}
	return c.s
}

// NewReader reads the header of a CSV or gzip-compressed CSV cost file from
// r (told apart by the gzip magic bytes) and recognises its schema; it then
// streams, holding a few batches of lines. An unrecognised header is a
// *HeaderError; other errors come from r. A leading UTF-8 byte order mark
// is skipped. Parquet needs random access: use Open.
func NewReader(r io.Reader, o *Options) (*Reader, error) {
	if o == nil {
		o = &Options{}
	}
	src, format, err := streamSource(r, o.File)
	if err != nil {
		return nil, err
	}
	return newReader(src, format, o)
}

// Open reads a cost file of any format the exports write: Parquet, gzip-
// compressed CSV or CSV. It tells them apart by their magic bytes ("PAR1",
// 1f 8b); a name (Options.File) ending in .parquet or .gz whose content does
// not match is a *HeaderError rather than a guess. Parquet is read through r
// with random access, one page per column at a time; CSV and gzip CSV are
// streamed from the start of r as NewReader does.
func Open(r io.ReaderAt, size int64, o *Options) (*Reader, error) {
	if o == nil {
		o = &Options{}
	}
	head := make([]byte, len(parquetMagic))
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", o.File, err)
	}
	head = head[:n]
	name := toLower(o.File)
	switch {
	case bytes.Equal(head, parquetMagic):
		src, err := newParquetSource(r, size, o.File)
		if err != nil {
			return nil, err
		}
		return newReader(src, FormatParquet, o)
	case strings.HasSuffix(name, ".parquet"):
		return nil, &HeaderError{File: o.File, Reason: "not a Parquet file: it does not start with PAR1"}
	case (strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".gzip")) && !bytes.HasPrefix(head, gzipMagic):
		return nil, &HeaderError{File: o.File, Reason: "not a gzip file: it does not start with 1f 8b"}
	}
	return NewReader(io.NewSectionReader(r, 0, size), o)
}

func newReader(src rowSource, format Format, o *Options) (*Reader, error) {
	header, err := src.header()
	if err != nil {
		return nil, err
	}
	lay, err := detect(o.File, header)
	if err != nil {
		return nil, err
	}
	var ahead *readAhead
	if _, ok := src.(*csvSource); ok {
		ahead = newReadAhead(src)
		src = ahead
	}
	return &Reader{
		file:     o.File,
		part:     o.Part,
		services: o.Services,
		format:   format,
		src:      src,
		ahead:    ahead,
		header:   header,
		lay:      lay,
		focus:    lay.spec == focusSpec,
		seen:     occurrences{lim: occDefaults, dir: o.TempDir},
	}, nil
}

// errClosed is what Next returns after Close.
var errClosed = errors.New("costcsv: Next on a closed Reader")

// Close removes the temporary files the Reader spilled occurrence counts
// to, if any; Next then fails. It does not close the underlying reader, but
// it stops reading it: CSV is read a few hundred lines ahead of Next on a
// goroutine, and Close returns once that goroutine has returned.
// Calling it more than once, or after the end of the file, is harmless.
func (r *Reader) Close() error {
	if r.done == nil {
		r.done = errClosed
	}
	r.release()
	return r.closeErr
}

// release frees the occurrence counts once no line will be read any more.
func (r *Reader) release() {
	if r.ahead != nil {
		r.ahead.stop()
	}
	if err := r.seen.close(); err != nil && r.closeErr == nil {
		r.closeErr = fmt.Errorf("remove temporary files of %s: %w", r.file, err)
	}
}

// stop ends the reading with err (io.EOF or a fatal error) and returns it.
func (r *Reader) stop(err error) error {
	r.done = err
	r.release()
	return err
}

// Schema returns the schema recognised from the header.
func (r *Reader) Schema() Schema { return r.lay.schema }

// Format returns the file's encoding.
func (r *Reader) Format() Format { return r.format }

// Header returns the header's column names as written (BOM and surrounding
// spaces removed).
func (r *Reader) Header() []string { return slices.Clone(r.header) }

// Next returns the next record. At the end of the file it returns io.EOF. A
// line it cannot accept is a *LineError: the caller quarantines it and calls
// Next again. Any other error is fatal (I/O, a corrupt compressed stream, a
// quoted field left open to the end of the file, or temporary files of
// occurrence counts that cannot be written) and Next returns it again on
// every later call.
func (r *Reader) Next() (*Record, error) {
	if r.done != nil {
		return nil, r.done
	}
	text, ends, line, err := r.src.next()
	if err != nil {
		var re *rowError
		if errors.As(err, &re) {
			le := &LineError{File: r.file, Line: re.line, Fields: re.fields, Reason: re.reason}
			if len(re.fields) < len(r.header) {
				le.Column = r.header[len(re.fields)]
			}
			return nil, le
		}
		return nil, r.stop(err)
	}
	if len(ends) != len(r.header) {
		le := &LineError{File: r.file, Line: line, Fields: splitFields(nil, string(text), ends),
			Reason: fmt.Sprintf("line has %d fields, header has %d", len(ends), len(r.header))}
		if len(ends) < len(r.header) {
			le.Column = r.header[len(ends)]
		}
		return nil, le
	}
	// One allocation holds the line's text and, after it, its field ends:
	// the fields, Raw and the content hash all read it.
	b := text // the source's buffer: ends go after the text in its spare room
	for _, e := range ends {
		b = binary.LittleEndian.AppendUint32(b, e)
	}
	row := string(b)
	raw := Raw{names: r.header, text: row[:len(text)], ends: row[len(text):]}
	// The record and the line's values are built on the stack and the
	// record copied to the heap once: while the garbage collector runs,
	// every pointer written to the heap costs a write barrier.
	var rec Record
	var vals [numRoles]string
	if le := r.record(&rec, &vals, line, raw.text, ends); le != nil {
		le.Fields = raw.Values()
		return nil, le
	}
	rec.Raw = raw
	// The content hash covers the values and where each ends: it only
	// tells a changed line from an unchanged one with the same id (and
	// reconciliation would catch a missed change in any amount).
	if err := r.setHashes(&rec, &vals, xxh3.HashString128(row).Bytes()); err != nil {
		return nil, r.stop(fmt.Errorf("%s line %d: %w", r.file, line, err))
	}
	out := new(Record)
	*out = rec
	return out, nil
}

// record fills rec from one line whose field count matches the header (its
// values concatenated in text, each ending at ends[i]), and v with the
// line's value of each role.
func (r *Reader) record(rec *Record, v *[numRoles]string, line int, text string, ends []uint32) *LineError {
	col := &r.lay.col
	for ro, i := range col {
		if i >= 0 {
			v[ro] = clean(text[fieldStart(ends, i):ends[i]])
		}
	}
	bad := func(ro role, format string, args ...any) *LineError {
		return &LineError{File: r.file, Line: line, Column: r.header[col[ro]], Reason: fmt.Sprintf(format, args...)}
	}
	// amount reads a required amount column; optAmount an optional one
	// (nil when empty or absent).
	amount := func(ro role) (decimal.Decimal, *LineError) {
		if v[ro] == "" {
			return decimal.Decimal{}, bad(ro, "empty amount")
		}
		d, err := parseAmount(v[ro])
		if err != nil {
			return decimal.Decimal{}, bad(ro, "unparsable amount: %v", err)
		}
		return d, nil
	}
	optAmount := func(ro role) (*decimal.Decimal, *LineError) {
		if v[ro] == "" {
			return nil, nil
		}
		d, le := amount(ro)
		return &d, le
	}
	// date reads an optional date column.
	date := func(ro role) (parsedDate, *LineError) {
		if v[ro] == "" {
			return parsedDate{}, nil
		}
		d, err := r.dates.parse(v[ro])
		if err != nil {
			return parsedDate{}, bad(ro, "unparsable date %q: %v", v[ro], err)
		}
		return d, nil
	}

	rec.Line = line
	var le *LineError

	if v[rDate] == "" {
		return bad(rDate, "empty date")
	}
	usage, le := date(rDate)
	if le != nil {
		return le
	}
	rec.ChargePeriodStart, rec.Date = usage.t, usage.day
	if r.lay.spec.exclusiveEnds {
		end, le := date(rChargePeriodEnd)
		if le != nil {
			return le
		}
		rec.ChargePeriodEnd = end.t
	} else {
		rec.ChargePeriodEnd = rec.ChargePeriodStart.AddDate(0, 0, 1) // daily files
	}
	start, le := date(rBillingPeriodStart)
	if le != nil {
		return le
	}
	rec.BillingPeriodStart = start.day
	end, le := date(rBillingPeriodEnd)
	if le != nil {
		return le
	}
	rec.BillingPeriodEnd = end.day
	if end.day != "" && !r.lay.spec.exclusiveEnds {
		rec.BillingPeriodEnd = r.billingEnd.get(end.day, nextDay)
	}

	if rec.BilledCost, le = amount(rCost); le != nil {
		return le
	}
	rec.EffectiveCost = rec.BilledCost
	if col[rEffectiveCost] >= 0 {
		if rec.EffectiveCost, le = amount(rEffectiveCost); le != nil {
			return le
		}
	}
	if v[rQuantity] != "" {
		if rec.Quantity, le = amount(rQuantity); le != nil {
			return le
		}
	}
	if rec.CostInPricingCurrency, le = optAmount(rCostInPricing); le != nil {
		return le
	}
	if rec.CostInUSD, le = optAmount(rCostInUSD); le != nil {
		return le
	}
	if rec.ExchangeRate = v[rExchangeRate]; rec.ExchangeRate != "" {
		if _, err := parseAmount(rec.ExchangeRate); err != nil {
			return bad(rExchangeRate, "unparsable exchange rate: %v", err)
		}
	}

	if err := r.tagsJSON.canonical(v[rTags], true); err != nil {
		return bad(rTags, "%v", err)
	}
	rec.Tags = Tags{json: r.lastTags.intern(r.tagsJSON.out)}
	if err := r.infoJSON.canonical(v[rAdditionalInfo], false); err != nil {
		return bad(rAdditionalInfo, "%v", err)
	}
	rec.AdditionalInfo = Object{json: r.lastInfo.intern(r.infoJSON.out)}

	rec.BillingCurrency = v[rCurrency]
	rec.PricingCurrency = v[rPricingCurrency]
	rec.BillingAccountID = v[rBillingAccountID]
	rec.SubAccountID = r.subAccount.get(v[rSubscription], subAccount)
	rec.SubAccountName = v[rSubscriptionName]
	rec.ResourceID = r.resourceID.get(v[rResourceID], toLower)
	rec.ResourceName = v[rResourceName]
	rec.ResourceGroup = resourceGroupOf(rec.ResourceID)
	if rg := v[rResourceGroup]; rg != "" && !equalFoldASCII(rg, rec.ResourceGroup) {
		rec.ResourceGroup = toLower(rg)
	}
	rec.ResourceType = toLower(v[rResourceType])
	if rec.ResourceType == "" {
		rec.ResourceType = resourceTypeOf(rec.ResourceID)
	}
	rec.RegionID = r.region.get(v[rRegion], regionID)
	rec.PricingModel = v[rPricingModel]
	rec.MeterID = v[rMeterID]
	rec.MeterName = v[rMeterName]
	rec.MeterCategory = v[rMeterCategory]
	rec.UnitOfMeasure = v[rUnit]
	benefit := v[rBenefitID]
	if benefit == "" {
		benefit = v[rReservationID]
	}
	rec.BenefitID = r.benefit.get(benefit, toLower)
	switch {
	case r.focus:
		rec.ChargeCategory = v[rChargeCategory]
		rec.ChargeClass = v[rChargeClass]
		rec.ServiceName = v[rServiceName]
		rec.ServiceCategory = v[rServiceCategory]
	default:
		rec.ChargeType = v[rChargeType]
		if r.lay.schema == SchemaPAYG {
			rec.ChargeCategory = "Usage" // the usage-only dataset
		} else {
			rec.ChargeCategory, rec.ChargeClass = chargeCategory(rec.ChargeType)
		}
		if r.services != nil {
			rec.ServiceName, rec.ServiceCategory, _ = r.services.Lookup(v[rConsumedService], rec.ResourceType)
		}
	}
	return nil
}

// setHashes sets the record's content hash (given) and, from its natural
// key and occurrence number, its id. An error is fatal: the occurrence
// counts could not be spilled or read back.
func (r *Reader) setHashes(rec *Record, vals *[numRoles]string, content [16]byte) error {
	sum := keySum(r.appendKey(r.keyBuf[:0], rec, vals))
	occ, err := r.seen.next(binary.BigEndian.Uint64(sum[8:]))
	if err != nil {
		return err
	}
	rec.Occurrence = int(occ)
	id := idSum(&sum, occ, r.part)
	var b [64]byte
	hex.Encode(b[:32], id[:])
	hex.Encode(b[32:], content[:])
	both := string(b[:]) // one allocation for both
	rec.ID, rec.ContentHash = both[:32], both[32:]
	return nil
}

// appendKey appends the natural key of rec (see key.go) and keeps the
// buffer for the next line.
func (r *Reader) appendKey(b []byte, rec *Record, vals *[numRoles]string) []byte {
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
			b = appendField(b, rec.Tags.json)
		case rAdditionalInfo:
			b = appendField(b, rec.AdditionalInfo.json)
		default:
			b = appendLowerField(b, vals[ro])
		}
	}
	r.keyBuf = b
	return b
}
