package status

import (
	"fmt"
	"time"

	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// LateDay is the day of the next month after which a closed month is
// expected not to change any more: a re-pull completed later that still
// changes the month is worth an alert (invoices are final; chargeback has
// been sent).
const LateDay = 7

// LateRestatement tells whether a completed re-pull of month (YYYY-MM)
// changed its data after day LateDay of the next month.
func LateRestatement(month string, p store.MonthPull) bool {
	start, err := time.Parse(window.MonthLayout, month)
	if err != nil || !p.Restatement.Changed() {
		return false
	}
	return !p.CompletedAt.Before(start.AddDate(0, 1, LateDay))
}

// LastSuccesses returns, per metric, the latest success among windows.
func LastSuccesses(windows []store.Window) map[string]time.Time {
	out := map[string]time.Time{}
	for _, w := range windows {
		if w.LastSuccessAt.After(out[w.Metric]) {
			out[w.Metric] = w.LastSuccessAt
		}
	}
	return out
}

// SustainedThrottles is how many 429s a window still in flight may have met
// before its throttling counts as sustained.
const SustainedThrottles = 5

// recent is how far back Health counts the throttling of windows.
const recent = 24 * time.Hour

// Health is what the alerts of README.md watch, for one scope and metric,
// read from the ledger: freshness, failures, poison messages, throttling,
// quarantined lines and months that still change after they closed.
type Health struct {
	Scope, Metric string
	// LastSuccess is the latest success of any window; zero if none.
	LastSuccess time.Time
	// Stale is true when there is no success within StaleAfter.
	Stale bool
	// Failed are the windows whose latest attempt failed; Poisoned those
	// of them that failed because a message was poisoned.
	Failed, Poisoned []store.Window
	// Throttles counts the 429s of the windows written in the last 24 h;
	// Throttled are the windows in flight that met SustainedThrottles or
	// more.
	Throttles int
	Throttled []store.Window
	// Quarantined counts the lines the latest reports could not ingest,
	// in the windows Quarantine lists.
	Quarantined int
	Quarantine  []store.Window
	// LateMonths are the months of Months whose data changed after day
	// LateDay of the next month, with the re-pull that changed them.
	LateMonths []LateMonth
}

// LateMonth is a closed month that still changed.
type LateMonth struct {
	Month string
	Pull  store.MonthPull
}

// Check reads the health of one scope and metric from its windows (others
// are ignored) and the months of its coverage.
func Check(windows []store.Window, months []Month, scope, metric string, now time.Time, staleAfter time.Duration) Health {
	h := Health{Scope: scope, Metric: metric}
	key := store.LedgerPK(scope)
	for _, w := range windows {
		if store.LedgerPK(w.Scope) != key || w.Metric != metric {
			continue
		}
		if w.LastSuccessAt.After(h.LastSuccess) {
			h.LastSuccess = w.LastSuccessAt
		}
		switch {
		case w.State == store.StateFailed:
			h.Failed = append(h.Failed, w)
			if w.Poisoned > 0 {
				h.Poisoned = append(h.Poisoned, w)
			}
		case inFlight(&w) && w.Throttles >= SustainedThrottles:
			h.Throttled = append(h.Throttled, w)
		}
		if now.Sub(w.UpdatedAt) <= recent {
			h.Throttles += w.Throttles
		}
		if w.Quarantined > 0 {
			h.Quarantined += w.Quarantined
			h.Quarantine = append(h.Quarantine, w)
		}
	}
	h.Stale = h.LastSuccess.IsZero() || now.Sub(h.LastSuccess) > staleAfter
	for _, m := range months {
		for _, p := range m.Pulls {
			if LateRestatement(m.Month, p) {
				h.LateMonths = append(h.LateMonths, LateMonth{Month: m.Month, Pull: p})
			}
		}
	}
	return h
}

// Alerts are the alerts the health raises, one line each, with what to look
// at; none when all is well.
func (h Health) Alerts(now time.Time, staleAfter time.Duration) []string {
	var out []string
	at := h.Scope + " " + h.Metric + ": "
	switch {
	case h.LastSuccess.IsZero():
		out = append(out, at+"no window ever succeeded")
	case h.Stale:
		out = append(out, fmt.Sprintf("%sno successful window for %s (more than %s)", at, now.Sub(h.LastSuccess).Round(time.Minute), staleAfter))
	}
	for _, m := range h.LateMonths {
		out = append(out, fmt.Sprintf("%smonth %s still changed on %s, after day %d of the next month: %d rows on %d days",
			at, m.Month, m.Pull.CompletedAt.Format("2006-01-02"), LateDay, m.Pull.Restatement.RowsChanged, m.Pull.Restatement.DaysChanged))
	}
	for _, w := range h.Poisoned {
		out = append(out, fmt.Sprintf("%swindow %s..%s failed with a poisoned message: %s", at, w.From, w.To, lastError(w)))
	}
	for _, w := range h.Throttled {
		out = append(out, fmt.Sprintf("%swindow %s..%s is still %s after %d answers 429: sustained throttling", at, w.From, w.To, w.State, w.Throttles))
	}
	if h.Quarantined > 0 {
		out = append(out, fmt.Sprintf("%s%d quarantined lines in %d windows", at, h.Quarantined, len(h.Quarantine)))
	}
	return out
}

func lastError(w store.Window) string {
	if n := len(w.Errors); n > 0 {
		return w.Errors[n-1]
	}
	return "no error recorded"
}
