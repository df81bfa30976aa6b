package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// The other ways Azure hands out the same costs: the Query API (query.go),
// Consumption usage details (consumption.go), Commerce usage aggregates
// (commerce.go) and native exports (exports.go). All of them serve the lines
// of the same ground truth as Cost Details.

// Endpoint kinds of the other sources, for stats, logs and faults.
const (
	kindQuery    = "query"
	kindUsage    = "usage-details"
	kindCommerce = "usage-aggregates"
	kindExport   = "export"
)

// sourceKinds get the same random faults as Cost Details calls.
var sourceKinds = map[string]bool{kindQuery: true, kindUsage: true, kindCommerce: true, kindExport: true}

// routeSources picks the handler of a Query, Consumption, Commerce or
// Exports request; ok is false for any other path.
func (s *sim) routeSources(p string) (kind string, h http.HandlerFunc, ok bool) {
	lower := strings.ToLower(p)
	cut := func(provider string) (scope, rest string, found bool) {
		i := strings.LastIndex(lower, provider)
		if i < 0 {
			return "", "", false
		}
		return strings.Trim(p[:i], "/"), p[i+len(provider):], true
	}
	if scope, rest, found := cut("/providers/microsoft.costmanagement/"); found {
		switch r := strings.ToLower(rest); {
		case r == "query":
			return kindQuery, func(w http.ResponseWriter, r *http.Request) { s.serveQuery(w, r, scope) }, true
		case strings.HasPrefix(r, "exports/"):
			return kindExport, func(w http.ResponseWriter, r *http.Request) { s.serveExport(w, r, scope, rest[len("exports/"):]) }, true
		}
		return "", nil, false
	}
	if scope, rest, found := cut("/providers/microsoft.consumption/"); found && strings.EqualFold(rest, "usageDetails") {
		return kindUsage, func(w http.ResponseWriter, r *http.Request) { s.serveUsageDetails(w, r, scope) }, true
	}
	if scope, rest, found := cut("/providers/microsoft.commerce/"); found && strings.EqualFold(rest, "UsageAggregates") {
		return kindCommerce, func(w http.ResponseWriter, r *http.Request) { s.serveUsageAggregates(w, r, scope) }, true
	}
	return "", nil, false
}

// sourceThrottle is how each source answers a throttle fault: the Query API
// with its QPU header, Consumption with its own retry header, Commerce with
// Retry-After only. nil: the Cost Details answer.
func sourceThrottle(kind string) func(s *sim, w http.ResponseWriter) {
	switch kind {
	case kindQuery:
		return func(s *sim, w http.ResponseWriter) { s.throttleQPU(w, s.cfg.retryAfter+1) }
	case kindUsage:
		return func(s *sim, w http.ResponseWriter) {
			w.Header().Set("x-ms-ratelimit-microsoft.consumption-retry-after", strconv.Itoa(s.cfg.retryAfter+1))
			w.Header().Set("Retry-After", strconv.Itoa(s.cfg.retryAfter))
			writeARMError(w, http.StatusTooManyRequests, "429", `Too many requests. Please retry after the time specified in the "x-ms-ratelimit-microsoft.consumption-retry-after" header.`)
		}
	case kindCommerce:
		return func(s *sim, w http.ResponseWriter) {
			w.Header().Set("Retry-After", strconv.Itoa(s.cfg.retryAfter))
			writeARMError(w, http.StatusTooManyRequests, "TooManyRequests", "The request was throttled. Please retry after the time in the Retry-After header.")
		}
	}
	return nil
}

// checkARMVersions is checkARM for an API with its own api-versions.
func (s *sim) checkARMVersions(w http.ResponseWriter, r *http.Request, versions []string) (string, bool) {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		writeARMError(w, http.StatusBadRequest, "MissingApiVersionParameter",
			"The api-version query parameter (?api-version=) is required for all requests.")
		return "", false
	}
	known := false
	for _, k := range versions {
		known = known || k == v
	}
	if !known {
		writeARMError(w, http.StatusBadRequest, "InvalidApiVersionParameter",
			"The api-version '"+v+"' is invalid. The supported versions are '"+strings.Join(versions, ",")+"'.")
		return "", false
	}
	if msg := s.checkBearer(r); msg != "" {
		writeARMError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		return "", false
	}
	return v, true
}

// daySet is the lines of one day for one metric.
type daySet struct {
	day   time.Time
	lines []*line
}

// lines returns the population of sc and its lines of every day in [from,
// to] for metric, at the current revisions. An empty metric gives the lines
// of both metrics, at the ActualCost revisions.
func (s *sim) lines(sc scope, metric string, from, to time.Time) (*population, []daySet) {
	today := s.today()
	revMetric := metric
	if metric == "" {
		revMetric = actualCost
	}
	s.mu.Lock()
	revs := map[time.Time]int{}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		revs[d] = s.revs.get(sc.key, revMetric, d)
	}
	s.mu.Unlock()
	p := s.gen.population(sc)
	var out []daySet
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		lines := s.gen.dayLines(p, d, today, revs[d])
		if metric != "" {
			lines = forMetric(lines, metric)
		}
		out = append(out, daySet{day: d, lines: lines})
	}
	return p, out
}

// billedCost is a line's cost in the billing currency exactly as the cost
// files write it (the text the ground truth sums), and its cost in USD.
func (g *generator) billedCost(p *population, l *line, metric string, today time.Time) (billed, usd decimal.Decimal) {
	v := g.values(p, l, metric, today)
	billed = decimal.RequireFromString(v[p.schema.cost])
	usd = billed
	if p.mca {
		usd = decimal.RequireFromString(v["costInUsd"])
	}
	return billed, usd
}

// pageToken is a $skiptoken or continuationToken: an offset into a result,
// bound to the request it continues so that a token used with another
// request is refused, as the services do.
type pageToken struct {
	Offset int    `json:"o"`
	Bind   string `json:"b"`
}

func (t pageToken) encode() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s, bind string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	var t pageToken
	if json.Unmarshal(b, &t) != nil || t.Bind != bind || t.Offset < 0 {
		return 0, false
	}
	return t.Offset, true
}

// pageSize reads $top, bounded by max; def when absent. ok is false (and
// the request answered) when $top is not a positive number.
func pageSize(w http.ResponseWriter, r *http.Request, def, max int) (int, bool) {
	v := r.URL.Query().Get("$top")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		writeARMError(w, http.StatusBadRequest, "BadRequest", "Invalid $top value '"+v+"': it must be a positive integer.")
		return 0, false
	}
	return min(n, max), true
}

// jsonNumber writes an exact decimal as a JSON number.
func jsonNumber(d decimal.Decimal) json.Number { return json.Number(d.String()) }

// armTime is the Consumption API's timestamp layout.
const armTime = "2006-01-02T15:04:05.0000000Z"
