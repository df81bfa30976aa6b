package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// faultSettings are the injected failures (POST /_sim/faults, -faults).
// Rates are probabilities per ARM or download request, drawn from an RNG
// seeded with -seed; at most one fault applies to a request.
type faultSettings struct {
	ThrottleRate    float64 `json:"throttleRate"`
	ServerErrorRate float64 `json:"serverErrorRate"`
	ResetRate       float64 `json:"resetRate"`
	// TimeoutRate is the share of requests that hang for HangSeconds (or
	// until the client gives up): ARM then answers 504 GatewayTimeout; a
	// download sends its headers and half its body, stalls, and resets.
	TimeoutRate float64 `json:"timeoutRate"`
	HangSeconds float64 `json:"hangSeconds"` // default 30
	// FailReportOnce: the first report of each window ends Failed.
	FailReportOnce bool `json:"failReportOnce"`
	// ExpireLinksOnce: the first download of each blob of a window is
	// refused as expired although validTill is ahead.
	ExpireLinksOnce bool `json:"expireLinksOnce"`
	// PastValidTillOnce: the first report of each window is served with a
	// validTill (and SAS expiry) that has already passed, as when a result
	// is read long after it completed.
	PastValidTillOnce bool `json:"pastValidTillOnce"`
	// CompleteOnCreate: create answers 200 with the finished result (the
	// spec's immediate 200) instead of 202.
	CompleteOnCreate bool   `json:"completeOnCreate"`
	NoDataAs         string `json:"noDataAs"` // "NoDataFound" (default) or "204"
	// ScopeErrors answers every create at a scope with 401 (a token of the
	// wrong tenant), 403 (no role) or 422 (an unsupported offer).
	ScopeErrors map[string]int `json:"scopeErrors,omitempty"`
	// LinkHost, when set, is the host[:port] put in Location headers and
	// blobLinks instead of the request's host: links a client must refuse.
	LinkHost string `json:"linkHost,omitempty"`
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
	for name, v := range map[string]float64{"throttleRate": f.ThrottleRate, "serverErrorRate": f.ServerErrorRate, "resetRate": f.ResetRate, "timeoutRate": f.TimeoutRate} {
		if v < 0 || v > 1 {
			errs = append(errs, fmt.Errorf("%s %v is not in [0, 1]", name, v))
		}
	}
	if f.ThrottleRate+f.ServerErrorRate+f.ResetRate+f.TimeoutRate > 1 {
		errs = append(errs, errors.New("throttleRate + serverErrorRate + resetRate + timeoutRate must not exceed 1"))
	}
	switch {
	case f.HangSeconds < 0:
		errs = append(errs, fmt.Errorf("hangSeconds %v is negative", f.HangSeconds))
	case f.HangSeconds == 0:
		f.HangSeconds = 30
	}
	switch f.NoDataAs {
	case "":
		f.NoDataAs = "NoDataFound"
	case "NoDataFound", "204":
	default:
		errs = append(errs, fmt.Errorf(`noDataAs %q must be "204" or "NoDataFound"`, f.NoDataAs))
	}
	if len(f.ScopeErrors) > 0 {
		norm := map[string]int{}
		for sc, status := range f.ScopeErrors {
			p, err := parseScope(sc)
			if err != nil {
				errs = append(errs, fmt.Errorf("scopeErrors: %v", err))
				continue
			}
			if status != http.StatusUnauthorized && status != http.StatusForbidden && status != http.StatusUnprocessableEntity {
				errs = append(errs, fmt.Errorf("scopeErrors: status %d for %s must be 401, 403 or 422", status, sc))
			}
			norm[p.key] = status
		}
		f.ScopeErrors = norm
	}
	if f.LinkHost != "" && (strings.ContainsAny(f.LinkHost, "/?#@ ") || strings.TrimSpace(f.LinkHost) == "") {
		errs = append(errs, fmt.Errorf("linkHost %q is not a host[:port]", f.LinkHost))
	}
	return errors.Join(errs...)
}

// faultState holds the settings, the RNG and the once-only bookkeeping.
type faultState struct {
	mu       sync.Mutex
	seed     uint64
	s        faultSettings
	rng      *mrand.Rand
	once     map[string]bool   // "fault|key" of once-only faults that happened
	expired  map[string]string // "expire|key" → the operation whose links expired
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
	f.once, f.expired = map[string]bool{}, map[string]string{}
}

func (f *faultState) settings() faultSettings {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s
}

// draw picks the fault for one request: "", "reset", "throttle", "error" or
// "timeout".
func (f *faultState) draw() (string, *mrand.Rand) {
	f.mu.Lock()
	defer f.mu.Unlock()
	total := f.s.ResetRate + f.s.ThrottleRate + f.s.ServerErrorRate + f.s.TimeoutRate
	if total == 0 {
		return "", nil
	}
	u := f.rng.Float64()
	switch {
	case u < f.s.ResetRate:
		return "reset", f.rng
	case u < f.s.ResetRate+f.s.ThrottleRate:
		return "throttle", f.rng
	case u < f.s.ResetRate+f.s.ThrottleRate+f.s.ServerErrorRate:
		return "error", f.rng
	case u < total:
		return "timeout", f.rng
	}
	return "", nil
}

// intn draws from the fault RNG under the lock.
func (f *faultState) intn(n int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.IntN(n)
}

// onceFor reports whether the once-only fault named by on (a setting) hits
// key now: the first time per key while the setting is on.
func (f *faultState) onceFor(on func(faultSettings) bool, fault, key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fault + "|" + key
	if !on(f.s) || f.once[k] {
		return false
	}
	f.once[k] = true
	return true
}

// failOnce reports whether the report with this key fails now (the first
// time it completes while failReportOnce is on).
func (f *faultState) failOnce(key string) bool {
	return f.onceFor(func(s faultSettings) bool { return s.FailReportOnce }, "fail", key)
}

// expireOnce reports whether a download of report opID is answered as
// expired: every link of the first report of each window (key) that is
// downloaded while expireLinksOnce is on; a report requested again works.
func (f *faultState) expireOnce(key, opID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.s.ExpireLinksOnce {
		return false
	}
	k := "expire|" + key
	if f.expired[k] == "" {
		f.expired[k] = opID
	}
	return f.expired[k] == opID
}

// pastValidTillOnce reports whether the report with this key is served with
// a validTill that has passed (the first time it completes).
func (f *faultState) pastValidTillOnce(key string) bool {
	return f.onceFor(func(s faultSettings) bool { return s.PastValidTillOnce }, "validtill", key)
}

// injectFault applies a drawn fault to an ARM or download request. It
// returns true when the request was answered (or its connection reset).
func (s *sim) injectFault(rec *recorder, r *http.Request, kind string) bool {
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
		if t := sourceThrottle(kind); t != nil {
			t(s, rec)
			return true
		}
		s.throttle(rec, s.cfg.retryAfter, `Request is throttled. Retry after waiting for the time specified in the "retry-after" header.`)
		return true
	case "timeout":
		s.stats.add(func(st *stats) { st.Timeouts++ })
		s.hang(rec, r, kind)
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

// hang answers as a service that takes too long: it waits HangSeconds, or
// until the client gives up. ARM then answers 504 GatewayTimeout; a download
// sends its headers and half its body first, and is reset after the wait.
func (s *sim) hang(rec *recorder, r *http.Request, kind string) {
	wait := time.Duration(s.faults.settings().HangSeconds * float64(time.Second))
	// With the body read, the server notices when the client hangs up.
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	if kind == kindDownload {
		s.serveStalled(rec, r, wait)
		return
	}
	select {
	case <-time.After(wait):
	case <-r.Context().Done():
		rec.markReset()
		return
	}
	writeARMError(rec, http.StatusGatewayTimeout, "GatewayTimeout",
		"The gateway did not receive a response from 'Microsoft.CostManagement' within the specified time period.")
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
