package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// faultSettings are the injected failures (POST /_sim/faults, -faults).
// Rates are probabilities per ARM or download request, drawn from an RNG
// seeded with -seed; at most one fault applies to a request.
type faultSettings struct {
	ThrottleRate    float64 `json:"throttleRate"`
	ServerErrorRate float64 `json:"serverErrorRate"`
	ResetRate       float64 `json:"resetRate"`
	FailReportOnce  bool    `json:"failReportOnce"`
	ExpireLinksOnce bool    `json:"expireLinksOnce"`
	NoDataAs        string  `json:"noDataAs"` // "NoDataFound" (default) or "204"
}

func decodeFaults(b []byte) (faultSettings, error) {
	var f faultSettings
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return faultSettings{}, fmt.Errorf("decode fault settings: %w", err)
	}
	if dec.More() {
		return faultSettings{}, errors.New("decode fault settings: trailing data")
	}
	if err := f.validate(); err != nil {
		return faultSettings{}, err
	}
	return f, nil
}

func (f *faultSettings) validate() error {
	var errs []error
	for name, v := range map[string]float64{"throttleRate": f.ThrottleRate, "serverErrorRate": f.ServerErrorRate, "resetRate": f.ResetRate} {
		if v < 0 || v > 1 {
			errs = append(errs, fmt.Errorf("%s %v is not in [0, 1]", name, v))
		}
	}
	if f.ThrottleRate+f.ServerErrorRate+f.ResetRate > 1 {
		errs = append(errs, errors.New("throttleRate + serverErrorRate + resetRate must not exceed 1"))
	}
	switch f.NoDataAs {
	case "":
		f.NoDataAs = "NoDataFound"
	case "NoDataFound", "204":
	default:
		errs = append(errs, fmt.Errorf(`noDataAs %q must be "204" or "NoDataFound"`, f.NoDataAs))
	}
	return errors.Join(errs...)
}

// faultState holds the settings, the RNG and the once-only bookkeeping.
type faultState struct {
	mu       sync.Mutex
	seed     uint64
	s        faultSettings
	rng      *mrand.Rand
	failed   map[string]bool // report keys that already failed once
	expired  map[string]bool // blob keys that already expired once
	sequence uint64
}

func newFaultState(seed uint64, s faultSettings) *faultState {
	s.validate()
	f := &faultState{seed: seed}
	f.replace(s)
	return f
}

// replace installs new settings, re-seeds the RNG and forgets which reports
// and links already failed, so each test starts from the same state.
func (f *faultState) replace(s faultSettings) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sequence++
	f.s = s
	f.rng = rngFor(f.seed, "faults", strconv.FormatUint(f.sequence, 10))
	f.failed, f.expired = map[string]bool{}, map[string]bool{}
}

func (f *faultState) settings() faultSettings {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s
}

// draw picks the fault for one request: "", "reset", "throttle" or "error".
func (f *faultState) draw() (string, *mrand.Rand) {
	f.mu.Lock()
	defer f.mu.Unlock()
	total := f.s.ResetRate + f.s.ThrottleRate + f.s.ServerErrorRate
	if total == 0 {
		return "", nil
	}
	u := f.rng.Float64()
	switch {
	case u < f.s.ResetRate:
		return "reset", f.rng
	case u < f.s.ResetRate+f.s.ThrottleRate:
		return "throttle", f.rng
	case u < total:
		return "error", f.rng
	}
	return "", nil
}

// intn draws from the fault RNG under the lock.
func (f *faultState) intn(n int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.IntN(n)
}

// failOnce reports whether the report with this key fails now (the first
// time it completes while failReportOnce is on).
func (f *faultState) failOnce(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.s.FailReportOnce || f.failed[key] {
		return false
	}
	f.failed[key] = true
	return true
}

// expireOnce reports whether this blob's download is answered as expired
// (the first download while expireLinksOnce is on).
func (f *faultState) expireOnce(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.s.ExpireLinksOnce || f.expired[key] {
		return false
	}
	f.expired[key] = true
	return true
}

// injectFault applies a drawn fault to an ARM or download request. It
// returns true when the request was answered (or its connection reset).
func (s *sim) injectFault(rec *recorder, kind string) bool {
	fault, _ := s.faults.draw()
	switch fault {
	case "reset":
		s.stats.add(func(st *stats) { st.Resets++ })
		rec.markReset()
		resetConnection(rec)
		return true
	case "throttle":
		s.stats.add(func(st *stats) { st.Throttled++ })
		if kind == kindDownload {
			// Azure Storage answers overload with 503 ServerBusy.
			rec.Header().Set("Retry-After", strconv.Itoa(s.cfg.retryAfter))
			s.writeStorageError(rec, &http.Request{Method: http.MethodGet}, http.StatusServiceUnavailable, "ServerBusy",
				"The server is busy.", "")
			return true
		}
		s.throttle(rec, s.cfg.retryAfter, "Too many requests. Please retry.")
		return true
	case "error":
		s.stats.add(func(st *stats) { st.ServerErrors++ })
		if kind == kindDownload {
			s.writeStorageError(rec, &http.Request{Method: http.MethodGet}, http.StatusInternalServerError, "InternalError",
				"Server encountered an internal error. Please try again after some time.", "")
			return true
		}
		if s.faults.intn(2) == 0 {
			writeARMError(rec, http.StatusInternalServerError, "InternalServerError", "Encountered internal server error. Please try again.")
			return true
		}
		rec.Header().Set("Retry-After", strconv.Itoa(s.cfg.retryAfter))
		writeARMError(rec, http.StatusServiceUnavailable, "ServiceUnavailable", "Service is temporarily unavailable. Retry after waiting for the time specified in the Retry-After header.")
		return true
	}
	return false
}

// throttle answers 429 with Retry-After and Cost Management's rate-limit
// headers. The headers carry different values; the largest is the wait that
// matters, and it is not always in the same header, nor in Retry-After.
func (s *sim) throttle(w http.ResponseWriter, base int, message string) {
	base = max(base, 1)
	h := w.Header()
	names := []string{
		"x-ms-ratelimit-microsoft.costmanagement-entity-retry-after",
		"x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after",
		"x-ms-ratelimit-microsoft.costmanagement-clienttype-retry-after",
	}
	if s.faults.intn(3) == 0 {
		names = append(names, "x-ms-ratelimit-microsoft.consumption-retry-after")
	}
	// Values base+1 .. base+len(names), shuffled over the headers;
	// Retry-After says base, less than the largest.
	perm := make([]int, len(names))
	for i := range perm {
		perm[i] = i
	}
	for i := len(perm) - 1; i > 0; i-- {
		j := s.faults.intn(i + 1)
		perm[i], perm[j] = perm[j], perm[i]
	}
	for i, n := range names {
		h.Set(n, strconv.Itoa(base+1+perm[i]))
	}
	h.Set("Retry-After", strconv.Itoa(base))
	h.Set("x-ms-ratelimit-remaining-microsoft.costmanagement-entity-requests", "0")
	writeARMError(w, http.StatusTooManyRequests, "429", message)
}

// resetConnection drops the connection without an answer: a TCP reset on
// HTTP/1.1, a stream reset on HTTP/2.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	raw.Close()
}
