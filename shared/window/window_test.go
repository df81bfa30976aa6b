package window

import (
	"testing"
	"time"
)

func TestTrailing(t *testing.T) {
	today := time.Date(2026, 11, 22, 15, 4, 0, 0, time.UTC)
	got := Trailing(today, 3, []string{"subscriptions/a"}, []string{"ActualCost"})
	want := []string{"2026-11-19", "2026-11-20", "2026-11-21"}
	if len(got) != len(want) {
		t.Fatalf("got %d windows, want %d", len(got), len(want))
	}
	for i, w := range got {
		if w.From != want[i] || w.To != want[i] {
			t.Errorf("window %d = %+v, want day %s", i, w, want[i])
		}
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     [][2]string
	}{
		{"2026-01-15", "2026-03-02", [][2]string{{"2026-01-15", "2026-01-31"}, {"2026-02-01", "2026-02-28"}, {"2026-03-01", "2026-03-02"}}},
		{"2024-02-01", "2024-02-29", [][2]string{{"2024-02-01", "2024-02-29"}}},
		{"2026-11-05", "2026-11-05", [][2]string{{"2026-11-05", "2026-11-05"}}},
		{"2026-12-31", "2027-01-01", [][2]string{{"2026-12-31", "2026-12-31"}, {"2027-01-01", "2027-01-01"}}},
	} {
		from, _ := ParseDate(tc.from)
		to, _ := ParseDate(tc.to)
		got := Split("s", "ActualCost", from, to)
		if len(got) != len(tc.want) {
			t.Fatalf("%s..%s: got %v", tc.from, tc.to, got)
		}
		for i, w := range got {
			if w.From != tc.want[i][0] || w.To != tc.want[i][1] {
				t.Errorf("%s..%s window %d = %s..%s, want %v", tc.from, tc.to, i, w.From, w.To, tc.want[i])
			}
		}
	}
}

func TestWindowDaysAndValidate(t *testing.T) {
	w := Window{Scope: "Subscriptions/A", Metric: "ActualCost", From: "2026-02-27", To: "2026-03-01"}
	if got := w.Days(); len(got) != 3 || got[2] != "2026-03-01" {
		t.Errorf("Days = %v", got)
	}
	for _, bad := range []Window{{From: "2026-13-01", To: "2026-12-01"}, {From: "2026-03-02", To: "2026-03-01"}, {From: "03/01/2026", To: "2026-03-01"}} {
		if bad.Validate() == nil {
			t.Errorf("%+v must be invalid", bad)
		}
	}
}
