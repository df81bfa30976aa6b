package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Commerce UsageAggregates, cost-apis.md §3.2:
// GET /subscriptions/{id}/providers/Microsoft.Commerce/UsageAggregates with
// reportedStartTime/reportedEndTime (the time usage was reported, not used),
// aggregationGranularity Daily or Hourly, showDetails, continuationToken
// paging through nextLink; quantities, no prices.
//
// The usage is the Usage lines of the ActualCost ground truth. Each is
// reported 1 to 3 days after its day (Daily) or 1 to 48 hours after its
// hour (Hourly). Hourly quantities split the day's quantity exactly, so
// that the hours of a day sum to it. One resource in eight is a classic
// one whose records carry the legacy infoFields instead of instanceData.

var commerceAPIVersions = []string{"2015-06-01-preview"}

// commerceRecord is one usage aggregate before rendering.
type commerceRecord struct {
	l          *line
	start, end time.Time
	reported   time.Time
	qty        decimal.Decimal
}

// usageLines are the lines Commerce reports: metered usage only.
func usageLines(lines []*line) []*line {
	var out []*line
	for _, l := range lines {
		if l.chargeType == "Usage" {
			out = append(out, l)
		}
	}
	return out
}

// commerceRecords are the usage records of a day at a granularity.
func (g *generator) commerceRecords(p *population, day time.Time, lines []*line, hourly bool) []commerceRecord {
	var out []commerceRecord
	for _, l := range lines {
		lag := hash64(g.seed, p.sc.key, l.key, "reported")
		if !hourly {
			out = append(out, commerceRecord{l: l, start: day, end: day.AddDate(0, 0, 1), qty: l.qty,
				reported: day.AddDate(0, 0, 1+int(lag%3))})
			continue
		}
		per := l.qty.DivRound(decimal.NewFromInt(24), 10)
		rest := l.qty
		for h := range 24 {
			q := per
			if h == 23 {
				q = rest
			}
			rest = rest.Sub(q)
			start := day.Add(time.Duration(h) * time.Hour)
			out = append(out, commerceRecord{l: l, start: start, end: start.Add(time.Hour), qty: q,
				reported: start.Add(time.Duration(1+(lag+uint64(h))%48) * time.Hour)})
		}
	}
	return out
}

// parseReportedTime reads reportedStartTime/EndTime: ISO 8601, in UTC.
func parseReportedTime(name, v string) (time.Time, string) {
	if v == "" {
		return time.Time{}, fmt.Sprintf("The query parameter '%s' is required.", name)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		if t, err = time.Parse("2006-01-02T15:04:05", v); err != nil {
			return time.Time{}, fmt.Sprintf("The value '%s' of '%s' is not a valid ISO 8601 date-time.", v, name)
		}
	}
	if _, off := t.Zone(); off != 0 {
		return time.Time{}, fmt.Sprintf("'%s' must be in UTC (an offset of +00:00 or Z), got '%s'.", name, v)
	}
	return t.UTC(), ""
}

// serveUsageAggregates is GET /subscriptions/{id}/providers/Microsoft.Commerce/UsageAggregates.
func (s *sim) serveUsageAggregates(w http.ResponseWriter, r *http.Request, rawScope string) {
	if r.Method != http.MethodGet {
		writeARMError(w, http.StatusMethodNotAllowed, "HttpMethodNotAllowed", "The requested method is not allowed; use GET.")
		return
	}
	if _, ok := s.checkARMVersions(w, r, commerceAPIVersions); !ok {
		return
	}
	sc, err := parseScope(rawScope)
	if err != nil || sc.kind != scopeSubscription {
		serveNotFound(w, r)
		return
	}
	q := r.URL.Query()
	bad := func(msg string) { writeARMError(w, http.StatusBadRequest, "InvalidInput", msg) }
	start, msg := parseReportedTime("reportedStartTime", q.Get("reportedStartTime"))
	if msg != "" {
		bad(msg)
		return
	}
	end, msg := parseReportedTime("reportedEndTime", q.Get("reportedEndTime"))
	if msg != "" {
		bad(msg)
		return
	}
	hourly := false
	switch strings.ToLower(q.Get("aggregationGranularity")) {
	case "", "daily":
	case "hourly":
		hourly = true
	default:
		bad(fmt.Sprintf("Invalid aggregationGranularity '%s'. Valid values are Daily and Hourly.", q.Get("aggregationGranularity")))
		return
	}
	details := !strings.EqualFold(q.Get("showDetails"), "false")
	switch {
	case !hourly && (!start.Equal(truncateDay(start)) || !end.Equal(truncateDay(end))):
		bad("With Daily granularity, reportedStartTime and reportedEndTime must be at midnight UTC (00:00:00).")
		return
	case hourly && (!start.Equal(start.Truncate(time.Hour)) || !end.Equal(end.Truncate(time.Hour))):
		bad("With Hourly granularity, reportedStartTime and reportedEndTime must be whole hours (mm:ss 00:00).")
		return
	case !end.After(start):
		bad("reportedEndTime must be after reportedStartTime.")
		return
	case end.Sub(start) > maxTruthDays*24*time.Hour:
		bad(fmt.Sprintf("costsim answers at most %d days per request.", maxTruthDays))
		return
	}
	bindSum := sha256.Sum256([]byte(strings.Join([]string{sc.key, start.String(), end.String(), fmt.Sprint(hourly, details)}, "\x00")))
	bind := hex.EncodeToString(bindSum[:8])
	offset := 0
	if tok := q.Get("continuationToken"); tok != "" {
		var ok bool
		if offset, ok = decodePageToken(tok, bind); !ok {
			bad("Invalid continuationToken.")
			return
		}
	}
	recs := s.usageAggregates(sc, start, end, hourly, details)
	pageEnd := min(offset+s.cfg.pageRows, len(recs))
	p := s.gen.population(sc)
	value := make([]jsonObj, 0, pageEnd-min(offset, pageEnd))
	for _, rec := range recs[min(offset, pageEnd):pageEnd] {
		value = append(value, s.gen.usageAggregate(p, rec, hourly, details))
	}
	body := jsonObj{{"value", value}}
	if pageEnd < len(recs) {
		nq := url.Values{}
		for k, vs := range q {
			if k != "continuationToken" {
				nq[k] = vs
			}
		}
		nq.Set("continuationToken", pageToken{Offset: pageEnd, Bind: bind}.encode())
		body = append(body, jsonField{"nextLink", "https://" + r.Host + "/" + sc.path + "/providers/Microsoft.Commerce/UsageAggregates?" + nq.Encode()})
	}
	writeJSON(w, http.StatusOK, body)
}

// simNow is the simulated current time: -today at the clock's time of day.
func (s *sim) simNow() time.Time {
	now := s.now().UTC()
	return s.today().Add(now.Sub(truncateDay(now)))
}

// usageAggregates are the records reported in [start, end) and by now, in
// reported order. Without details, the records of a meter and period are
// summed over instances.
func (s *sim) usageAggregates(sc scope, start, end time.Time, hourly, details bool) []commerceRecord {
	now := s.simNow()
	from := truncateDay(start).AddDate(0, 0, -3)
	to := truncateDay(end.Add(-time.Nanosecond))
	p, days := s.lines(sc, actualCost, from, to)
	var recs []commerceRecord
	for _, d := range days {
		for _, rec := range s.gen.commerceRecords(p, d.day, usageLines(d.lines), hourly) {
			if !rec.reported.Before(start) && rec.reported.Before(end) && !rec.reported.After(now) {
				recs = append(recs, rec)
			}
		}
	}
	if !details {
		recs = mergeInstances(recs)
	}
	slices.SortStableFunc(recs, func(a, b commerceRecord) int {
		if c := a.reported.Compare(b.reported); c != 0 {
			return c
		}
		return a.start.Compare(b.start)
	})
	return recs
}

// mergeInstances sums records of one meter, subscription and period.
func mergeInstances(recs []commerceRecord) []commerceRecord {
	index := map[string]int{}
	var out []commerceRecord
	for _, r := range recs {
		k := r.l.sub.id + "|" + r.l.m.key + "|" + r.start.String() + "|" + r.reported.String()
		if i, ok := index[k]; ok {
			out[i].qty = out[i].qty.Add(r.qty)
			continue
		}
		index[k] = len(out)
		out = append(out, r)
	}
	return out
}

// classic reports whether a line's resource is a classic one (legacy
// infoFields instead of instanceData).
func (g *generator) classic(l *line) bool {
	return hash64(g.seed, strings.ToLower(l.resourceID), "classic")%8 == 0
}

// usageAggregate renders one UsageAggregation.
func (g *generator) usageAggregate(p *population, rec commerceRecord, hourly, details bool) jsonObj {
	l := rec.l
	gran := "Daily"
	if hourly {
		gran = "Hourly"
	}
	name := fmt.Sprintf("%s_BRSDT_%s_%s", gran, rec.reported.Format("20060102"), rec.reported.Format("1504"))
	props := jsonObj{
		{"subscriptionId", l.sub.id},
		{"usageStartTime", rec.start.Format("2006-01-02T15:04:05-07:00")},
		{"usageEndTime", rec.end.Format("2006-01-02T15:04:05-07:00")},
		{"meterName", l.m.name}, {"meterCategory", l.m.category}, {"meterSubCategory", l.m.subCategory},
		{"unit", l.m.unit}, {"meterId", meterID(l.m)}, {"meterRegion", l.region.meterRegion},
	}
	switch {
	case !details:
	case g.classic(l):
		props = append(props, jsonField{"infoFields", jsonObj{
			{"meteredRegion", l.region.meterRegion}, {"meteredService", l.m.category},
			{"project", l.resourceName}, {"meteredServiceType", ""},
		}})
	default:
		res := jsonObj{{"resourceUri", l.resourceID}, {"location", l.region.name}}
		if len(l.tags) > 0 {
			res = append(res, jsonField{"tags", rawJSON(jsonObject(l.tags, true, false))})
		}
		if len(l.info) > 0 {
			res = append(res, jsonField{"additionalInfo", rawJSON(jsonObject(l.info, true, false))})
		}
		b, _ := jsonObj{{"Microsoft.Resources", res}}.MarshalJSON()
		props = append(props, jsonField{"infoFields", jsonObj{}}, jsonField{"instanceData", string(b)})
	}
	props = append(props, jsonField{"quantity", jsonNumber(rec.qty)})
	return jsonObj{
		{"id", "/" + p.sc.path + "/providers/Microsoft.Commerce/UsageAggregates/" + name},
		{"name", name},
		{"type", "Microsoft.Commerce/UsageAggregate"},
		{"properties", props},
	}
}

// rawJSON is JSON text written as is.
type rawJSON string

// MarshalJSON returns the text.
func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// usageTruth adds each day's usage rows and quantity (the Usage lines of
// the ActualCost ground truth, what Commerce reports) to days.
func (s *sim) usageTruth(sc scope, days []dayTruth) {
	if len(days) == 0 {
		return
	}
	from, _ := time.Parse(time.DateOnly, days[0].Date)
	to, _ := time.Parse(time.DateOnly, days[len(days)-1].Date)
	_, sets := s.lines(sc, actualCost, from, to)
	for i, d := range sets {
		sum := decimal.Zero
		lines := usageLines(d.lines)
		for _, l := range lines {
			sum = sum.Add(l.qty)
		}
		days[i].UsageRows, days[i].UsageQuantity = len(lines), sum.String()
	}
}
