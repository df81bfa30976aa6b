package storetest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/costsync/costsync/shared/store"
)

// diffTotals returns the totals only in want (-) and only in got (+), or "".
func diffTotals(want, got []store.DayTotal) string {
	f := func(ts []store.DayTotal) []string {
		out := make([]string, len(ts))
		for i, d := range ts {
			out[i] = fmt.Sprintf("%s %s rows=%d billed=%s", d.Date, d.Currency, d.Rows, d.BilledCost)
		}
		return out
	}
	return diffLines(f(want), f(got))
}

// diffWindow compares two windows field by field through their JSON form,
// and their ETags.
func diffWindow(want, got *store.Window) string {
	f := func(w *store.Window) []string {
		b, err := json.MarshalIndent(w, "", "  ")
		if err != nil {
			return []string{err.Error()}
		}
		return append(strings.Split(string(b), "\n"), "etag "+string(w.ETag))
	}
	return diffLines(f(want), f(got))
}

// diffLines is a small multiset line diff: enough for short fixtures.
func diffLines(want, got []string) string {
	left := map[string]int{}
	for _, l := range got {
		left[l]++
	}
	var b strings.Builder
	for _, l := range want {
		if left[l] > 0 {
			left[l]--
			continue
		}
		fmt.Fprintf(&b, "-%s\n", l)
	}
	for _, l := range got {
		if left[l] > 0 {
			left[l]--
			fmt.Fprintf(&b, "+%s\n", l)
		}
	}
	return b.String()
}
