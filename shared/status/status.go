// Package status reads the ledger for people: per scope and day, what is
// ingested, stale, missing or failed (coverage), how closing months stand
// and how much each re-pull restated, and how far an on-demand run has got.
// It computes from ledger documents only; it makes no calls.
package status

import (
	"cmp"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// DayState is the coverage of one day.
type DayState string

// The states of a day. A day is
//   - ingested: its latest pull succeeded and no newer pull is due;
//   - stale: its latest pull succeeded, but a newer one was due by the
//     schedule and has not succeeded (see Options);
//   - missing: no pull of it ever succeeded (and none failed after);
//   - failed: its latest attempt failed after its last success, so the
//     documents of that day may be out of date or partly written.
const (
	Ingested DayState = "ingested"
	Stale    DayState = "stale"
	Missing  DayState = "missing"
	Failed   DayState = "failed"
)

// States lists the day states in display order.
var States = []DayState{Ingested, Stale, Missing, Failed}

// Options are the schedule coverage is judged against.
type Options struct {
	// Now is the current time.
	Now time.Time
	// TrailingDays are the days before today that the daily timer pulls.
	TrailingDays int
	// CloseDays are the re-pull days of a closing month.
	CloseDays window.CloseDays
	// StaleAfter is how old the last success of a day that the schedule
	// keeps fresh may be (the trailing days, a closing month) before the
	// day is stale.
	StaleAfter time.Duration
}

// Day is the coverage of one day of one scope and metric.
type Day struct {
	Date  string   `json:"date"`
	State DayState `json:"state"`
	// InFlight is true when a window covering the day is being pulled now.
	InFlight bool `json:"inFlight,omitempty"`
	// Rows and Totals are what the latest successful pull stored.
	Rows        int64                 `json:"rows"`
	Totals      []store.CurrencyTotal `json:"totals,omitempty"`
	LastSuccess time.Time             `json:"lastSuccess,omitzero"`
	// Window is the id of the window of the latest success, or of the
	// failure for a failed day.
	Window string `json:"window,omitempty"`
	// Error is the latest error of a failed day.
	Error string `json:"error,omitempty"`
}

// Counts are the number of days in each state.
type Counts struct {
	Ingested int `json:"ingested"`
	Stale    int `json:"stale"`
	Missing  int `json:"missing"`
	Failed   int `json:"failed"`
}

// Of returns the count of a state.
func (c Counts) Of(s DayState) int {
	switch s {
	case Ingested:
		return c.Ingested
	case Stale:
		return c.Stale
	case Missing:
		return c.Missing
	case Failed:
		return c.Failed
	}
	return 0
}

// Add adds o's counts to c.
func (c *Counts) Add(o Counts) {
	c.Ingested += o.Ingested
	c.Stale += o.Stale
	c.Missing += o.Missing
	c.Failed += o.Failed
}

func (c *Counts) add(s DayState) {
	switch s {
	case Ingested:
		c.Ingested++
	case Stale:
		c.Stale++
	case Missing:
		c.Missing++
	case Failed:
		c.Failed++
	}
}

// Month is how one month of the range stands in its close.
type Month struct {
	Month   string           `json:"month"`
	State   store.MonthState `json:"state"`
	FinalAt time.Time        `json:"finalAt,omitzero"`
	// Planned are the close days whose re-pull was enqueued.
	Planned []string `json:"planned,omitempty"`
	// Pulls are the completed re-pulls with the size of each restatement.
	Pulls []store.MonthPull `json:"pulls,omitempty"`
}

// Coverage is the picture of one scope and metric over a range of days.
type Coverage struct {
	Scope  string `json:"scope"`
	Metric string `json:"metric"`
	From   string `json:"from"`
	To     string `json:"to"`
	Counts Counts `json:"counts"`
	// LastSuccess is the latest success of any window of the scope and metric.
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	Days        []Day     `json:"days"`
	Months      []Month   `json:"months"`
}

// inFlight tells whether a window is being pulled.
func inFlight(w *store.Window) bool {
	switch w.State {
	case store.StateComplete, store.StateFailed, "":
		return false
	}
	return true
}

// covers tells whether w's range or its ingested days include date.
func covers(w *store.Window, date string) bool {
	if w.From <= date && date <= w.To {
		return true
	}
	for _, d := range w.Days {
		if d.Date == date {
			return true
		}
	}
	return false
}

// Compute judges every day of [from, to] for one scope and metric from the
// scope's windows and month documents (other scopes' and metrics' are
// ignored).
func Compute(windows []store.Window, months []store.Month, scope, metric string, from, to time.Time, o Options) Coverage {
	scopeKey := store.LedgerPK(scope)
	var ws []*store.Window
	for i := range windows {
		w := &windows[i]
		if store.LedgerPK(w.Scope) == scopeKey && w.Metric == metric {
			ws = append(ws, w)
		}
	}
	docs := map[string]*store.Month{}
	for i := range months {
		m := &months[i]
		if store.LedgerPK(m.Scope) == scopeKey && m.Metric == metric {
			docs[m.Month] = m
		}
	}
	cov := Coverage{Scope: scope, Metric: metric, From: from.Format(window.DateLayout), To: to.Format(window.DateLayout)}
	for _, w := range ws {
		if w.LastSuccessAt.After(cov.LastSuccess) {
			cov.LastSuccess = w.LastSuccessAt
		}
	}
	monthState := map[string]Month{}
	for d := window.Day(from); !d.After(to); d = d.AddDate(0, 0, 1) {
		m := window.MonthOf(d)
		if _, ok := monthState[m]; !ok {
			ms := judgeMonth(m, docs[m], ws, o)
			monthState[m] = ms
			cov.Months = append(cov.Months, ms)
		}
		day := judgeDay(d, ws, monthState[m], o)
		cov.Counts.add(day.State)
		cov.Days = append(cov.Days, day)
	}
	return cov
}

// judgeMonth gives a month's close state: its document's when there is one;
// otherwise open for the current month, closing until its final close day
// has passed, final after.
func judgeMonth(month string, doc *store.Month, ws []*store.Window, o Options) Month {
	if doc != nil {
		m := Month{Month: month, State: doc.State, FinalAt: doc.FinalAt, Planned: doc.Planned, Pulls: doc.Pulls}
		if m.State == "" {
			m.State = store.MonthClosing
		}
		return m
	}
	today := window.Day(o.Now).Format(window.DateLayout)
	m := Month{Month: month}
	switch final := o.CloseDays.Final(month); {
	case month >= window.MonthOf(o.Now):
		m.State = store.MonthOpen
	case final == "":
		m.State = store.MonthFinal // no re-pulls: final when it ends
	case today <= final:
		m.State = store.MonthClosing
	default:
		// A month closed before costsync tracked its close: final since
		// its final close day.
		m.State = store.MonthFinal
		m.FinalAt, _ = time.Parse(window.DateLayout, final)
	}
	return m
}

// judgeDay finds a day's latest success and latest failure among the
// windows covering it and applies the schedule.
func judgeDay(d time.Time, ws []*store.Window, m Month, o Options) Day {
	date := d.Format(window.DateLayout)
	day := Day{Date: date}
	var success, failure *store.Window
	for _, w := range ws {
		if !covers(w, date) {
			continue
		}
		if inFlight(w) {
			day.InFlight = true
		}
		if w.SuccessGeneration > 0 && (success == nil || w.SuccessGeneration > success.SuccessGeneration) {
			success = w
		}
		if w.State == store.StateFailed && (failure == nil || w.Generation > failure.Generation) {
			failure = w
		}
	}
	if success != nil {
		day.LastSuccess, day.Window = success.LastSuccessAt, success.ID
		totals := map[string]decimal.Decimal{}
		for _, t := range success.Days {
			if t.Date == date {
				day.Rows += t.Rows
				totals[t.Currency] = totals[t.Currency].Add(t.BilledCost)
			}
		}
		for c, v := range totals {
			day.Totals = append(day.Totals, store.CurrencyTotal{Currency: c, BilledCost: v})
		}
		slices.SortFunc(day.Totals, func(a, b store.CurrencyTotal) int { return cmp.Compare(a.Currency, b.Currency) })
	}
	switch {
	case failure != nil && (success == nil || failure.Generation > success.SuccessGeneration):
		day.State, day.Window = Failed, failure.ID
		if n := len(failure.Errors); n > 0 {
			day.Error = failure.Errors[n-1]
		}
	case success == nil:
		day.State = Missing
	case staleDay(d, day.LastSuccess, m, o):
		day.State = Stale
	default:
		day.State = Ingested
	}
	return day
}

// staleDay applies the schedule: a day is stale when a pull newer than its
// last success was due and has not succeeded —
//   - a trailing day (the daily timer pulls it) whose last success is older
//     than StaleAfter;
//   - a day of a closing month not pulled since the month ended, StaleAfter
//     after it ended;
//   - a day of a final month last pulled before the month became final.
func staleDay(d, last time.Time, m Month, o Options) bool {
	today := window.Day(o.Now)
	if o.TrailingDays > 0 && !d.Before(today.AddDate(0, 0, -o.TrailingDays)) && d.Before(today) {
		return o.Now.Sub(last) > o.StaleAfter
	}
	monthEnd, err := time.Parse(window.MonthLayout, m.Month)
	if err != nil {
		return false
	}
	monthEnd = monthEnd.AddDate(0, 1, 0)
	switch m.State {
	case store.MonthClosing:
		return last.Before(monthEnd) && o.Now.Sub(monthEnd) > o.StaleAfter
	case store.MonthFinal:
		return !m.FinalAt.IsZero() && last.Before(m.FinalAt)
	}
	return false
}

// Latest returns, per day, the day totals of the latest success among the
// windows of scope and metric that cover it, skipping the window with id
// exclude and successes of generation before or later: what the ledger
// held for those days before that generation was ingested.
func Latest(windows []store.Window, scope, metric, exclude string, before int64, days []string) []store.DayTotal {
	var out []store.DayTotal
	scopeKey := store.LedgerPK(scope)
	for _, date := range days {
		var best *store.Window
		for i := range windows {
			w := &windows[i]
			if w.ID == exclude || store.LedgerPK(w.Scope) != scopeKey || w.Metric != metric || w.SuccessGeneration == 0 || w.SuccessGeneration >= before || !covers(w, date) {
				continue
			}
			if best == nil || w.SuccessGeneration > best.SuccessGeneration {
				best = w
			}
		}
		if best == nil {
			continue
		}
		for _, t := range best.Days {
			if t.Date == date {
				out = append(out, t)
			}
		}
	}
	return out
}
