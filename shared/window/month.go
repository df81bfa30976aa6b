package window

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MonthLayout is the form of a month: YYYY-MM.
const MonthLayout = "2006-01"

// DefaultCloseDays are the days of the next month on which a closing month
// is pulled again: Azure finalises a month up to 72 hours after it ends and
// re-runs its own exports on days 1–5; a later pull catches the last
// corrections (FinOps hubs pull on days 2, 5 and 19).
const DefaultCloseDays = "1-5,19"

// CloseDays are the days of the month after a month on which that month is
// pulled again while it closes, ascending. The last one is the final pull:
// once it is in, the month is final.
type CloseDays []int

// ParseCloseDays reads days such as "1-5,19": numbers and ranges from 1 to 28
// (every month has them), separated by commas.
func ParseCloseDays(s string) (CloseDays, error) {
	var out CloseDays
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 1 || b > 28 || a > b {
			return nil, fmt.Errorf("close days %q: %q is not a day or range of days from 1 to 28", s, part)
		}
		for d := a; d <= b; d++ {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("close days %q: at least one day of the next month, e.g. %s", s, DefaultCloseDays)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// String writes the days as ParseCloseDays reads them.
func (c CloseDays) String() string {
	var parts []string
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", c[i], c[j]))
		} else {
			parts = append(parts, strconv.Itoa(c[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// Dates returns the close days of month (YYYY-MM) as dates of the next month.
func (c CloseDays) Dates(month string) []string {
	start, err := time.Parse(MonthLayout, month)
	if err != nil {
		return nil
	}
	next := start.AddDate(0, 1, 0)
	out := make([]string, len(c))
	for i, d := range c {
		out[i] = time.Date(next.Year(), next.Month(), d, 0, 0, 0, 0, time.UTC).Format(DateLayout)
	}
	return out
}

// Due returns the close dates of month that have come by today and are not
// in planned: at most one re-pull is due at a time however many close days
// were missed, so it returns the latest such date, or "".
func (c CloseDays) Due(month string, today time.Time, planned []string) string {
	t := Day(today).Format(DateLayout)
	due := ""
	for _, d := range c.Dates(month) {
		if d <= t && !slices.Contains(planned, d) {
			due = d
		}
	}
	// A re-pull planned on a later close day covers the earlier ones.
	for _, p := range planned {
		if p >= due {
			return ""
		}
	}
	return due
}

// Final is the date of the final pull of month.
func (c CloseDays) Final(month string) string {
	d := c.Dates(month)
	if len(d) == 0 {
		return ""
	}
	return d[len(d)-1]
}

// Day is t's date at midnight UTC.
func Day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// MonthOf is the month (YYYY-MM) of a date or time.
func MonthOf(t time.Time) string { return t.UTC().Format(MonthLayout) }

// Month returns the window of a whole month (YYYY-MM) of a scope and metric.
func Month(scope, metric, month string) (Window, error) {
	start, err := time.Parse(MonthLayout, month)
	if err != nil {
		return Window{}, fmt.Errorf("invalid month %q: want YYYY-MM", month)
	}
	end := start.AddDate(0, 1, -1)
	return Window{Scope: scope, Metric: metric, From: start.Format(DateLayout), To: end.Format(DateLayout)}, nil
}

// PreviousMonth is the month before today's.
func PreviousMonth(today time.Time) string {
	d := Day(today)
	return time.Date(d.Year(), d.Month()-1, 1, 0, 0, 0, 0, time.UTC).Format(MonthLayout)
}

// Oldest is the first day Cost Details serves at today: the first day of the
// month 13 months before today's month.
func Oldest(today time.Time) time.Time {
	d := Day(today)
	return time.Date(d.Year(), d.Month()-HistoryMonths, 1, 0, 0, 0, 0, time.UTC)
}

// HistoryMonths is how many months back Cost Details serves data.
const HistoryMonths = 13
