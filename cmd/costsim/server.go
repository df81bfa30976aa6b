package main

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// sim is the simulator: one http.Handler with all endpoints.
type sim struct {
	cfg    config
	log    *slog.Logger
	gen    *generator
	secret []byte // signs SAS links and tokens; random per process
	now    func() time.Time

	stats  *stats
	faults *faultState
	quota  *quota
	clock  *simClock // nil: the real clock
	qpu    *qpuMeter

	exports     *exportState
	exportsOnce sync.Once

	mu   sync.Mutex
	ops  map[string]*operation
	revs revisions

	reports reportCache // GET /_sim/report
}

// newSim builds a simulator from cfg.
func newSim(cfg config, logger *slog.Logger) (*sim, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("make secret: %w", err)
	}
	if cfg.pageRows <= 0 {
		cfg.pageRows = 1000
	}
	if cfg.linkTTL <= 0 {
		cfg.linkTTL = time.Hour
	}
	if cfg.tenant == "" {
		cfg.tenant = stableGUID(cfg.seed, "tenant")
	}
	if err := cfg.faults.validate(); err != nil {
		return nil, fmt.Errorf("faults: %w", err)
	}
	s := &sim{
		cfg:    cfg,
		log:    logger,
		gen:    &generator{seed: cfg.seed, rowsPerDay: cfg.rowsPerDay},
		secret: secret,
		now:    time.Now,
		stats:  newStats(),
		faults: newFaultState(cfg.seed, cfg.faults),
		quota:  newQuota(),
		qpu:    &qpuMeter{},
		ops:    map[string]*operation{},
		revs:   revisions{days: map[string]int{}, all: map[string]int{}},
	}
	if !cfg.clock.IsZero() {
		s.clock = &simClock{t: cfg.clock}
		s.now = s.clock.now
	}
	return s, nil
}

// today is the simulated current date (UTC midnight).
func (s *sim) today() time.Time {
	if !s.cfg.today.IsZero() {
		return s.cfg.today
	}
	return truncateDay(s.now().UTC())
}

// Endpoint kinds, for stats and logs.
const (
	kindToken    = "token"
	kindCreate   = "create"
	kindPoll     = "poll"
	kindDownload = "download"
	kindSim      = "sim"
	kindOther    = "other"
)

// ServeHTTP routes a request, applies faults to ARM and download requests,
// counts it and logs it once.
func (s *sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	kind, serve := s.route(r)
	s.stats.request(kind)
	// Status codes are counted when the header is written, before the client
	// can see the answer, so a client reading /_sim/stats next sees them.
	rec := &recorder{ResponseWriter: w, onStatus: func(code int) { s.stats.status(kind, code) }}
	defer func() {
		if rec.status == 0 && !rec.reset {
			rec.WriteHeader(http.StatusOK)
		}
		s.log.Info("request", "kind", kind, "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "reset", rec.reset, "duration_ms", s.now().Sub(start).Milliseconds())
	}()
	if kind == kindCreate || kind == kindPoll {
		if ct := r.Header.Get("ClientType"); ct == "" {
			s.stats.add(func(st *stats) { st.MissingClientType++ })
		} else {
			s.stats.add(func(st *stats) { st.ClientTypes[ct]++ })
		}
	}
	if kind == kindCreate || kind == kindPoll || kind == kindDownload || sourceKinds[kind] {
		if s.injectFault(rec, r, kind) {
			return
		}
	}
	serve(rec, r)
}

// route picks the handler for r. ARM paths match case-insensitively.
func (s *sim) route(r *http.Request) (string, http.HandlerFunc) {
	p := r.URL.Path
	lower := strings.ToLower(p)
	switch {
	case lower == "/msi/token":
		return kindToken, s.serveToken
	case strings.HasPrefix(p, "/_sim/"):
		return kindSim, s.serveSim
	case strings.HasPrefix(lower, "/armreports/"):
		return kindDownload, s.serveDownload
	}
	if kind, h, ok := s.routeSources(p); ok {
		return kind, h
	}
	const cm = "/providers/microsoft.costmanagement/"
	i := strings.LastIndex(lower, cm)
	if i < 0 {
		return kindOther, serveNotFound
	}
	scope := strings.Trim(p[:i], "/")
	rest := lower[i+len(cm):]
	switch {
	case rest == "generatecostdetailsreport":
		return kindCreate, func(w http.ResponseWriter, r *http.Request) { s.serveCreate(w, r, scope) }
	case strings.HasPrefix(rest, "costdetailsoperationresults/") && !strings.Contains(rest[len("costdetailsoperationresults/"):], "/"):
		id := p[i+len(cm)+len("costdetailsoperationresults/"):]
		return kindPoll, func(w http.ResponseWriter, r *http.Request) { s.servePoll(w, r, scope, id) }
	}
	return kindOther, serveNotFound
}

func serveNotFound(w http.ResponseWriter, r *http.Request) {
	writeARMError(w, http.StatusNotFound, "NotFound",
		fmt.Sprintf("The resource path '%s' is not found or not supported by costsim.", r.URL.Path))
}

// armError is ARM's error body.
type armError struct {
	Error armErrorDetail `json:"error"`
}

type armErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeARMError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("x-ms-failure-cause", "service")
	writeJSON(w, status, armError{armErrorDetail{Code: code, Message: message}})
}

// recorder keeps the status of a response and whether the connection was
// reset, and reports the status once.
type recorder struct {
	http.ResponseWriter
	status   int
	reset    bool
	onStatus func(int)
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		r.onStatus(code)
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

// markReset records a connection reset (status "reset" in the stats).
func (r *recorder) markReset() {
	r.reset = true
	r.onStatus(0)
}

// Unwrap lets http.ResponseController reach the connection (for resets).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// stats are the counters served by GET /_sim/stats.
type stats struct {
	mu                sync.Mutex
	Requests          map[string]int            `json:"requests"`
	Status            map[string]map[string]int `json:"status"`
	Throttled         int                       `json:"throttled"`
	ServerErrors      int                       `json:"serverErrors"`
	Resets            int                       `json:"resets"`
	Timeouts          int                       `json:"timeouts"`
	QuotaRejected     int                       `json:"quotaRejected"`
	MissingClientType int                       `json:"missingClientType"`
	ClientTypes       map[string]int            `json:"clientTypes"`
	Operations        int                       `json:"operations"`
	FailedReports     int                       `json:"failedReports"`
	ExpiredLinks      int                       `json:"expiredLinks"`
	NoContent         int                       `json:"noContent"`
	NoDataFound       int                       `json:"noDataFound"`
	PastValidTill     int                       `json:"pastValidTill"`
	CompletedOnCreate int                       `json:"completedOnCreate"`
	ScopeErrors       int                       `json:"scopeErrors"`
	ForeignLinks      int                       `json:"foreignLinks"`
}

func newStats() *stats {
	return &stats{Requests: map[string]int{}, Status: map[string]map[string]int{}, ClientTypes: map[string]int{}}
}

func (st *stats) add(f func(*stats)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(st)
}

func (st *stats) request(kind string) { st.add(func(st *stats) { st.Requests[kind]++ }) }

func (st *stats) status(kind string, code int) {
	st.add(func(st *stats) {
		m := st.Status[kind]
		if m == nil {
			m = map[string]int{}
			st.Status[kind] = m
		}
		key := fmt.Sprint(code)
		if code == 0 {
			key = "reset"
		}
		m[key]++
	})
}

// snapshot copies the counters for JSON.
func (st *stats) snapshot() *stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := &stats{
		Requests: map[string]int{}, Status: map[string]map[string]int{}, ClientTypes: map[string]int{},
		Throttled: st.Throttled, ServerErrors: st.ServerErrors, Resets: st.Resets, Timeouts: st.Timeouts, QuotaRejected: st.QuotaRejected,
		MissingClientType: st.MissingClientType, Operations: st.Operations, FailedReports: st.FailedReports,
		ExpiredLinks: st.ExpiredLinks, NoContent: st.NoContent, NoDataFound: st.NoDataFound,
		PastValidTill: st.PastValidTill, CompletedOnCreate: st.CompletedOnCreate, ScopeErrors: st.ScopeErrors, ForeignLinks: st.ForeignLinks,
	}
	for k, v := range st.Requests {
		c.Requests[k] = v
	}
	for k, v := range st.ClientTypes {
		c.ClientTypes[k] = v
	}
	for k, m := range st.Status {
		cm := map[string]int{}
		for code, n := range m {
			cm[code] = n
		}
		c.Status[k] = cm
	}
	return c
}

// reset zeroes the counters.
func (st *stats) reset() {
	st.add(func(st *stats) {
		st.Requests, st.Status, st.ClientTypes = map[string]int{}, map[string]map[string]int{}, map[string]int{}
		st.Throttled, st.ServerErrors, st.Resets, st.Timeouts, st.QuotaRejected, st.MissingClientType = 0, 0, 0, 0, 0, 0
		st.Operations, st.FailedReports, st.ExpiredLinks, st.NoContent, st.NoDataFound = 0, 0, 0, 0, 0
		st.PastValidTill, st.CompletedOnCreate, st.ScopeErrors, st.ForeignLinks = 0, 0, 0, 0
	})
}
