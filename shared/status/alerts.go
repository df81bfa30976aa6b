package status

import (
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
