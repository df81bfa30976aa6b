package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// The Query API, cost-apis.md §2: POST {scope}/providers/Microsoft.CostManagement/query
// with a QueryDefinition; rows of aggregated costs; properties.nextLink to
// be POSTed again with the same body; QPU rate-limit headers.

var queryAPIVersions = []string{"2021-10-01", "2022-10-01", "2023-03-01", "2023-11-01", "2024-08-01", "2025-03-01"}

// queryDefinition is QueryDefinition (spec 2024-08-01).
type queryDefinition struct {
	Type       string           `json:"type"`
	Timeframe  string           `json:"timeframe"`
	TimePeriod *queryTimePeriod `json:"timePeriod,omitempty"`
	Dataset    queryDataset     `json:"dataset"`
}

type queryTimePeriod struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type queryDataset struct {
	Granularity string                      `json:"granularity,omitempty"`
	Aggregation map[string]queryAggregation `json:"aggregation,omitempty"`
	Grouping    []queryGrouping             `json:"grouping,omitempty"`
	Filter      *queryFilter                `json:"filter,omitempty"`
}

type queryAggregation struct {
	Name     string `json:"name"`
	Function string `json:"function"`
}

type queryGrouping struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

type queryFilter struct {
	And        []queryFilter    `json:"and,omitempty"`
	Or         []queryFilter    `json:"or,omitempty"`
	Dimensions *queryComparison `json:"dimensions,omitempty"`
	Tags       *queryComparison `json:"tags,omitempty"`
}

type queryComparison struct {
	Name     string   `json:"name"`
	Operator string   `json:"operator"`
	Values   []string `json:"values"`
}

type queryColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type queryResult struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Properties queryProperties `json:"properties"`
}

type queryProperties struct {
	NextLink *string         `json:"nextLink"`
	Columns  []queryColumn   `json:"columns"`
	Rows     [][]interface{} `json:"rows"`
}

// queryMeasures are the aggregation column names costsim knows, and
// whether each is in USD.
var queryMeasures = map[string]bool{"pretaxcost": false, "cost": false, "costusd": true, "pretaxcostusd": true}

// queryDimensions maps the dimension names costsim can group and filter on
// (lower case) to a line's value.
var queryDimensions = map[string]func(l *line) string{
	"resourcegroup":     func(l *line) string { return l.rg },
	"resourcegroupname": func(l *line) string { return l.rg },
	"resourceid":        func(l *line) string { return l.resourceID },
	"resourcelocation":  func(l *line) string { return l.location },
	"metercategory":     func(l *line) string { return l.m.category },
	"metersubcategory":  func(l *line) string { return l.m.subCategory },
	"meter":             func(l *line) string { return l.m.name },
	"meterid":           func(l *line) string { return meterID(l.m) },
	"servicename":       func(l *line) string { return l.m.category },
	"servicefamily":     func(l *line) string { return l.m.family },
	"subscriptionid":    func(l *line) string { return l.sub.id },
	"subscriptionname":  func(l *line) string { return l.sub.name },
	"chargetype":        func(l *line) string { return l.chargeType },
	"pricingmodel":      func(l *line) string { return l.pricingModel },
	"unitofmeasure":     func(l *line) string { return l.m.unit },
	"consumedservice":   func(l *line) string { return l.service },
}

// tagValue returns the value of tag name on l: an exact key first, else one
// equal but for case and surrounding spaces.
func tagValue(l *line, name string) (string, bool) {
	for _, t := range l.tags {
		if t.k == name {
			return t.v, true
		}
	}
	for _, t := range l.tags {
		if strings.EqualFold(strings.TrimSpace(t.k), name) {
			return t.v, true
		}
	}
	return "", false
}

// queryError is a definition the service refuses (400 BadRequest).
type queryError string

func (e queryError) Error() string { return string(e) }

// queryPlan is a validated definition.
type queryPlan struct {
	metric   string
	from, to time.Time
	monthly  bool
	aliases  []string // sorted
	measures []string // the aggregation column names, in alias order
	groups   []queryGrouping
	filter   *queryFilter
}

// plan validates a definition against the spec's rules.
func (d *queryDefinition) plan(today time.Time) (*queryPlan, error) {
	p := &queryPlan{filter: d.Dataset.Filter}
	switch strings.ToLower(d.Type) {
	case "usage", "actualcost":
		p.metric = actualCost
	case "amortizedcost":
		p.metric = amortizedCost
	default:
		return nil, queryError(fmt.Sprintf("Invalid query type '%s'. Valid values are Usage, ActualCost and AmortizedCost.", d.Type))
	}
	switch strings.ToLower(d.Timeframe) {
	case "monthtodate", "billingmonthtodate":
		p.from, p.to = monthStart(today), today
	case "thelastmonth", "thelastbillingmonth":
		p.from = monthStart(today).AddDate(0, -1, 0)
		p.to = monthEnd(p.from)
	case "weektodate":
		p.from = today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7))
		p.to = today
	case "custom":
		if d.TimePeriod == nil {
			return nil, queryError("Invalid query: timePeriod is required when timeframe is Custom.")
		}
		from, ok1 := parseDate(d.TimePeriod.From)
		to, ok2 := parseDate(d.TimePeriod.To)
		if !ok1 || !ok2 {
			return nil, queryError("Invalid query: timePeriod from and to must be dates or date-times.")
		}
		if to.Before(from) {
			return nil, queryError("Invalid query: timePeriod to is before from.")
		}
		if to.Sub(from) > maxTruthDays*24*time.Hour {
			return nil, queryError(fmt.Sprintf("Invalid query: costsim answers at most %d days per query.", maxTruthDays))
		}
		p.from, p.to = from, to
	default:
		return nil, queryError(fmt.Sprintf("Invalid timeframe '%s'.", d.Timeframe))
	}
	switch strings.ToLower(d.Dataset.Granularity) {
	case "", "none":
	case "daily":
	case "monthly":
		p.monthly = true
	default:
		return nil, queryError(fmt.Sprintf("Invalid granularity '%s'. Valid values are Daily and Monthly.", d.Dataset.Granularity))
	}
	if len(d.Dataset.Aggregation) > 2 {
		return nil, queryError("Invalid query: a query can have up to 2 aggregation clauses.")
	}
	for alias, a := range d.Dataset.Aggregation {
		if !strings.EqualFold(a.Function, "Sum") {
			return nil, queryError(fmt.Sprintf("Invalid aggregation function '%s' for '%s'; costsim supports Sum.", a.Function, alias))
		}
		if _, ok := queryMeasures[strings.ToLower(a.Name)]; !ok {
			return nil, queryError(fmt.Sprintf("Invalid aggregation column '%s'. Valid columns are PreTaxCost, Cost, CostUSD and PreTaxCostUSD.", a.Name))
		}
		p.aliases = append(p.aliases, alias)
	}
	slices.Sort(p.aliases)
	for _, alias := range p.aliases {
		p.measures = append(p.measures, d.Dataset.Aggregation[alias].Name)
	}
	if len(p.measures) == 0 {
		p.measures = []string{"PreTaxCost"}
	}
	if len(d.Dataset.Grouping) > 2 {
		return nil, queryError("Invalid query: a query can have up to 2 group by clauses.")
	}
	for _, g := range d.Dataset.Grouping {
		switch strings.ToLower(g.Type) {
		case "dimension":
			if queryDimensions[strings.ToLower(g.Name)] == nil {
				return nil, queryError(fmt.Sprintf("Invalid dimension '%s' in grouping.", g.Name))
			}
		case "tagkey":
			if g.Name == "" {
				return nil, queryError("Invalid query: a TagKey grouping needs a tag name.")
			}
		default:
			return nil, queryError(fmt.Sprintf("Invalid grouping type '%s'. Valid values are Dimension and TagKey.", g.Type))
		}
		p.groups = append(p.groups, g)
	}
	if err := checkFilter(p.filter); err != nil {
		return nil, err
	}
	return p, nil
}

func checkFilter(f *queryFilter) error {
	if f == nil {
		return nil
	}
	n := 0
	for _, set := range []bool{len(f.And) > 0, len(f.Or) > 0, f.Dimensions != nil, f.Tags != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return queryError("Invalid filter: each filter expression must have exactly one of and, or, dimensions or tags.")
	}
	if (len(f.And) > 0 && len(f.And) < 2) || (len(f.Or) > 0 && len(f.Or) < 2) {
		return queryError("Invalid filter: 'and' and 'or' need at least 2 expressions.")
	}
	for _, c := range []*queryComparison{f.Dimensions, f.Tags} {
		if c == nil {
			continue
		}
		if !strings.EqualFold(c.Operator, "In") {
			return queryError(fmt.Sprintf("Invalid filter operator '%s'; costsim supports In.", c.Operator))
		}
		if c == f.Dimensions && queryDimensions[strings.ToLower(c.Name)] == nil {
			return queryError(fmt.Sprintf("Invalid dimension '%s' in filter.", c.Name))
		}
	}
	for i := range f.And {
		if err := checkFilter(&f.And[i]); err != nil {
			return err
		}
	}
	for i := range f.Or {
		if err := checkFilter(&f.Or[i]); err != nil {
			return err
		}
	}
	return nil
}

// match evaluates a filter on a line. Dimension values compare without case.
func (f *queryFilter) match(l *line) bool {
	switch {
	case f == nil:
		return true
	case len(f.And) > 0:
		for i := range f.And {
			if !f.And[i].match(l) {
				return false
			}
		}
		return true
	case len(f.Or) > 0:
		for i := range f.Or {
			if f.Or[i].match(l) {
				return true
			}
		}
		return false
	case f.Dimensions != nil:
		v := queryDimensions[strings.ToLower(f.Dimensions.Name)](l)
		return slices.ContainsFunc(f.Dimensions.Values, func(x string) bool { return strings.EqualFold(x, v) })
	case f.Tags != nil:
		v, ok := tagValue(l, f.Tags.Name)
		return ok && slices.ContainsFunc(f.Tags.Values, func(x string) bool { return strings.EqualFold(x, v) })
	}
	return true
}

// columns are the result's columns: measures, groups, the date, currency.
func (p *queryPlan) columns(daily bool) []queryColumn {
	var cols []queryColumn
	for _, m := range p.measures {
		cols = append(cols, queryColumn{Name: m, Type: "Number"})
	}
	for _, g := range p.groups {
		if strings.EqualFold(g.Type, "TagKey") {
			cols = append(cols, queryColumn{Name: "TagKey", Type: "String"}, queryColumn{Name: "TagValue", Type: "String"})
			continue
		}
		cols = append(cols, queryColumn{Name: g.Name, Type: "String"})
	}
	switch {
	case p.monthly:
		cols = append(cols, queryColumn{Name: "BillingMonth", Type: "Datetime"})
	case daily:
		cols = append(cols, queryColumn{Name: "UsageDate", Type: "Number"})
	}
	return append(cols, queryColumn{Name: "Currency", Type: "String"})
}

// queryRows computes every row of a validated query, in a stable order.
func (s *sim) queryRows(sc scope, p *queryPlan, daily bool) [][]interface{} {
	pop, days := s.lines(sc, p.metric, p.from, p.to)
	today := s.today()
	type acc struct {
		key  []string
		date interface{}
		sums []decimal.Decimal
	}
	groups := map[string]*acc{}
	var order []string
	for _, ds := range days {
		for _, l := range ds.lines {
			if !p.filter.match(l) {
				continue
			}
			var key []string
			for _, g := range p.groups {
				if strings.EqualFold(g.Type, "TagKey") {
					v, ok := tagValue(l, g.Name)
					if ok {
						key = append(key, g.Name, v)
					} else {
						key = append(key, "", "")
					}
					continue
				}
				key = append(key, queryDimensions[strings.ToLower(g.Name)](l))
			}
			var date interface{}
			dateKey := ""
			switch {
			case p.monthly:
				date = monthStart(ds.day).Format("2006-01-02T15:04:05")
				dateKey = date.(string)
			case daily:
				n, _ := strconv.Atoi(ds.day.Format("20060102"))
				date, dateKey = n, strconv.Itoa(n)
			}
			k := dateKey + "\x00" + strings.Join(key, "\x00")
			a := groups[k]
			if a == nil {
				a = &acc{key: key, date: date, sums: make([]decimal.Decimal, len(p.measures))}
				groups[k] = a
				order = append(order, k)
			}
			billed, usd := s.gen.billedCost(pop, l, p.metric, today)
			for i, m := range p.measures {
				if queryMeasures[strings.ToLower(m)] {
					a.sums[i] = a.sums[i].Add(usd)
				} else {
					a.sums[i] = a.sums[i].Add(billed)
				}
			}
		}
	}
	slices.Sort(order)
	rows := make([][]interface{}, 0, len(order))
	for _, k := range order {
		a := groups[k]
		var row []interface{}
		for _, v := range a.sums {
			row = append(row, jsonNumber(v))
		}
		for _, v := range a.key {
			row = append(row, v)
		}
		if a.date != nil {
			row = append(row, a.date)
		}
		rows = append(rows, append(row, pop.currency))
	}
	return rows
}

// serveQuery is POST {scope}/providers/Microsoft.CostManagement/query.
func (s *sim) serveQuery(w http.ResponseWriter, r *http.Request, rawScope string) {
	if r.Method != http.MethodPost {
		writeARMError(w, http.StatusMethodNotAllowed, "HttpMethodNotAllowed", "The requested method is not allowed; use POST.")
		return
	}
	if _, ok := s.checkARMVersions(w, r, queryAPIVersions); !ok {
		return
	}
	sc, err := parseScope(rawScope)
	if err != nil {
		writeScopeError(w, err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		writeARMError(w, http.StatusBadRequest, "BadRequest", "Invalid query definition: the request body is required.")
		return
	}
	var def queryDefinition
	if err := json.Unmarshal(body, &def); err != nil {
		writeARMError(w, http.StatusBadRequest, "BadRequest", "Invalid query definition: "+err.Error())
		return
	}
	plan, err := def.plan(s.today())
	if err != nil {
		writeARMError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	top, ok := pageSize(w, r, s.cfg.pageRows, 5000)
	if !ok {
		return
	}
	// A next page is the same body POSTed to nextLink: the token is bound to
	// the body, so another body with it is refused.
	sum := sha256.Sum256(body)
	bind := hex.EncodeToString(sum[:8])
	offset := 0
	if tok := r.URL.Query().Get("$skiptoken"); tok != "" {
		if offset, ok = decodePageToken(tok, bind); !ok {
			writeARMError(w, http.StatusBadRequest, "BadRequest", "Invalid $skiptoken: it does not belong to this query.")
			return
		}
	}
	qpu := monthsSpanned(plan.from, plan.to)
	if wait := s.qpu.take(s.now(), qpu, s.cfg.enforceQuota); wait > 0 {
		s.stats.add(func(st *stats) { st.Throttled++; st.QuotaRejected++ })
		s.throttleQPU(w, int(wait/time.Second))
		return
	}
	daily := strings.EqualFold(def.Dataset.Granularity, "Daily")
	rows := s.queryRows(sc, plan, daily)
	end := min(offset+top, len(rows))
	page := rows[min(offset, len(rows)):end]
	res := queryResult{
		ID:   sc.path + "/providers/Microsoft.CostManagement/Query/" + newGUID(),
		Type: "microsoft.costmanagement/Query",
		Properties: queryProperties{
			Columns: plan.columns(daily),
			Rows:    page,
		},
	}
	res.Name = res.ID[strings.LastIndex(res.ID, "/")+1:]
	if end < len(rows) {
		q := url.Values{"api-version": {r.URL.Query().Get("api-version")}, "$skiptoken": {pageToken{Offset: end, Bind: bind}.encode()}}
		if r.URL.Query().Has("$top") {
			q.Set("$top", strconv.Itoa(top))
		}
		link := "https://" + r.Host + "/" + sc.path + "/providers/Microsoft.CostManagement/query?" + q.Encode()
		res.Properties.NextLink = &link
	}
	if res.Properties.Rows == nil {
		res.Properties.Rows = [][]interface{}{}
	}
	s.qpu.headers(w, s.now(), qpu)
	writeJSON(w, http.StatusOK, res)
}

// writeScopeError answers a scope parseScope refused.
func writeScopeError(w http.ResponseWriter, err error) {
	se, ok := err.(*scopeError)
	if !ok {
		writeARMError(w, http.StatusBadRequest, "400", err.Error())
		return
	}
	writeARMError(w, http.StatusBadRequest, se.code, se.message)
}

// monthsSpanned is the QPU cost of a query: one per month of data.
func monthsSpanned(from, to time.Time) int {
	return (to.Year()-from.Year())*12 + int(to.Month()-from.Month()) + 1
}

// QPU quotas per tenant (cost-apis.md §2).
var qpuQuotas = []struct {
	name   string
	window time.Duration
	limit  int
}{{"QueryQPUPer10s", 10 * time.Second, 12}, {"QueryQPUPer1m", time.Minute, 60}, {"QueryQPUPer1h", time.Hour, 600}}

// qpuMeter counts the QPUs of the last hour.
type qpuMeter struct {
	mu   sync.Mutex
	used []qpuUse
}

type qpuUse struct {
	at  time.Time
	qpu int
}

// take charges qpu at now and returns 0, or, when enforce is set and a
// quota would be exceeded, how long to wait (nothing is charged then).
func (m *qpuMeter) take(now time.Time, qpu int, enforce bool) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.used[:0]
	for _, u := range m.used {
		if now.Sub(u.at) < time.Hour {
			kept = append(kept, u)
		}
	}
	m.used = kept
	if enforce {
		var wait time.Duration
		for _, q := range qpuQuotas {
			total := qpu
			var oldest time.Time
			for _, u := range m.used {
				if now.Sub(u.at) < q.window {
					total += u.qpu
					if oldest.IsZero() {
						oldest = u.at
					}
				}
			}
			if total > q.limit && !oldest.IsZero() {
				wait = max(wait, q.window-now.Sub(oldest))
			}
		}
		if wait > 0 {
			return wait.Round(time.Second) + time.Second
		}
	}
	m.used = append(m.used, qpuUse{at: now, qpu: qpu})
	return 0
}

// headers writes the QPU headers of an answered query.
func (m *qpuMeter) headers(w http.ResponseWriter, now time.Time, qpu int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var remaining []string
	for _, q := range qpuQuotas {
		used := 0
		for _, u := range m.used {
			if now.Sub(u.at) < q.window {
				used += u.qpu
			}
		}
		remaining = append(remaining, fmt.Sprintf("%s:%d", q.name, max(q.limit-used, 0)))
	}
	w.Header().Set("x-ms-ratelimit-microsoft.costmanagement-qpu-consumed", strconv.Itoa(qpu))
	w.Header().Set("x-ms-ratelimit-microsoft.costmanagement-qpu-remaining", strings.Join(remaining, ","))
}

// throttleQPU answers 429 with the QPU retry header (seconds).
func (s *sim) throttleQPU(w http.ResponseWriter, secs int) {
	secs = max(secs, 1)
	w.Header().Set("x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after", strconv.Itoa(secs))
	w.Header().Set("x-ms-ratelimit-microsoft.costmanagement-qpu-remaining", "QueryQPUPer10s:0")
	writeARMError(w, http.StatusTooManyRequests, "429", "Too many requests. Please retry after the time in the x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after header.")
}
