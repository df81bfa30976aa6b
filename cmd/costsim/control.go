package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// The /_sim endpoints: ground truth, counters, faults and restatements.
// They are not part of Azure, need no token and never get faults.

func (s *sim) serveSim(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/_sim/truth" && r.Method == http.MethodGet:
		s.serveTruth(w, r)
	case r.URL.Path == "/_sim/stats" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.stats.snapshot())
	case r.URL.Path == "/_sim/stats" && r.Method == http.MethodDelete:
		s.stats.reset()
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/_sim/faults" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.faults.settings())
	case r.URL.Path == "/_sim/faults" && r.Method == http.MethodPost:
		s.serveSetFaults(w, r)
	case r.URL.Path == "/_sim/storage" && r.Method == http.MethodPost:
		s.serveSetStorage(w, r)
	case r.URL.Path == "/_sim/restate" && r.Method == http.MethodPost:
		s.serveRestate(w, r)
	case r.URL.Path == "/_sim/clock":
		s.serveClock(w, r)
	case r.URL.Path == "/_sim/report" && r.Method == http.MethodGet:
		s.serveReport(w, r)
	default:
		simError(w, http.StatusNotFound, fmt.Sprintf("no simulator endpoint %s %s", r.Method, r.URL.Path))
	}
}

// simError answers a /_sim request with {"error": message}.
func simError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}

// truthResponse is the answer of GET /_sim/truth. Every day of [from, to]
// is listed, days without rows too (rows 0, billedCost "0").
type truthResponse struct {
	Scope      string     `json:"scope"`
	Metric     string     `json:"metric"`
	Currency   string     `json:"currency"`
	Rows       int        `json:"rows"`
	BilledCost string     `json:"billedCost"`
	Days       []dayTruth `json:"days"`
}

// maxTruthDays bounds one truth request.
const maxTruthDays = 800

func (s *sim) serveTruth(w http.ResponseWriter, r *http.Request) {
	rq, ok := parseRange(w, r.URL.Query())
	if !ok {
		return
	}
	sc, metric, from, to := rq.sc, rq.metric, rq.from, rq.to
	revs := s.revisionsOf(rq)
	days, err := s.gen.truth(sc, metric, from, to, s.today(), func(d time.Time) int { return revs[d.Format(time.DateOnly)] })
	if err != nil {
		simError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.usageTruth(sc, days)
	resp := truthResponse{Scope: sc.path, Metric: metric, Currency: s.gen.population(sc).currency, Days: days}
	total := decimal.Zero
	for _, d := range days {
		resp.Rows += d.Rows
		total = total.Add(decimal.RequireFromString(d.BilledCost))
	}
	resp.BilledCost = total.String()
	writeJSON(w, http.StatusOK, resp)
}

func parseMetric(m string) (string, bool) {
	switch strings.ToLower(m) {
	case "", "actualcost":
		return actualCost, true
	case "amortizedcost":
		return amortizedCost, true
	}
	return "", false
}

func (s *sim) serveSetFaults(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		simError(w, http.StatusBadRequest, fmt.Sprintf("read body: %v", err))
		return
	}
	f, err := decodeFaults(b)
	if err != nil {
		simError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.faults.replace(f)
	writeJSON(w, http.StatusOK, s.faults.settings())
}

// restateRequest is the body of POST /_sim/restate; empty metric or date
// means all.
type restateRequest struct {
	Scope  string `json:"scope"`
	Metric string `json:"metric"`
	Date   string `json:"date"`
}

type restateResponse struct {
	Scope     string         `json:"scope"`
	Date      string         `json:"date,omitempty"`
	Revisions map[string]int `json:"revisions,omitempty"` // metric → revision of the date (when a date is given)
}

func (s *sim) serveRestate(w http.ResponseWriter, r *http.Request) {
	var req restateRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		simError(w, http.StatusBadRequest, fmt.Sprintf("decode restate request: %v", err))
		return
	}
	sc, err := parseScope(req.Scope)
	if err != nil {
		simError(w, http.StatusBadRequest, fmt.Sprintf("scope: %v", err))
		return
	}
	metrics := []string{actualCost, amortizedCost}
	if req.Metric != "" {
		m, ok := parseMetric(req.Metric)
		if !ok {
			simError(w, http.StatusBadRequest, fmt.Sprintf("metric %q: use ActualCost or AmortizedCost", req.Metric))
			return
		}
		metrics = []string{m}
	}
	var day time.Time
	if req.Date != "" {
		if day, err = time.Parse(time.DateOnly, req.Date); err != nil {
			simError(w, http.StatusBadRequest, fmt.Sprintf("date %q is not YYYY-MM-DD", req.Date))
			return
		}
	}
	resp := restateResponse{Scope: sc.path, Date: req.Date}
	s.mu.Lock()
	for _, m := range metrics {
		if req.Date == "" {
			s.revs.all[sc.key+"|"+m]++
			continue
		}
		s.revs.days[sc.key+"|"+m+"|"+day.Format(time.DateOnly)]++
		if resp.Revisions == nil {
			resp.Revisions = map[string]int{}
		}
		resp.Revisions[m] = s.revs.get(sc.key, m, day)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}
