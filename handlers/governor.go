package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
)

// The rate governor paces Cost Details report requests within the quotas
// of reference/cost-apis.md §1.7, whatever the number of function
// instances: its state is in the ledger (store.Acquire). Each request
// counts against its scope (2/min, 10/h, 50/day), against the tenant for
// subscription scopes (10/min) or against its billing account for the
// other scopes (5/min), and against the client application (30/min). The
// limits are settings (COSTSYNC_RATE_*), so that local runs can scale time
// down. A window that has to wait is re-enqueued with the delay: never a
// sleep, never dropped. Polls are not governed here: they follow the
// service's Retry-After.

// buckets are the quotas a report request for sc counts against.
func (s *Server) buckets(sc costapi.Scope) []store.Bucket { return Buckets(s.d.Config.Rates, sc) }

// Buckets are the rate governor's quotas that a Cost Details report request
// for sc counts against, under the limits r: its scope; the tenant for a
// subscription or its billing account for another scope; the client
// application. Anything that requests reports outside the functions (the
// command line) asks the governor with the same buckets.
func Buckets(r config.RateLimits, sc costapi.Scope) []store.Bucket {
	out := []store.Bucket{{Key: "scope|" + sc.Key(), Limits: r.Scope}}
	if sc.Kind == costapi.Subscription {
		out = append(out, store.Bucket{Key: "tenant", Limits: r.Tenant})
	} else {
		// Departments and enrollment accounts given without their billing
		// account share one bucket: the conservative choice.
		account := sc.BillingAccount()
		if account == "" {
			account = "unknown"
		}
		out = append(out, store.Bucket{Key: "billing-account|" + account, Limits: r.BillingAccount})
	}
	return append(out, store.Bucket{Key: "client", Limits: r.Client})
}

// govern asks the governor whether the report request of m may be made
// now. When it may not, it re-enqueues m with the delay the governor gives
// and returns true: the invocation is done. m keeps its ticket in the
// queue, so that it comes back to its booking.
func (s *Server) govern(ctx context.Context, c *call, sc costapi.Scope, m *windowMessage) (bool, error) {
	if m.Ticket == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		m.Ticket = hex.EncodeToString(b)
	}
	now := s.d.Now().UTC()
	g, err := s.d.Store.Acquire(ctx, s.buckets(sc), m.Ticket, now, &store.AcquireOptions{Slack: s.d.Config.Rates.Slack})
	var delay time.Duration
	switch {
	case errors.Is(err, store.ErrContended):
		// Many instances at once: try again in a moment, from the queue.
		delay = time.Second + time.Duration(mrand.Int64N(int64(4*time.Second)))
	case err != nil:
		return false, retryable(fmt.Errorf("rate governor: %w", err))
	case g.Go:
		return false, nil
	default:
		// Queue delays are whole seconds: round up, never wake early.
		delay = (g.At.Sub(now) + time.Second - 1).Truncate(time.Second)
	}
	if err := s.send(ctx, queue.Windows, m, delay); err != nil {
		return false, retryable(err)
	}
	s.tel().GovernorWait(ctx, sc.Path, delay)
	c.requeue(delay, "waiting for the Cost Details quota")
	return true, nil
}
