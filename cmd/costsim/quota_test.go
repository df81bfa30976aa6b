package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const day1 = `{"timePeriod":{"start":"2026-11-01","end":"2026-11-01"}}`

func sub(i int) string { return fmt.Sprintf("subscriptions/00000000-0000-0000-0000-%012d", i) }

func ea(i int) string { return fmt.Sprintf("providers/Microsoft.Billing/billingAccounts/%d", 1000+i) }

// throttled checks a 429 names the limit in the header the service uses.
func throttled(t *testing.T, what string, resp *http.Response, body []byte, header string) {
	t.Helper()
	if resp.StatusCode != 429 {
		t.Fatalf("%s: %d %s, want 429", what, resp.StatusCode, body)
	}
	if resp.Header.Get(header) == "" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s: headers %v, want Retry-After and %s", what, resp.Header, header)
	}
}

func TestQuotaPerScopeHourAndDay(t *testing.T) {
	e := newEnv(t, func(c *config) { c.enforceQuota = true })
	for i := range 10 {
		if resp, b := e.create(subScope, day1); resp.StatusCode != 202 {
			t.Fatalf("create %d, 31 s apart: %d %s", i, resp.StatusCode, b)
		}
		e.clock.advance(31 * time.Second)
	}
	resp, b := e.create(subScope, day1)
	throttled(t, "the 11th create within an hour", resp, b, headerEntity)
	if !strings.Contains(string(b), "10 calls per hour") {
		t.Errorf("message %s does not name the hourly limit", b)
	}
	// The wait it asks for is enough: the first call leaves the hour.
	wait := resp.Header.Get(headerEntity)
	var secs int
	fmt.Sscan(wait, &secs)
	e.clock.advance(time.Duration(secs) * time.Second)
	if resp, b := e.create(subScope, day1); resp.StatusCode != 202 {
		t.Errorf("after the %s s it asked for: %d %s", wait, resp.StatusCode, b)
	}
	// 50 a day: keep going at 10 an hour.
	n := 11
	for n < 50 {
		e.clock.advance(6*time.Minute + time.Second)
		if resp, b := e.create(subScope, day1); resp.StatusCode != 202 {
			t.Fatalf("create %d: %d %s", n, resp.StatusCode, b)
		}
		n++
	}
	e.clock.advance(6*time.Minute + time.Second)
	resp, b = e.create(subScope, day1)
	throttled(t, "the 51st create within a day", resp, b, headerEntity)
}

func TestQuotaSharedBuckets(t *testing.T) {
	e := newEnv(t, func(c *config) { c.enforceQuota = true })
	// Ten subscriptions of the tenant at once, then the tenant's limit.
	for i := range 10 {
		if resp, b := e.create(sub(i), day1); resp.StatusCode != 202 {
			t.Fatalf("subscription %d: %d %s", i, resp.StatusCode, b)
		}
	}
	resp, b := e.create(sub(10), day1)
	throttled(t, "an 11th subscription in a minute", resp, b, headerTenant)
	// Five scopes of one billing account (the account and its
	// departments), then the account's limit.
	for i := range 5 {
		scope := ea(0)
		if i > 0 {
			scope = fmt.Sprintf("%s/departments/%d", ea(0), i)
		}
		if resp, b := e.create(scope, day1); resp.StatusCode != 202 {
			t.Fatalf("billing account scope %d: %d %s", i, resp.StatusCode, b)
		}
	}
	resp, b = e.create(ea(0)+"/departments/77", day1)
	throttled(t, "a 6th scope of one billing account in a minute", resp, b, headerEntity)
	// Other billing accounts up to the client's 30 a minute (15 so far).
	for i := 1; i <= 3; i++ {
		for j := range 5 {
			scope := fmt.Sprintf("%s/departments/%d", ea(i), j+1)
			if resp, b := e.create(scope, day1); resp.StatusCode != 202 {
				t.Fatalf("account %d scope %d: %d %s", i, j, resp.StatusCode, b)
			}
		}
	}
	resp, b = e.create(ea(9), day1)
	throttled(t, "a 31st create in a minute", resp, b, headerClientType)
	if st := e.stats(); st.QuotaRejected != 3 {
		t.Errorf("quotaRejected = %d, want 3", st.QuotaRejected)
	}
	e.clock.advance(time.Minute)
	if resp, b := e.create(sub(10), day1); resp.StatusCode != 202 {
		t.Errorf("a minute later: %d %s", resp.StatusCode, b)
	}
}

func TestQuotaPollsAndScale(t *testing.T) {
	e := newEnv(t, func(c *config) { c.enforceQuota, c.quotaScale, c.polls = true, 60, 5 })
	resp, _ := e.create(subScope, day1)
	loc := resp.Header.Get("Location")
	h := e.armHeaders()
	// A minute lasts a second: two polls a second per operation.
	a, _ := e.do("GET", loc, "", h)
	b, _ := e.do("GET", loc, "", h)
	c, body := e.do("GET", loc, "", h)
	if a.StatusCode != 202 || b.StatusCode != 202 {
		t.Fatalf("polls: %d %d", a.StatusCode, b.StatusCode)
	}
	throttled(t, "a third poll of one operation within a scaled minute", c, body, headerEntity)
	e.clock.advance(time.Second)
	if d, _ := e.do("GET", loc, "", h); d.StatusCode != 202 {
		t.Errorf("a scaled minute later: %d", d.StatusCode)
	}
	e.create(subScope, day1)
	e.create(subScope, day1)
	r3, b3 := e.create(subScope, day1)
	throttled(t, "a third create within a scaled minute", r3, b3, headerEntity)
	e.clock.advance(1001 * time.Millisecond)
	if r, b := e.create(subScope, day1); r.StatusCode != 202 {
		t.Errorf("a scaled minute later: %d %s", r.StatusCode, b)
	}
}

func TestSimulatedClock(t *testing.T) {
	start := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	e := newEnv(t, func(c *config) { c.clock = start; c.today = time.Time{} })
	e.sim.now = e.sim.clock.now // newEnv installs its own clock; use -clock's
	resp, b := e.do("GET", "/_sim/clock", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "2026-06-15T00:00:00Z") {
		t.Fatalf("GET clock: %d %s", resp.StatusCode, b)
	}
	if resp, b := e.do("POST", "/_sim/clock", `{"now":"2026-06-15T01:00:00Z"}`, nil); resp.StatusCode != 200 || !strings.Contains(string(b), "01:00:00") {
		t.Errorf("POST clock: %d %s", resp.StatusCode, b)
	}
	if resp, b := e.do("POST", "/_sim/clock", `{"now":"2026-06-14T01:00:00Z"}`, nil); resp.StatusCode != 400 || !strings.Contains(string(b), "never goes back") {
		t.Errorf("clock back: %d %s", resp.StatusCode, b)
	}
	if e.sim.today().Format(time.DateOnly) != "2026-06-15" {
		t.Errorf("today = %s", e.sim.today())
	}
	real := newEnv(t, nil)
	if resp, _ := real.do("GET", "/_sim/clock", "", nil); resp.StatusCode != 409 {
		t.Errorf("clock of a real-time costsim: %d, want 409", resp.StatusCode)
	}
}
