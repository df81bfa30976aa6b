package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// racingLedger is a Memory whose first write of one document is preceded
// by another caller's Acquire: the write then fails on its ETag, after the
// documents before it were written.
type racingLedger struct {
	*Memory
	target string // the document id whose write loses the race
	race   func()
	raced  bool
}

func (r *racingLedger) before(doc []byte) {
	if !r.raced && strings.Contains(string(doc), `"id":"`+r.target+`"`) {
		r.raced = true
		r.race()
	}
}

func (r *racingLedger) createLedger(ctx context.Context, pk string, doc []byte) (azcore.ETag, error) {
	r.before(doc)
	return r.Memory.createLedger(ctx, pk, doc)
}

func (r *racingLedger) replaceLedger(ctx context.Context, pk, id string, doc []byte, etag azcore.ETag) (azcore.ETag, error) {
	r.before(doc)
	return r.Memory.replaceLedger(ctx, pk, id, doc, etag)
}

// TestAcquireAfterAPartialWrite is the race behind a rare failure of the
// concurrent governor test against the emulator: a caller writes the
// scope's document, loses the race for the tenant's, and tries again. What
// its first attempt left in the scope's document must not count as its
// own: not a call (it would get a second one, or wait for nothing), not a
// booking (it would wait without booking the tenant's bucket). Each
// document ends with one entry per caller, at the time it was granted.
func TestAcquireAfterAPartialWrite(t *testing.T) {
	now := time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		earlier   int  // calls made in the scope before
		wantGo    bool // both callers may call now, else both wait
		wantCalls int  // entries in the scope's document at the end
	}{
		{name: "calls", earlier: 0, wantGo: true, wantCalls: 2},
		{name: "bookings", earlier: 2, wantGo: false, wantCalls: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			buckets := []Bucket{
				{Key: "scope|/subscriptions/x", Limits: []Limit{{Calls: 2, Per: time.Minute}}},
				{Key: "tenant", Limits: []Limit{{Calls: 10, Per: time.Minute}}},
			}
			m := NewMemory()
			for i := range tc.earlier {
				if _, err := acquire(ctx, m, buckets[:1], fmt.Sprint("earlier", i), now, nil); err != nil {
					t.Fatal(err)
				}
			}
			var other Grant
			var otherErr error
			r := &racingLedger{Memory: m, target: GovernorID("tenant")}
			r.race = func() { other, otherErr = acquire(ctx, m, buckets, "other", now, nil) }
			mine, err := acquire(ctx, r, buckets, "mine", now, nil)
			if err != nil || otherErr != nil {
				t.Fatalf("acquire: %v; the other caller: %v", err, otherErr)
			}
			if !r.raced {
				t.Fatal("the race was not run: the test proves nothing")
			}
			if mine.Go != tc.wantGo || other.Go != tc.wantGo || mine.At.Before(now) || other.At.Before(now) {
				t.Errorf("grants: mine %+v, other %+v; want both Go=%v", mine, other, tc.wantGo)
			}
			for i, b := range buckets {
				doc, err := getGovernor(ctx, m, b.Key)
				if err != nil {
					t.Fatal(err)
				}
				at := map[string][]time.Time{}
				for _, bk := range doc.Bookings {
					at[bk.Ticket] = append(at[bk.Ticket], bk.At)
				}
				want := 2
				if i == 0 {
					want = tc.wantCalls
				}
				if len(doc.Bookings) != want || len(at["mine"]) != 1 || len(at["other"]) != 1 ||
					!at["mine"][0].Equal(mine.At) || !at["other"][0].Equal(other.At) {
					t.Errorf("%s holds %+v, want %d entries, one per caller at its grant", b.Key, doc.Bookings, want)
				}
			}
		})
	}
}
