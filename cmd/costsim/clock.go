package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// simClock is the simulated clock of -clock: tests that simulate hours of
// quota in seconds move it with POST /_sim/clock {"now": RFC 3339}. It
// never goes back.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// set moves the clock to t, or reports why it cannot.
func (c *simClock) set(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Before(c.t) {
		return fmt.Errorf("the clock is at %s and never goes back (asked %s)", c.t.Format(time.RFC3339Nano), t.Format(time.RFC3339Nano))
	}
	c.t = t
	return nil
}

type clockBody struct {
	Now time.Time `json:"now"`
}

// serveClock is GET and POST /_sim/clock.
func (s *sim) serveClock(w http.ResponseWriter, r *http.Request) {
	if s.clock == nil {
		simError(w, http.StatusConflict, "costsim runs on the real clock; start it with -clock to simulate time")
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, clockBody{Now: s.clock.now()})
	case http.MethodPost:
		var b clockBody
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<10))
		if err := json.Unmarshal(body, &b); err != nil || b.Now.IsZero() {
			simError(w, http.StatusBadRequest, `body must be {"now": "RFC 3339 time"}`)
			return
		}
		if err := s.clock.set(b.Now); err != nil {
			simError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, clockBody{Now: s.clock.now()})
	default:
		simError(w, http.StatusMethodNotAllowed, "use GET or POST")
	}
}
