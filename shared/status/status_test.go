package status

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

const scope = "subscriptions/1caaa5a3-2b66-438e-8ab4-bce37d518c5d"

func win(from, to string, state store.WindowState, gen, success int64, at time.Time, rows int64) store.Window {
	w := store.Window{ID: store.WindowID(scope, "ActualCost", from, to), Scope: scope, Metric: "ActualCost", From: from, To: to,
		State: state, Generation: gen, SuccessGeneration: success, LastSuccessAt: at, UpdatedAt: at}
	if success > 0 {
		for _, d := range (window.Window{From: from, To: to}).Days() {
			w.Days = append(w.Days, store.DayTotal{Date: d, Currency: "EUR", Rows: rows, BilledCost: decimal.NewFromInt(rows)})
		}
	}
	return w
}

func TestComputeDays(t *testing.T) {
	closeDays, _ := window.ParseCloseDays("1-5,19")
	now := time.Date(2024, 3, 10, 6, 0, 0, 0, time.UTC)
	o := Options{Now: now, TrailingDays: 3, CloseDays: closeDays, StaleAfter: 36 * time.Hour}
	ws := []store.Window{
		// February, pulled once on 2 March (after it ended): ingested.
		win("2024-02-01", "2024-02-29", store.StateComplete, 2, 2, time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC), 3),
		// 7 March, a trailing day pulled three days ago: stale.
		win("2024-03-07", "2024-03-07", store.StateComplete, 3, 3, now.Add(-72*time.Hour), 5),
		// 8 March: succeeded, then a newer attempt failed.
		win("2024-03-08", "2024-03-08", store.StateFailed, 9, 4, now.Add(-2*time.Hour), 5),
		// 9 March: succeeded an hour ago and is being pulled again.
		win("2024-03-09", "2024-03-09", store.StateRequested, 10, 5, now.Add(-time.Hour), 7),
		// 1 March: pulled during the month, outside the trailing days: ingested.
		win("2024-03-01", "2024-03-01", store.StateComplete, 6, 6, time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC), 1),
	}
	ws[2].Errors = []string{"request report: HTTP 403"}
	c := Compute(ws, nil, scope, "ActualCost", time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC), o)
	want := Counts{Ingested: 29 + 1 + 1, Stale: 1, Missing: 5, Failed: 1}
	if c.Counts != want {
		t.Errorf("counts %+v, want %+v", c.Counts, want)
	}
	byDate := map[string]Day{}
	for _, d := range c.Days {
		byDate[d.Date] = d
	}
	if d := byDate["2024-03-08"]; d.State != Failed || d.Error != "request report: HTTP 403" || d.Rows != 5 {
		t.Errorf("8 March %+v", d)
	}
	if d := byDate["2024-03-09"]; d.State != Ingested || !d.InFlight || d.Rows != 7 {
		t.Errorf("9 March %+v", d)
	}
	if d := byDate["2024-03-07"]; d.State != Stale {
		t.Errorf("7 March %+v", d)
	}
	if len(c.Months) != 2 || c.Months[0].State != store.MonthClosing || c.Months[1].State != store.MonthOpen {
		t.Errorf("months %+v", c.Months)
	}

	// After 19 March, February is final; a pull from before is stale.
	o.Now = time.Date(2024, 3, 20, 0, 0, 0, 0, time.UTC)
	c = Compute(ws, nil, scope, "ActualCost", time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), o)
	if c.Counts != (Counts{Stale: 29}) || c.Months[0].State != store.MonthFinal {
		t.Errorf("February on 20 March: %+v %+v", c.Counts, c.Months)
	}
	// A month document wins over the derivation.
	doc := store.Month{Scope: scope, Metric: "ActualCost", Month: "2024-02", State: store.MonthFinal, FinalAt: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}
	c = Compute(ws, []store.Month{doc}, scope, "ActualCost", time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), o)
	if c.Counts != (Counts{Ingested: 29}) {
		t.Errorf("February final on 1 March, pulled on 2 March: %+v", c.Counts)
	}
}

func TestRunProgress(t *testing.T) {
	created := time.Date(2024, 3, 10, 6, 0, 0, 0, time.UTC)
	r := &store.Run{ID: "run-1", CreatedAt: created}
	ws := map[string]*store.Window{}
	for i, st := range []store.WindowState{store.StateComplete, store.StateFailed, store.StatePolling, store.StateComplete, ""} {
		from := time.Date(2024, time.Month(i+1), 1, 0, 0, 0, 0, time.UTC).Format(window.DateLayout)
		rw := store.RunWindow{Scope: scope, Metric: "ActualCost", From: from, To: from, WindowID: store.WindowID(scope, "ActualCost", from, from)}
		r.Windows = append(r.Windows, rw)
		gen := created.Add(time.Minute).UnixMilli()
		if i == 3 {
			gen = created.Add(-time.Hour).UnixMilli() // completed before the run: not yet for it
		}
		if st != "" {
			w := win(from, from, st, gen, 0, created, 2)
			if st == store.StateComplete {
				w.SuccessGeneration = gen
			}
			w.UpdatedAt = created.Add(-24 * time.Hour)
			w.Errors = []string{"boom"}
			ws[rw.WindowID] = &w
		}
	}
	p := Run(r, ws)
	if p.Complete != 1 || p.Failed != 1 || p.Pending != 3 || p.State != RunRunning || p.Windows[2].State != "polling" || p.Windows[3].State != "queued" || len(p.Errors) != 1 {
		t.Errorf("progress %+v", p)
	}
}
