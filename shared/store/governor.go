package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// The rate governor keeps calls within quotas that hold across every
// function instance: its state is a ledger document per bucket (one scope,
// the tenant, a billing account, the client application), changed only
// with the ETag that was read, so two instances can never both take the
// last free call of a bucket.
//
// A bucket keeps the calls made and the calls booked for later. A caller
// with a ticket (one per queue message, so that a redelivered message
// replaces its own booking instead of adding one) asks [Cosmos.Acquire]:
// either it may call now (the call is recorded), or it gets the earliest
// time its call fits into every bucket's limits, booked for it, and waits
// until then in the queue — never by sleeping. When it comes back, the
// booking is turned into a call. Booked times keep Slack more than the
// limits need, and a booking that is claimed late needs only a quarter of
// it, so a message that wakes up late (queue polling, busy instances) still
// fits and the next bookings are not pushed back.

// KindGovernor is the kind of the governor's ledger documents.
const KindGovernor = "governor"

// governorPK is the ledger partition of the governor's documents: a
// handful of small documents, read and written once per report request.
const governorPK = "~governor"

// Limit is a quota: at most Calls calls in any period of length Per.
type Limit struct {
	Calls int
	Per   time.Duration
}

func (l Limit) String() string { return strconv.Itoa(l.Calls) + "/" + formatPer(l.Per) }

func formatPer(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// ParseLimits reads limits written as "2/1m,10/1h,50/1d": calls, a slash and
// a period (a Go duration, or a whole number of days with "d"). An empty
// string or "none" means no limit.
func ParseLimits(s string) ([]Limit, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return nil, nil
	}
	var out []Limit
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		calls, per, ok := strings.Cut(part, "/")
		n, err := strconv.Atoi(strings.TrimSpace(calls))
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("limit %q: want CALLS/PERIOD, e.g. 10/1h", part)
		}
		d, err := parsePer(strings.TrimSpace(per))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("limit %q: period %q is not a positive duration such as 1m, 1h or 1d", part, per)
		}
		out = append(out, Limit{Calls: n, Per: d})
	}
	return out, nil
}

func parsePer(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// FormatLimits writes limits as ParseLimits reads them.
func FormatLimits(ls []Limit) string {
	if len(ls) == 0 {
		return "none"
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.String()
	}
	return strings.Join(parts, ",")
}

// Bucket is one quota the governor keeps: a key naming what it counts (a
// scope, the tenant, ...) and its limits. A bucket without limits is ignored.
type Bucket struct {
	Key    string
	Limits []Limit
}

// Booking is one call of a bucket: made (Claimed) at At, or booked for At.
type Booking struct {
	Ticket  string    `json:"ticket"`
	At      time.Time `json:"at"`
	Claimed bool      `json:"claimed,omitempty"`
}

// Governor is the ledger document of one bucket.
type Governor struct {
	ID        string    `json:"id"`
	PK        string    `json:"pk"`
	Kind      string    `json:"kind"`
	Bucket    string    `json:"bucket"`
	Bookings  []Booking `json:"bookings"`
	UpdatedAt time.Time `json:"updatedAt"`

	ETag azcore.ETag `json:"-"`
}

// GovernorID is the id of a bucket's document.
func GovernorID(bucket string) string { return "governor|" + escapeID(strings.ToLower(bucket)) }

// Grant is the governor's answer to a ticket.
type Grant struct {
	// Go is true when the call may be made now; it has been recorded.
	Go bool
	// At is when the call was recorded (Go) or is booked for (wait until then).
	At time.Time
}

// AcquireOptions tunes [Cosmos.Acquire]; nil means the defaults.
type AcquireOptions struct {
	// Slack is added to every period when a call is booked, so that a late
	// claim still fits; default DefaultSlack.
	Slack time.Duration
}

// DefaultSlack is the booking slack: queue polling (up to 2 s on the
// Functions host) and a busy instance delay a claim by about that much.
const DefaultSlack = 5 * time.Second

// maxAcquireAttempts bounds the optimistic-concurrency loop of Acquire.
const maxAcquireAttempts = 20

// ErrContended reports that Acquire lost the race for the governor's
// documents too many times in a row; the caller should try again later.
var ErrContended = errors.New("governor documents changed by other callers on every attempt")

// GetGovernor returns the document of a bucket, or ErrNotFound.
func (s *Cosmos) GetGovernor(ctx context.Context, bucket string) (*Governor, error) {
	return getGovernor(ctx, s, bucket)
}

// GetGovernor returns the document of a bucket, or ErrNotFound.
func (m *Memory) GetGovernor(ctx context.Context, bucket string) (*Governor, error) {
	return getGovernor(ctx, m, bucket)
}

// Acquire asks for a call under every bucket's limits for ticket at time
// now. See the package's governor notes above: it either records the call
// (Grant.Go) or books the earliest time that fits and returns it. Asking
// again with the same ticket before that time returns the same booking
// without writing; at or after it the booking becomes the call. A ticket
// whose call was already recorded gets a new call: the caller is calling
// again. The documents are written with their ETags; Acquire retries on a
// conflict and returns ErrContended after many lost races.
func (s *Cosmos) Acquire(ctx context.Context, buckets []Bucket, ticket string, now time.Time, o *AcquireOptions) (Grant, error) {
	return acquire(ctx, s, buckets, ticket, now, o)
}

// Acquire is [Cosmos.Acquire] in memory.
func (m *Memory) Acquire(ctx context.Context, buckets []Bucket, ticket string, now time.Time, o *AcquireOptions) (Grant, error) {
	return acquire(ctx, m, buckets, ticket, now, o)
}

func getGovernor(ctx context.Context, rw ledgerRW, bucket string) (*Governor, error) {
	return getDoc[Governor](ctx, rw, governorPK, GovernorID(bucket), KindGovernor)
}

func acquire(ctx context.Context, rw ledgerRW, buckets []Bucket, ticket string, now time.Time, o *AcquireOptions) (Grant, error) {
	slack := DefaultSlack
	if o != nil && o.Slack > 0 {
		slack = o.Slack
	}
	if ticket == "" {
		return Grant{}, errors.New("acquire: empty ticket")
	}
	var active []Bucket
	for _, b := range buckets {
		if len(b.Limits) > 0 {
			active = append(active, b)
		}
	}
	if len(active) == 0 {
		return Grant{Go: true, At: now}, nil
	}
	// Documents are always written in the same order.
	slices.SortFunc(active, func(a, b Bucket) int { return cmp.Compare(GovernorID(a.Key), GovernorID(b.Key)) })
	now = now.UTC()
	// written is the booking an earlier attempt of this call left in each
	// document it wrote before losing the race for a later one. The next
	// attempt takes it out before deciding: left in, a call recorded there
	// would count as this ticket's earlier call (and the ticket would get a
	// second one), and a booking there would be taken for the ticket's
	// booking in every bucket, leaving the other buckets without it.
	written := map[string]Booking{}
	for attempt := 0; attempt < maxAcquireAttempts; attempt++ {
		docs := make([]*Governor, len(active))
		for i, b := range active {
			g, err := getGovernor(ctx, rw, b.Key)
			if errors.Is(err, ErrNotFound) {
				g = &Governor{ID: GovernorID(b.Key), PK: governorPK, Kind: KindGovernor, Bucket: strings.ToLower(b.Key)}
			} else if err != nil {
				return Grant{}, fmt.Errorf("acquire: %w", err)
			}
			if w, ok := written[g.ID]; ok {
				if j := slices.IndexFunc(g.Bookings, func(b Booking) bool {
					return b.Ticket == w.Ticket && b.Claimed == w.Claimed && b.At.Equal(w.At)
				}); j >= 0 {
					g.Bookings = slices.Delete(g.Bookings, j, j+1)
				}
			}
			docs[i] = g
		}
		grant, write := decideGrant(active, docs, ticket, now, slack)
		if !write {
			return grant, nil
		}
		conflict := false
		for i, g := range docs {
			g.Bookings = nextBookings(g.Bookings, active[i].Limits, ticket, grant, now, slack)
			g.UpdatedAt = now
			err := putDoc(ctx, rw, governorPK, g.ID, KindGovernor, g, g.ETag == "")
			if errors.Is(err, ErrConflict) || errors.Is(err, ErrPrecondition) {
				// Another caller wrote first: try again from the start.
				conflict = true
				break
			}
			if err != nil {
				return Grant{}, fmt.Errorf("acquire: %w", err)
			}
			written[g.ID] = Booking{Ticket: ticket, At: grant.At, Claimed: grant.Go}
		}
		if !conflict {
			return grant, nil
		}
		if err := pause(ctx, attempt); err != nil {
			return Grant{}, err
		}
	}
	return Grant{}, ErrContended
}

// pause spreads competing writers apart after a lost race: a few
// milliseconds, growing. This is optimistic-concurrency back-off between
// document writes, not a wait for the quota.
func pause(ctx context.Context, attempt int) error {
	d := time.Duration(1+rand.IntN(1<<min(attempt, 5))) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// decideGrant chooses what happens to ticket at now, and whether the
// documents must be written.
func decideGrant(buckets []Bucket, docs []*Governor, ticket string, now time.Time, slack time.Duration) (Grant, bool) {
	var own *Booking
	for _, g := range docs {
		for i := range g.Bookings {
			b := &g.Bookings[i]
			if b.Ticket == ticket && !b.Claimed && (own == nil || b.At.After(own.At)) {
				own = b
			}
		}
	}
	// entries are the calls and other tickets' bookings of each bucket.
	entries := func(i int) []time.Time {
		var out []time.Time
		for _, b := range docs[i].Bookings {
			if b.Ticket != ticket || b.Claimed {
				out = append(out, b.At)
			}
		}
		return out
	}
	fitsAll := func(t time.Time, margin time.Duration) bool {
		for i, b := range buckets {
			if !fits(entries(i), b.Limits, t, margin) {
				return false
			}
		}
		return true
	}
	switch {
	case own != nil && own.At.After(now):
		return Grant{At: own.At}, false // not yet: keep waiting
	case own != nil && fitsAll(now, slack/4):
		return Grant{Go: true, At: now}, true // its time has come
	case own == nil && fitsAll(now, slack):
		return Grant{Go: true, At: now}, true
	}
	// Book the earliest time that fits: now, or just after a call or
	// booking leaves a period.
	candidates := []time.Time{now}
	for i, b := range buckets {
		for _, e := range entries(i) {
			for _, l := range b.Limits {
				if t := e.Add(l.Per + slack); t.After(now) {
					candidates = append(candidates, t)
				}
			}
		}
	}
	slices.SortFunc(candidates, func(a, b time.Time) int { return a.Compare(b) })
	for _, t := range candidates {
		if fitsAll(t, slack) {
			return Grant{At: t}, true
		}
	}
	// Unreachable: the last candidate is after every entry by a full period.
	return Grant{At: candidates[len(candidates)-1]}, true
}

// fits tells whether a call at t keeps every limit, given the other calls
// and bookings: no period of length Per+margin around t may hold more than
// Calls of them, t included.
func fits(entries []time.Time, limits []Limit, t time.Time, margin time.Duration) bool {
	all := append(slices.Clone(entries), t)
	slices.SortFunc(all, func(a, b time.Time) int { return a.Compare(b) })
	idx := slices.IndexFunc(all, func(x time.Time) bool { return x.Equal(t) })
	for _, l := range limits {
		span := l.Per + margin
		// Every run of Calls+1 consecutive entries that contains t must
		// span at least one period.
		for j := max(0, idx-l.Calls); j <= idx; j++ {
			k := j + l.Calls
			if k >= len(all) {
				break
			}
			if all[k].Sub(all[j]) < span {
				return false
			}
		}
	}
	return true
}

// nextBookings is a bucket's bookings after the grant: the ticket's old
// booking removed, its new call or booking added, and entries older than
// every period dropped.
func nextBookings(old []Booking, limits []Limit, ticket string, g Grant, now time.Time, slack time.Duration) []Booking {
	var longest time.Duration
	for _, l := range limits {
		longest = max(longest, l.Per)
	}
	horizon := now.Add(-longest - slack)
	out := make([]Booking, 0, len(old)+1)
	for _, b := range old {
		if (b.Ticket == ticket && !b.Claimed) || b.At.Before(horizon) {
			continue
		}
		out = append(out, b)
	}
	out = append(out, Booking{Ticket: ticket, At: g.At, Claimed: g.Go})
	slices.SortFunc(out, func(a, b Booking) int { return a.At.Compare(b.At) })
	return out
}
