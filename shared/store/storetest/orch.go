package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/costsync/costsync/shared/store"
	"github.com/shopspring/decimal"
)

// OrchStore is what the orchestration (runs, months, the rate governor)
// needs of a store; *store.Cosmos and *store.Memory implement it.
type OrchStore interface {
	Acquire(ctx context.Context, buckets []store.Bucket, ticket string, now time.Time, o *store.AcquireOptions) (store.Grant, error)
	GetGovernor(ctx context.Context, bucket string) (*store.Governor, error)
	GetMonth(ctx context.Context, scope, metric, month string) (*store.Month, error)
	CreateMonth(ctx context.Context, m *store.Month) error
	ReplaceMonth(ctx context.Context, m *store.Month) error
	ListMonths(ctx context.Context, scope string) ([]store.Month, error)
	GetRun(ctx context.Context, id string) (*store.Run, error)
	CreateRun(ctx context.Context, r *store.Run) error
	ReplaceRun(ctx context.Context, r *store.Run) error
}

var orchCases = []struct {
	name string
	fn   func(t *testing.T, s Store)
}{
	{"WindowSuccessStamp", testWindowSuccessStamp},
	{"GovernorPacesWithinLimits", testGovernorPaces},
	{"GovernorConcurrent", testGovernorConcurrent},
	{"GovernorSharedBuckets", testGovernorSharedBuckets},
	{"MonthLifecycle", testMonthLifecycle},
	{"RunLifecycle", testRunLifecycle},
}

// perScope are the documented Cost Details limits per scope.
var perScope = []store.Limit{{Calls: 2, Per: time.Minute}, {Calls: 10, Per: time.Hour}, {Calls: 50, Per: 24 * time.Hour}}

// checkCalls fails when calls (sorted) break a limit: no Calls+1 of them
// within one period.
func checkCalls(t *testing.T, what string, calls []time.Time, limits []store.Limit) {
	t.Helper()
	slices.SortFunc(calls, func(a, b time.Time) int { return a.Compare(b) })
	for _, l := range limits {
		for i := 0; i+l.Calls < len(calls); i++ {
			if d := calls[i+l.Calls].Sub(calls[i]); d < l.Per {
				t.Errorf("%s: %d calls within %s (from %s to %s) break %s", what, l.Calls+1, d, calls[i].Format(time.TimeOnly), calls[i+l.Calls].Format(time.TimeOnly), l)
				return
			}
		}
	}
}

func testWindowSuccessStamp(t *testing.T, s Store) {
	ctx := t.Context()
	w := newWindow(scopeA, "2026-03-01", "2026-03-31")
	w.Generation = 100
	if err := s.CreateWindow(ctx, w); err != nil {
		t.Fatal(err)
	}
	if w.SuccessGeneration != 0 || !w.LastSuccessAt.IsZero() {
		t.Fatalf("a queued window has success %d at %v", w.SuccessGeneration, w.LastSuccessAt)
	}
	done := time.Date(2026, 4, 2, 6, 0, 0, 0, time.UTC) // the writer's clock
	w.State, w.UpdatedAt = store.StateComplete, done
	if err := s.ReplaceWindow(ctx, w); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetWindow(ctx, scopeA, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SuccessGeneration != 100 || !got.LastSuccessAt.Equal(done) {
		t.Errorf("complete window: success generation %d at %v, want 100 at %v", got.SuccessGeneration, got.LastSuccessAt, done)
	}
	// A new request keeps the last success until it completes itself.
	got.State, got.Generation, got.UpdatedAt = store.StateRequested, 200, done.Add(time.Hour)
	if err := s.ReplaceWindow(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, _ := s.GetWindow(ctx, scopeA, w.ID)
	if again.SuccessGeneration != 100 || !again.LastSuccessAt.Equal(done) {
		t.Errorf("re-requested window: success generation %d at %v, want 100 at %v", again.SuccessGeneration, again.LastSuccessAt, done)
	}
}

// testGovernorPaces books 30 calls for one scope at once, then lets each
// come back at its time (some late), and checks every limit holds and the
// pace is close to what the limits allow.
func testGovernorPaces(t *testing.T, s Store) {
	g := s
	ctx := t.Context()
	slack := 5 * time.Second
	opts := &store.AcquireOptions{Slack: slack}
	buckets := []store.Bucket{{Key: "scope|" + scopeA, Limits: perScope}, {Key: "client", Limits: []store.Limit{{Calls: 30, Per: time.Minute}}}}
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	due := map[string]time.Time{}
	var calls []time.Time
	for i := range 30 {
		ticket := fmt.Sprintf("t%02d", i)
		gr, err := g.Acquire(ctx, buckets, ticket, start, opts)
		if err != nil {
			t.Fatalf("Acquire %s: %v", ticket, err)
		}
		if gr.Go {
			calls = append(calls, gr.At)
			continue
		}
		due[ticket] = gr.At
		// Asking again before the time changes nothing.
		again, err := g.Acquire(ctx, buckets, ticket, start.Add(time.Second), opts)
		if err != nil || again.Go || !again.At.Equal(gr.At) {
			t.Fatalf("Acquire %s again before its time = %+v, %v; want the booking at %v", ticket, again, err, gr.At)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("%d calls allowed at once, want 2 (2 per minute)", len(calls))
	}
	// Come back at the booked time, every third one 2 s late (less than
	// the slack): each booking becomes a call.
	tickets := make([]string, 0, len(due))
	for k := range due {
		tickets = append(tickets, k)
	}
	slices.SortFunc(tickets, func(a, b string) int { return due[a].Compare(due[b]) })
	for i, ticket := range tickets {
		at := due[ticket]
		if i%3 == 0 {
			at = at.Add(2 * time.Second)
		}
		gr, err := g.Acquire(ctx, buckets, ticket, at, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !gr.Go {
			t.Fatalf("%s came back at %v for its booking at %v and was re-booked for %v", ticket, at, due[ticket], gr.At)
		}
		calls = append(calls, gr.At)
	}
	checkCalls(t, "scope", calls, perScope)
	// 30 calls at 10 per hour need a little over two hours, not more than three.
	slices.SortFunc(calls, func(a, b time.Time) int { return a.Compare(b) })
	if span := calls[len(calls)-1].Sub(start); span < 2*time.Hour || span > 3*time.Hour {
		t.Errorf("30 calls took %s, want between 2 and 3 hours at 10 per hour", span)
	}
	doc, err := g.GetGovernor(ctx, "scope|"+scopeA)
	if err != nil {
		t.Fatalf("GetGovernor: %v", err)
	}
	if doc.ETag == "" || len(doc.Bookings) == 0 || len(doc.Bookings) > 30 {
		t.Errorf("governor document: etag %q, %d bookings", doc.ETag, len(doc.Bookings))
	}
	// A ticket whose call was made and which asks again is calling again:
	// it is counted anew, not waved through.
	last := calls[len(calls)-1]
	gr, err := g.Acquire(ctx, buckets, "t00", last, opts)
	if err != nil || gr.Go {
		t.Errorf("a second call of a ticket right after the last call = %+v, %v; want a booking", gr, err)
	}
}

// testGovernorConcurrent has many callers acquire at the same instant from
// goroutines: the documents' ETags must let exactly the allowed number go.
func testGovernorConcurrent(t *testing.T, s Store) {
	g := s
	ctx := t.Context()
	buckets := []store.Bucket{{Key: "scope|" + scopeB, Limits: perScope}, {Key: "tenant", Limits: []store.Limit{{Calls: 10, Per: time.Minute}}}}
	now := time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)
	const callers = 8
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		grants []store.Grant
		errs   []error
	)
	for i := range callers {
		wg.Go(func() {
			gr, err := g.Acquire(ctx, buckets, fmt.Sprintf("c%d", i), now, nil)
			mu.Lock()
			defer mu.Unlock()
			grants = append(grants, gr)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Acquire: %v", err)
	}
	goes := 0
	var times []time.Time
	for _, gr := range grants {
		if gr.Go {
			goes++
		}
		times = append(times, gr.At)
	}
	if goes != 2 {
		t.Errorf("%d of %d concurrent callers may call now, want exactly 2", goes, callers)
	}
	checkCalls(t, "concurrent bookings", times, perScope)
	doc, err := g.GetGovernor(ctx, "scope|"+scopeB)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Bookings) != callers {
		t.Errorf("scope document holds %d bookings, want %d (one per caller, none lost)", len(doc.Bookings), callers)
	}
}

// testGovernorSharedBuckets checks that a bucket shared by several scopes
// (the tenant's 10 calls per minute for subscriptions) paces them together.
func testGovernorSharedBuckets(t *testing.T, s Store) {
	g := s
	ctx := t.Context()
	tenant := []store.Limit{{Calls: 10, Per: time.Minute}}
	now := time.Date(2026, 5, 3, 0, 0, 0, 0, time.UTC)
	var tenantCalls []time.Time
	for i := range 15 {
		scope := fmt.Sprintf("subscriptions/00000000-0000-0000-0000-%012d", i)
		buckets := []store.Bucket{{Key: "scope|" + scope, Limits: perScope}, {Key: "tenant", Limits: tenant}}
		gr, err := g.Acquire(ctx, buckets, "s"+fmt.Sprint(i), now, nil)
		if err != nil {
			t.Fatal(err)
		}
		tenantCalls = append(tenantCalls, gr.At)
	}
	checkCalls(t, "tenant", tenantCalls, tenant)
	n := 0
	for _, c := range tenantCalls {
		if c.Equal(now) {
			n++
		}
	}
	if n != 10 {
		t.Errorf("%d of 15 subscriptions may call at once, want 10 (the tenant's limit)", n)
	}
}

func testMonthLifecycle(t *testing.T, s Store) {
	g := s
	ctx := t.Context()
	m := &store.Month{Scope: scopeA, Metric: metric, Month: "2026-04", State: store.MonthClosing, Planned: []string{"2026-05-01"}}
	if err := g.CreateMonth(ctx, m); err != nil {
		t.Fatalf("CreateMonth: %v", err)
	}
	if m.ETag == "" || m.ID != store.MonthID(scopeA, metric, "2026-04") {
		t.Errorf("CreateMonth set id %q etag %q", m.ID, m.ETag)
	}
	if err := g.CreateMonth(ctx, &store.Month{Scope: scopeA, Metric: metric, Month: "2026-04"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateMonth of an existing month: %v, want ErrConflict", err)
	}
	got, err := g.GetMonth(ctx, "/SUBSCRIPTIONS/0B1F6471-1BF0-4DDA-AEC3-111122223333", metric, "2026-04")
	if err != nil {
		t.Fatalf("GetMonth: %v", err)
	}
	stale := *got
	before := []store.DayTotal{{Date: "2026-04-01", Currency: "EUR", Rows: 2, BilledCost: decimal.RequireFromString("1.10")}}
	after := []store.DayTotal{{Date: "2026-04-01", Currency: "EUR", Rows: 3, BilledCost: decimal.RequireFromString("1.15")}}
	got.Pulls = append(got.Pulls, store.MonthPull{Generation: 7, Rows: 3, Restatement: store.Restate(before, after)})
	got.LastDays = after
	got.State = store.MonthFinal
	if err := g.ReplaceMonth(ctx, got); err != nil {
		t.Fatalf("ReplaceMonth: %v", err)
	}
	if err := g.ReplaceMonth(ctx, &stale); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("ReplaceMonth with a stale ETag: %v, want ErrPrecondition", err)
	}
	list, err := g.ListMonths(ctx, scopeA)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListMonths = %v, %v", list, err)
	}
	r := list[0].Pulls[0].Restatement
	if list[0].State != store.MonthFinal || r.RowsChanged != 1 || r.DaysChanged != 1 || !r.Totals[0].Delta.Equal(decimal.RequireFromString("0.05")) {
		t.Errorf("listed month %+v, restatement %+v", list[0], r)
	}
	if ws, err := s.ListWindows(ctx, scopeA); err != nil || len(ws) != 0 {
		t.Errorf("ListWindows lists month documents: %v, %v", ws, err)
	}
}

func testRunLifecycle(t *testing.T, s Store) {
	g := s
	ctx := t.Context()
	r := &store.Run{ID: "run-0123456789abcdef", IdempotencyKey: "k1",
		Request: store.RunRequest{Scopes: []string{scopeA}, Metrics: []string{metric}, From: "2026-01-01", To: "2026-02-10"},
		Windows: []store.RunWindow{{Scope: scopeA, Metric: metric, From: "2026-01-01", To: "2026-01-31", WindowID: store.WindowID(scopeA, metric, "2026-01-01", "2026-01-31")}},
	}
	if err := g.CreateRun(ctx, r); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	if err := g.CreateRun(ctx, &store.Run{ID: r.ID}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateRun of an existing run: %v, want ErrConflict", err)
	}
	if err := g.CreateRun(ctx, &store.Run{ID: "run/x"}); err == nil {
		t.Error("CreateRun accepted an id with a slash")
	}
	got, err := g.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	if got.Enqueued || len(got.Windows) != 1 || got.IdempotencyKey != "k1" || got.Request.To != "2026-02-10" {
		t.Errorf("GetRun = %+v", got)
	}
	stale := *got
	got.Enqueued = true
	if err := g.ReplaceRun(ctx, got); err != nil {
		t.Fatalf("ReplaceRun: %v", err)
	}
	if err := g.ReplaceRun(ctx, &stale); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("ReplaceRun with a stale ETag: %v, want ErrPrecondition", err)
	}
	if _, err := g.GetRun(ctx, "run-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRun of a missing run: %v, want ErrNotFound", err)
	}
}
