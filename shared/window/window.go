// Package window plans the date windows that costsync requests reports for:
// the trailing days that still change, and on-demand ranges split into
// windows Cost Details accepts (at most one calendar month each).
package window

import (
	"fmt"
	"time"
)

// DateLayout is the form of every date in a window.
const DateLayout = "2006-01-02"

// Window is a range of whole days (To inclusive) of one scope and metric.
type Window struct {
	Scope  string `json:"scope"`
	Metric string `json:"metric"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// Days lists the window's dates.
func (w Window) Days() []string {
	from, err1 := time.Parse(DateLayout, w.From)
	to, err2 := time.Parse(DateLayout, w.To)
	if err1 != nil || err2 != nil {
		return nil
	}
	var out []string
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(DateLayout))
	}
	return out
}

// Validate checks the window's dates and order.
func (w Window) Validate() error {
	from, err := ParseDate(w.From)
	if err != nil {
		return fmt.Errorf("window from: %w", err)
	}
	to, err := ParseDate(w.To)
	if err != nil {
		return fmt.Errorf("window to: %w", err)
	}
	if to.Before(from) {
		return fmt.Errorf("window %s..%s: the end is before the start", w.From, w.To)
	}
	return nil
}

// ParseDate parses a YYYY-MM-DD date, with a message that names the form.
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid date %q: want YYYY-MM-DD", s)
	}
	return t, nil
}

// LastDays returns the n dates before today (today excluded: its data is
// not in yet), oldest first.
func LastDays(today time.Time, n int) []string {
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	out := make([]string, 0, n)
	for i := n; i >= 1; i-- {
		out = append(out, today.AddDate(0, 0, -i).Format(DateLayout))
	}
	return out
}

// Trailing returns one single-day window per scope, metric and day of
// LastDays(today, n).
func Trailing(today time.Time, n int, scopes, metrics []string) []Window {
	days := LastDays(today, n)
	var out []Window
	for _, s := range scopes {
		for _, m := range metrics {
			for _, d := range days {
				out = append(out, Window{Scope: s, Metric: m, From: d, To: d})
			}
		}
	}
	return out
}

// Split cuts [from, to] into windows that never cross a calendar month, the
// largest range a Cost Details request accepts.
func Split(scope, metric string, from, to time.Time) []Window {
	var out []Window
	for start := from; !start.After(to); {
		end := time.Date(start.Year(), start.Month()+1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
		if end.After(to) {
			end = to
		}
		out = append(out, Window{Scope: scope, Metric: metric, From: start.Format(DateLayout), To: end.Format(DateLayout)})
		start = end.AddDate(0, 0, 1)
	}
	return out
}
