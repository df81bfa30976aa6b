package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GET /_sim/report?scope=S&metric=M&from=D&to=D&part=N answers part N of
// the report a Cost Details request for [from, to] would produce now (the
// current revisions and -today): the same rows, in the same order, split
// into the same blobs, each with its BOM and header. X-Sim-Parts holds the
// number of parts. Tests that check ids and content, not only totals,
// parse it as the ground truth. The last report asked for is kept, so that
// reading its parts one by one generates it once.

// reportCache keeps the blobs of the last report asked for.
type reportCache struct {
	mu    sync.Mutex
	key   string
	blobs [][]byte
}

// rangeQuery is the scope, metric and day range of a /_sim request.
type rangeQuery struct {
	sc       scope
	metric   string
	from, to time.Time
}

// parseRange reads scope, metric, from and to; it answers the request with
// 400 and returns false when one is wrong.
func parseRange(w http.ResponseWriter, q url.Values) (rangeQuery, bool) {
	var rq rangeQuery
	sc, err := parseScope(q.Get("scope"))
	if err != nil {
		simError(w, http.StatusBadRequest, fmt.Sprintf("scope: %v", err))
		return rq, false
	}
	metric, ok := parseMetric(q.Get("metric"))
	if !ok {
		simError(w, http.StatusBadRequest, fmt.Sprintf("metric %q: use ActualCost or AmortizedCost", q.Get("metric")))
		return rq, false
	}
	from, err1 := time.Parse(time.DateOnly, q.Get("from"))
	to, err2 := time.Parse(time.DateOnly, q.Get("to"))
	switch {
	case err1 != nil || err2 != nil:
		simError(w, http.StatusBadRequest, "from and to are required, as YYYY-MM-DD")
		return rq, false
	case to.Before(from):
		simError(w, http.StatusBadRequest, "to is before from")
		return rq, false
	case to.Sub(from) > maxTruthDays*24*time.Hour:
		simError(w, http.StatusBadRequest, fmt.Sprintf("at most %d days per request", maxTruthDays))
		return rq, false
	}
	return rangeQuery{sc: sc, metric: metric, from: from, to: to}, true
}

// revisionsOf snapshots the current revision of every day of rq.
func (s *sim) revisionsOf(rq rangeQuery) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	revs := map[string]int{}
	for d := rq.from; !d.After(rq.to); d = d.AddDate(0, 0, 1) {
		revs[d.Format(time.DateOnly)] = s.revs.get(rq.sc.key, rq.metric, d)
	}
	return revs
}

func (s *sim) serveReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rq, ok := parseRange(w, q)
	if !ok {
		return
	}
	part, err := strconv.Atoi(q.Get("part"))
	if err != nil || part < 0 {
		simError(w, http.StatusBadRequest, "part is required, a number from 0")
		return
	}
	revs := s.revisionsOf(rq)
	today := s.today()
	var key strings.Builder
	fmt.Fprintf(&key, "%s|%s|%s|%s|%s", rq.sc.key, rq.metric, rq.from.Format(time.DateOnly), rq.to.Format(time.DateOnly), today.Format(time.DateOnly))
	for d := rq.from; !d.After(rq.to); d = d.AddDate(0, 0, 1) {
		fmt.Fprintf(&key, "|%d", revs[d.Format(time.DateOnly)])
	}
	s.reports.mu.Lock()
	defer s.reports.mu.Unlock()
	if s.reports.key != key.String() {
		schema, rows := s.gen.reportRows(rq.sc, rq.metric, rq.from, rq.to, today, func(d time.Time) int { return revs[d.Format(time.DateOnly)] })
		b, err := blobs(schema, rows, s.cfg.blobRows)
		if err != nil {
			simError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if len(rows) == 0 {
			b = nil // a real report of no rows has no blobs (NoDataFound)
		}
		s.reports.key, s.reports.blobs = key.String(), b
	}
	w.Header().Set("X-Sim-Parts", strconv.Itoa(len(s.reports.blobs)))
	if part >= len(s.reports.blobs) {
		simError(w, http.StatusNotFound, fmt.Sprintf("the report has %d parts", len(s.reports.blobs)))
		return
	}
	w.Header().Set("Content-Type", "text/csv")
	w.WriteHeader(http.StatusOK)
	w.Write(s.reports.blobs[part])
}
