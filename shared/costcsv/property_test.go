package costcsv

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestShuffleInvariance: reordering the data lines of a file changes neither
// the set of ids nor any total, and no two lines of a file share an id. The
// generated file repeats lines exactly and shares natural keys between lines
// with different amounts, so occurrence numbers are exercised.
func TestShuffleInvariance(t *testing.T) {
	header, lines := genEA(1, 3000, 15)
	parse := func(lines []string) (ids []string, totals []DayTotal, occ int) {
		t.Helper()
		_, recs, bad := readAll(t, "gen.csv", []byte(header+strings.Join(lines, "")), nil)
		if len(bad) != 0 {
			t.Fatalf("generated file has bad lines, first: %v", bad[0])
		}
		if len(recs) != len(lines) {
			t.Fatalf("%d records from %d lines", len(recs), len(lines))
		}
		var tot Totals
		for _, r := range recs {
			ids = append(ids, r.ID)
			tot.Add(r)
			occ = max(occ, r.Occurrence)
		}
		slices.Sort(ids)
		if i := firstDup(ids); i >= 0 {
			t.Fatalf("two lines share id %s", ids[i])
		}
		return ids, tot.ByDayCurrency(), occ
	}
	wantIDs, wantTotals, occ := parse(lines)
	if occ < 3 {
		t.Fatalf("generated file has at most %d lines per natural key; the test needs repeats", occ)
	}
	rng := rand.New(rand.NewPCG(2, 3))
	for i := range 5 {
		shuffled := slices.Clone(lines)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		ids, totals, _ := parse(shuffled)
		if !slices.Equal(ids, wantIDs) {
			t.Errorf("shuffle %d: the set of ids changed", i)
		}
		if d := compare.Compare(wantTotals, totals); d != "" {
			t.Errorf("shuffle %d: totals (-want +got):\n%s", i, d)
		}
	}
}

func firstDup(sorted []string) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return i
		}
	}
	return -1
}
