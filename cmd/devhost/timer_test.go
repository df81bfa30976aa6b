package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock; sleeping advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type timerPayload struct {
	Schedule struct {
		AdjustForDST bool `json:"AdjustForDST"`
	} `json:"Schedule"`
	ScheduleStatus struct {
		Last, Next, LastUpdated string
	} `json:"ScheduleStatus"`
	IsPastDue bool `json:"IsPastDue"`
}

func TestTimerSchedule(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 22, 10, 3, 0, 0, time.UTC)}
	var mu sync.Mutex
	calls := 0
	a := testApp(t, `{}`, map[string]string{"PlanWindows": `{"bindings":[{"name":"myTimer","type":"timerTrigger","direction":"in","schedule":"%PLAN_SCHEDULE%"}]}`},
		"PLAN_SCHEDULE=0 */5 * * * *")
	th := newTestHost(t, a, func(c captured, w http.ResponseWriter) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 2 {
			clock.advance(7 * time.Minute) // this run overruns the next occurrence
		}
		okEmpty(c, w)
	})
	tl := newTimerListener(th.host, a.function("PlanWindows"))
	tl.now = clock.Now
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tl.sleep = func(ctx context.Context, d time.Duration) bool {
		mu.Lock()
		done := calls >= 4
		mu.Unlock()
		if done || ctx.Err() != nil {
			return false
		}
		clock.advance(d)
		return true
	}
	tl.run(ctx, t.Context())

	var got []string
	for _, c := range th.handler.requests() {
		var p timerPayload
		if err := json.Unmarshal(c.payload["Data"]["myTimer"], &p); err != nil {
			t.Fatal(err)
		}
		if !p.Schedule.AdjustForDST || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00$`).MatchString(p.ScheduleStatus.LastUpdated) {
			t.Errorf("payload %s", c.payload["Data"]["myTimer"])
		}
		if _, ok := c.payload["Metadata"]["sys"]; !ok || len(c.payload["Metadata"]) != 1 {
			t.Errorf("Metadata = %s, want only sys", c.body)
		}
		got = append(got, fmt.Sprintf("%s→%s past=%v", p.ScheduleStatus.Last, p.ScheduleStatus.Next, p.IsPastDue))
	}
	want := []string{
		"0001-01-01T00:00:00→2026-11-22T10:05:00+00:00 past=false",
		"2026-11-22T10:05:00+00:00→2026-11-22T10:10:00+00:00 past=false",
		"2026-11-22T10:10:00+00:00→2026-11-22T10:15:00+00:00 past=true", // fired at 10:17
		"2026-11-22T10:15:00+00:00→2026-11-22T10:20:00+00:00 past=false",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("runs:\n got %q\nwant %q", got, want)
	}
}

func TestTimerRunOnStartup(t *testing.T) {
	clock := &fakeClock{now: time.Date(2024, 11, 30, 14, 43, 50, 0, time.UTC)}
	a := testApp(t, `{}`, map[string]string{"uk-generation-mix": `{"bindings":[{"name":"myTimer","type":"timerTrigger","direction":"in","schedule":"0 */5 * * * *","runOnStartup":true}]}`})
	th := newTestHost(t, a, okEmpty)
	tl := newTimerListener(th.host, a.function("uk-generation-mix"))
	tl.now = clock.Now
	tl.sleep = func(context.Context, time.Duration) bool { return false }
	tl.run(t.Context(), t.Context())
	reqs := th.handler.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d runs, want the startup run", len(reqs))
	}
	// The shape of the captured first run (functions-host.md §1.4).
	c := reqs[0]
	sys := sysOf(t, c)
	if sys.MethodName != "uk-generation-mix" {
		t.Errorf("MethodName = %q", sys.MethodName)
	}
	var p timerPayload
	_ = json.Unmarshal(c.payload["Data"]["myTimer"], &p)
	want := regexp.MustCompile(`^\{"IsPastDue":false,"Schedule":\{"AdjustForDST":true\},"ScheduleStatus":\{"Last":"0001-01-01T00:00:00","LastUpdated":"[^"]+","Next":"2024-11-30T14:45:00\+00:00"\}\}$`)
	if !want.Match(c.payload["Data"]["myTimer"]) {
		t.Errorf("myTimer = %s", c.payload["Data"]["myTimer"])
	}
}
