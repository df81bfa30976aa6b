package main

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// quota enforces, with -enforce-quota, the documented Cost Details rate
// limits (reference/cost-apis.md §1.7), each period divided by
// -quota-scale so that local runs can scale time down:
//
//	report requests (creates), per distinct scope       2/min, 10/h, 50/day
//	creates at subscription scopes, per tenant          10/min
//	creates at other scopes, per billing account        5/min
//	creates, per client application                     30/min
//	polls, per operation id                             2/min
//
// The table's "per client application ID … across all calls" is read as
// report requests, like the per-scope limits; polls have their own limit
// per operation. Subscriptions are all in costsim's one tenant; their
// billing account's 10/min is not simulated (the tenant's is the same). A
// call over any limit is answered 429 with Retry-After and the
// x-ms-ratelimit-microsoft.costmanagement-{entity,tenant,clienttype}-retry-after
// header of the limit that refused it, and is not counted. A call answered
// with an injected fault does not reach the quota.
type quota struct {
	mu    sync.Mutex
	calls map[string][]time.Time // bucket → accepted calls, oldest first
}

func newQuota() *quota { return &quota{calls: map[string][]time.Time{}} }

// quotaLimit is one documented limit of a bucket.
type quotaLimit struct {
	calls int
	per   time.Duration
}

// quotaBucket is one counted quota: its key, limits and the header that
// names it in a 429.
type quotaBucket struct {
	key    string
	limits []quotaLimit
	header string
}

const (
	headerEntity     = "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after"
	headerTenant     = "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after"
	headerClientType = "x-ms-ratelimit-microsoft.costmanagement-clienttype-retry-after"
)

// buckets are the quotas a call with key ("scope|{scope}" for a create,
// "operation|{id}" for a poll) counts against.
func (s *sim) buckets(key string) []quotaBucket {
	kind, rest, _ := strings.Cut(key, "|")
	minute := quotaLimit{2, time.Minute}
	if kind == "operation" {
		return []quotaBucket{{key: key, limits: []quotaLimit{minute}, header: headerEntity}}
	}
	out := []quotaBucket{{key: key, limits: []quotaLimit{minute, {10, time.Hour}, {50, 24 * time.Hour}}, header: headerEntity}}
	sc, err := parseScope(rest)
	switch {
	case err != nil:
	case sc.kind == scopeSubscription:
		out = append(out, quotaBucket{key: "tenant|" + s.cfg.tenant, limits: []quotaLimit{{10, time.Minute}}, header: headerTenant})
	default:
		account := sc.billingAccount
		if account == "" {
			// A department or enrollment account given without its
			// billing account counts on its own.
			account = sc.key
		}
		out = append(out, quotaBucket{key: "billing|" + account, limits: []quotaLimit{{5, time.Minute}}, header: headerEntity})
	}
	return append(out, quotaBucket{key: "client", limits: []quotaLimit{{30, time.Minute}}, header: headerClientType})
}

// enforce answers 429 and returns true when a call with key is over a
// limit; otherwise it counts the call.
func (q *quota) enforce(s *sim, w http.ResponseWriter, key string) bool {
	if !s.cfg.enforceQuota {
		return false
	}
	scale := max(s.cfg.quotaScale, 1)
	now := s.now()
	buckets := s.buckets(key)
	q.mu.Lock()
	var (
		wait   time.Duration
		header string
		what   string
	)
	for _, b := range buckets {
		for _, l := range b.limits {
			per := l.per / time.Duration(scale)
			n := 0
			for _, t := range q.calls[b.key] {
				if now.Sub(t) < per {
					n++
				}
			}
			if n < l.calls {
				continue
			}
			// The call fits once enough of the recent calls leave the period.
			recent := q.calls[b.key][len(q.calls[b.key])-n:]
			free := recent[n-l.calls].Add(per).Sub(now)
			if free > wait {
				wait, header = free, b.header
				what = fmt.Sprintf("%d calls per %s for %s", l.calls, formatPeriod(l.per), strings.SplitN(b.key, "|", 2)[0])
			}
		}
	}
	if wait > 0 {
		q.mu.Unlock()
		s.stats.add(func(st *stats) { st.Throttled++; st.QuotaRejected++ })
		secs := strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
		h := w.Header()
		h.Set("Retry-After", secs)
		h.Set(header, secs)
		h.Set(strings.Replace(header, "-retry-after", "-requests", 1), "0")
		writeARMError(w, http.StatusTooManyRequests, "429",
			"Too many requests. The rate limit of "+what+" is exceeded. Please retry after the time in the retry-after headers.")
		return true
	}
	longest := 24 * time.Hour / time.Duration(scale)
	for _, b := range buckets {
		kept := q.calls[b.key][:0]
		for _, t := range q.calls[b.key] {
			if now.Sub(t) < longest {
				kept = append(kept, t)
			}
		}
		q.calls[b.key] = append(kept, now)
	}
	q.mu.Unlock()
	return false
}

func formatPeriod(d time.Duration) string {
	switch d {
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return d.String()
}
