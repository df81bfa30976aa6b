package status

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/store"
)

func TestLateRestatement(t *testing.T) {
	changed := store.Restatement{DaysChanged: 1, RowsChanged: 3}
	for _, tc := range []struct {
		at   string
		r    store.Restatement
		want bool
	}{
		{"2024-02-07T23:59:59Z", changed, false}, // day 7 of the next month
		{"2024-02-08T00:00:00Z", changed, true},
		{"2024-02-19T06:00:00Z", changed, true},
		{"2024-02-19T06:00:00Z", store.Restatement{}, false}, // nothing changed
		{"2024-01-31T06:00:00Z", changed, false},
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := LateRestatement("2024-01", store.MonthPull{CompletedAt: at, Restatement: tc.r}); got != tc.want {
			t.Errorf("pull at %s (%+v): late %v, want %v", tc.at, tc.r, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	now := time.Date(2024, 2, 20, 12, 0, 0, 0, time.UTC)
	const scope = "subscriptions/1caaa5a3-2b66-438e-8ab4-bce37d518c5d"
	ok := store.Window{Scope: scope, Metric: "ActualCost", From: "2024-02-17", To: "2024-02-17", State: store.StateComplete,
		LastSuccessAt: now.Add(-40 * time.Hour), UpdatedAt: now.Add(-40 * time.Hour), Throttles: 2, Quarantined: 3}
	poisoned := store.Window{Scope: scope, Metric: "ActualCost", From: "2024-02-18", To: "2024-02-18", State: store.StateFailed,
		Poisoned: 1, Errors: []string{"a cost-parts message failed on every delivery"}, UpdatedAt: now.Add(-time.Hour), Throttles: 1}
	throttled := store.Window{Scope: scope, Metric: "ActualCost", From: "2024-02-19", To: "2024-02-19", State: store.StatePolling,
		Throttles: SustainedThrottles, UpdatedAt: now.Add(-time.Minute)}
	other := store.Window{Scope: scope, Metric: "AmortizedCost", State: store.StateFailed, Poisoned: 4}
	late := store.MonthPull{CompletedAt: time.Date(2024, 2, 19, 6, 0, 0, 0, time.UTC),
		Restatement: store.Restatement{DaysChanged: 2, RowsChanged: 5, Totals: []store.TotalChange{{Currency: "USD", Delta: decimal.RequireFromString("1.5")}}}}
	months := []Month{{Month: "2024-01", State: store.MonthFinal, Pulls: []store.MonthPull{{CompletedAt: time.Date(2024, 2, 3, 0, 0, 0, 0, time.UTC)}, late}}}

	h := Check([]store.Window{ok, poisoned, throttled, other}, months, scope, "ActualCost", now, 36*time.Hour)
	if !h.Stale || !h.LastSuccess.Equal(ok.LastSuccessAt) || len(h.Failed) != 1 || len(h.Poisoned) != 1 || len(h.Throttled) != 1 ||
		h.Throttles != 1+SustainedThrottles || h.Quarantined != 3 || len(h.LateMonths) != 1 {
		t.Fatalf("health %+v", h)
	}
	alerts := strings.Join(h.Alerts(now, 36*time.Hour), "\n")
	for _, want := range []string{"no successful window for 40h0m0s", "month 2024-01 still changed on 2024-02-19", "poisoned message",
		"sustained throttling", "3 quarantined lines in 1 windows"} {
		if !strings.Contains(alerts, want) {
			t.Errorf("alerts lack %q:\n%s", want, alerts)
		}
	}

	fresh := ok
	fresh.LastSuccessAt, fresh.Quarantined = now.Add(-time.Hour), 0
	if a := Check([]store.Window{fresh}, nil, scope, "ActualCost", now, 36*time.Hour).Alerts(now, 36*time.Hour); len(a) != 0 {
		t.Errorf("a fresh scope raises %v", a)
	}
	if a := Check(nil, nil, scope, "ActualCost", now, 36*time.Hour).Alerts(now, 36*time.Hour); len(a) != 1 || !strings.Contains(a[0], "no window ever succeeded") {
		t.Errorf("a scope never ingested raises %v", a)
	}
}
