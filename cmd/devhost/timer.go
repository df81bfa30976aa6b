package main

import (
	"context"
	"sync"
	"time"

	"github.com/costsync/costsync/shared/invocation"
)

// pastDueTolerance is how late an occurrence may fire and still not be
// reported as past due.
const pastDueTolerance = time.Second

// timerListener fires one timer function on its NCRONTAB schedule.
type timerListener struct {
	h     *host
	fn    *function
	sched *cronSchedule
	now   func() time.Time
	// sleep waits for d or until ctx ends; false when ctx ended.
	sleep func(ctx context.Context, d time.Duration) bool

	mu   sync.Mutex
	last time.Time // the previous occurrence run, zero before the first
	next time.Time // the occurrence to run next
}

func newTimerListener(h *host, fn *function) *timerListener {
	sched, _ := parseCron(fn.trigger.Schedule) // validated at load
	return &timerListener{h: h, fn: fn, sched: sched, now: time.Now, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// run fires the timer until pollCtx ends. Runs never overlap: when one
// lasts past the next occurrence, that occurrence fires once, late, as past
// due, and the ones after it that were missed are skipped.
func (t *timerListener) run(pollCtx, workCtx context.Context) {
	start := t.now().UTC()
	t.mu.Lock()
	t.next = t.sched.next(start)
	t.mu.Unlock()
	if t.fn.trigger.RunOnStartup {
		t.fire(workCtx, false)
		t.mu.Lock()
		t.last = start
		t.next = t.sched.next(t.now())
		t.mu.Unlock()
	}
	for {
		t.mu.Lock()
		occ := t.next
		t.mu.Unlock()
		// Wake at least every minute so that wall-clock jumps (suspend) are seen.
		for {
			wait := occ.Sub(t.now())
			if wait <= 0 {
				break
			}
			if !t.sleep(pollCtx, min(wait, time.Minute)) {
				return
			}
		}
		if pollCtx.Err() != nil {
			return
		}
		late := t.now().Sub(occ) > pastDueTolerance
		t.fire(workCtx, late)
		t.mu.Lock()
		t.last = occ
		if late {
			t.next = t.sched.next(t.now())
		} else {
			t.next = t.sched.next(occ)
		}
		t.mu.Unlock()
	}
}

// fire runs the function once with the current schedule status.
func (t *timerListener) fire(ctx context.Context, pastDue bool) {
	t.mu.Lock()
	last, next := t.last, t.next
	t.mu.Unlock()
	_, _ = t.h.invoke(ctx, t.fn, []any{"schedule", t.sched.text, "past_due", pastDue}, func(sys invocation.Sys) *invocation.Request {
		return invocation.NewTimerRequest(t.fn.trigger.Name, last, next, pastDue, sys)
	})
}
