package inproc

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"
)

// SimClock is a simulated clock: it moves only when the host has nothing
// to run before the next message becomes visible. OnSet, when set, is
// called before the clock moves (to move another component's clock too,
// such as costsim's).
type SimClock struct {
	mu    sync.Mutex
	t     time.Time
	OnSet func(ctx context.Context, t time.Time) error
}

// NewSimClock returns a clock at start.
func NewSimClock(start time.Time) *SimClock { return &SimClock{t: start.UTC()} }

// Now is the simulated time.
func (c *SimClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock forward to t (never back).
func (c *SimClock) Set(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.After(c.t) {
		return nil
	}
	if c.OnSet != nil {
		if err := c.OnSet(ctx, t); err != nil {
			return fmt.Errorf("move the clock to %s: %w", t.Format(time.RFC3339), err)
		}
	}
	c.t = t.UTC()
	return nil
}

// newGUID is a random UUID (version 4).
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
