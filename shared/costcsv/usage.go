package costcsv

import (
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// SchemaUsageAggregates is Commerce UsageAggregates (cost-apis.md §3.2)
// landed as CSV with the API's property names as header: usageStartTime,
// usageEndTime, meterId, quantity, instanceData (a JSON string) or the
// legacy infoFields, ... Quantities only: no cost, no currency.
const SchemaUsageAggregates Schema = "usage-aggregates"

// UsageReader reads usage aggregates. Each record is dated by when the
// usage happened (usageStartTime), not by when it was reported; its
// BilledCost and EffectiveCost are zero and its BillingCurrency empty. A
// UsageReader is not safe for concurrent use.
type UsageReader struct {
	file   string
	part   int
	cr     *csv.Reader
	header []string
	col    map[string]int
	seen   map[[16]byte]uint32
	done   error
}

// usageRequired are the columns a usage aggregates part must have.
var usageRequired = []string{"usagestarttime", "quantity", "meterid"}

// NewUsageReader reads the header of a usage aggregates part from r. A
// header without usageStartTime, quantity or meterId is a *HeaderError.
func NewUsageReader(r io.Reader, o *Options) (*UsageReader, error) {
	if o == nil {
		o = &Options{}
	}
	cr := csv.NewReader(skipBOM(r))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &HeaderError{File: o.File, Reason: "empty file, no header line"}
		}
		return nil, &HeaderError{File: o.File, Reason: err.Error()}
	}
	u := &UsageReader{file: o.File, part: o.Part, cr: cr, col: map[string]int{}, seen: map[[16]byte]uint32{}}
	for i, h := range header {
		h = strings.TrimSpace(h)
		u.header = append(u.header, h)
		if _, dup := u.col[strings.ToLower(h)]; dup {
			return nil, &HeaderError{File: o.File, Reason: fmt.Sprintf("duplicate column %q", h)}
		}
		u.col[strings.ToLower(h)] = i
	}
	var missing []string
	for _, c := range usageRequired {
		if _, ok := u.col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, &HeaderError{File: o.File, Missing: missing, Tried: []SchemaMissing{{Schema: SchemaUsageAggregates, Missing: missing}}}
	}
	return u, nil
}

// Close releases nothing: a UsageReader keeps no temporary files. It makes
// UsageReader an io.Closer like Reader, so callers treat both alike.
func (u *UsageReader) Close() error { return nil }

// Schema is SchemaUsageAggregates.
func (u *UsageReader) Schema() Schema { return SchemaUsageAggregates }

// Next returns the next record, io.EOF at the end, or a *LineError for a
// line it cannot accept (quarantine it and call Next again).
func (u *UsageReader) Next() (*Record, error) {
	if u.done != nil {
		return nil, u.done
	}
	fields, err := u.cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			u.done = io.EOF
			return nil, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, &LineError{File: u.file, Line: pe.StartLine, Reason: pe.Err.Error(), Fields: slices.Clone(fields)}
		}
		u.done = fmt.Errorf("read %s: %w", u.file, err)
		return nil, u.done
	}
	line, _ := u.cr.FieldPos(0)
	if len(fields) != len(u.header) {
		return nil, &LineError{File: u.file, Line: line, Fields: slices.Clone(fields),
			Reason: fmt.Sprintf("line has %d fields, header has %d", len(fields), len(u.header))}
	}
	rec, le := u.record(line, fields)
	if le != nil {
		le.Fields = slices.Clone(fields)
		return nil, le
	}
	return rec, nil
}

func (u *UsageReader) record(line int, fields []string) (*Record, *LineError) {
	get := func(name string) string {
		if i, ok := u.col[name]; ok {
			return clean(fields[i])
		}
		return ""
	}
	bad := func(name, format string, args ...any) *LineError {
		col := name
		if i, ok := u.col[name]; ok {
			col = u.header[i]
		}
		return &LineError{File: u.file, Line: line, Column: col, Reason: fmt.Sprintf(format, args...)}
	}
	rec := &Record{Line: line, ChargeCategory: "Usage"}
	start := get("usagestarttime")
	if start == "" {
		return nil, bad("usagestarttime", "empty usage start time")
	}
	t, err := parseTime(start)
	if err != nil {
		return nil, bad("usagestarttime", "unparsable usage start time %q: %v", start, err)
	}
	rec.ChargePeriodStart = t.UTC()
	var db [10]byte
	rec.Date = string(appendDate(db[:0], rec.ChargePeriodStart))
	var end time.Time
	if s := get("usageendtime"); s != "" {
		if end, err = parseTime(s); err != nil {
			return nil, bad("usageendtime", "unparsable usage end time %q: %v", s, err)
		}
	}
	q := get("quantity")
	if q == "" {
		return nil, bad("quantity", "empty quantity")
	}
	if rec.Quantity, err = parseAmount(q); err != nil {
		return nil, bad("quantity", "unparsable quantity: %v", err)
	}
	rec.MeterID = get("meterid")
	rec.MeterName = get("metername")
	rec.MeterCategory = get("metercategory")
	rec.UnitOfMeasure = get("unit")
	rec.SubAccountID = subAccount(get("subscriptionid"))

	// instanceData: {"Microsoft.Resources": {resourceUri, location, tags,
	// additionalInfo}}, a JSON string; legacy records carry infoFields.
	tags, addl := map[string]string{}, map[string]any{}
	if s := get("instancedata"); s != "" {
		inst, err := parseObject(s)
		if err != nil {
			return nil, bad("instancedata", "%v", err)
		}
		res, _ := inst["Microsoft.Resources"].(map[string]any)
		if res == nil {
			return nil, bad("instancedata", "no Microsoft.Resources object")
		}
		uri, _ := res["resourceUri"].(string)
		rec.ResourceID = strings.ToLower(uri)
		loc, _ := res["location"].(string)
		rec.RegionID = regionID(loc)
		if t, ok := res["tags"].(map[string]any); ok {
			for k, v := range t {
				if s, ok := v.(string); ok {
					tags[k] = s
				} else {
					tags[k] = string(appendCanonical(nil, v))
				}
			}
		}
		if info, ok := res["additionalInfo"].(map[string]any); ok {
			addl = info
		}
	}
	info, err := parseObject(get("infofields"))
	if err != nil {
		return nil, bad("infofields", "%v", err)
	}
	if rec.RegionID == "" {
		if r, ok := info["meteredRegion"].(string); ok {
			rec.RegionID = regionID(r)
		}
	}
	rec.ResourceGroup = resourceGroupOf(rec.ResourceID)
	rec.ResourceType = resourceTypeOf(rec.ResourceID)
	if p, ok := info["project"].(string); ok {
		rec.ResourceName = p
	} else if i := strings.LastIndexByte(rec.ResourceID, '/'); i >= 0 {
		rec.ResourceName = rec.ResourceID[i+1:]
	}

	rec.Tags = NewTags(tags)
	if rec.AdditionalInfo, err = NewObject(addl); err != nil {
		return nil, bad("instancedata", "additionalInfo: %v", err)
	}
	if !end.IsZero() {
		rec.ChargePeriodEnd = end.UTC()
	}
	rec.Raw = NewRaw(u.header, fields)
	var content []byte
	for _, f := range fields {
		content = appendField(content, f)
	}
	contentSum := keySum(content)
	rec.ContentHash = hex.EncodeToString(contentSum[:])

	key := appendField(nil, string(SchemaUsageAggregates))
	var tb [40]byte
	key = appendField(key, appendTime(tb[:0], rec.ChargePeriodStart))
	if !end.IsZero() {
		key = appendField(key, appendTime(tb[:0], end))
	} else {
		key = appendField(key, "")
	}
	key = appendField(key, rec.SubAccountID)
	key = appendLowerField(key, rec.MeterID)
	key = appendField(key, rec.ResourceID)
	key = appendField(key, rec.RegionID)
	key = appendLowerField(key, rec.UnitOfMeasure)
	key = appendField(key, rec.Tags.String())
	key = appendField(key, rec.AdditionalInfo.String())
	key = appendField(key, appendCanonical(nil, info))
	sum := keySum(key)
	occ := u.seen[sum] + 1
	u.seen[sum] = occ
	rec.Occurrence = int(occ)
	id := idSum(&sum, occ, u.part)
	rec.ID = hex.EncodeToString(id[:])
	return rec, nil
}
