package window

import (
	"strings"
	"testing"
	"time"
)

func TestParseCloseDays(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "1-5,19", want: "1-5,19"},
		{in: " 19, 2 ,5,3-4 ", want: "2-5,19"},
		{in: "1,1,2", want: "1-2"},
		{in: "", err: "at least one day"},
		{in: "0", err: "from 1 to 28"},
		{in: "29", err: "from 1 to 28"},
		{in: "5-1", err: "from 1 to 28"},
		{in: "x", err: "from 1 to 28"},
	} {
		got, err := ParseCloseDays(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseCloseDays(%q) error = %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got.String() != tc.want):
			t.Errorf("ParseCloseDays(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestCloseDaysDue(t *testing.T) {
	cd, _ := ParseCloseDays(DefaultCloseDays)
	d := func(s string) time.Time { t, _ := time.Parse(DateLayout, s); return t.Add(7 * time.Hour) }
	for _, tc := range []struct {
		today   string
		planned []string
		want    string
	}{
		{"2024-02-29", nil, ""},           // the month is not over
		{"2024-03-01", nil, "2024-03-01"}, // first close day
		{"2024-03-02", []string{"2024-03-01"}, "2024-03-02"},
		{"2024-03-02", []string{"2024-03-01", "2024-03-02"}, ""}, // once a day
		{"2024-03-04", []string{"2024-03-01"}, "2024-03-04"},     // missed days: one pull
		{"2024-03-10", []string{"2024-03-01", "2024-03-05"}, ""},
		{"2024-03-19", []string{"2024-03-05"}, "2024-03-19"},
		{"2024-04-30", nil, "2024-03-19"},          // long overdue: the final pull
		{"2024-04-30", []string{"2024-03-19"}, ""}, // the final one covers the rest
	} {
		if got := cd.Due("2024-02", d(tc.today), tc.planned); got != tc.want {
			t.Errorf("Due(February, %s, %v) = %q, want %q", tc.today, tc.planned, got, tc.want)
		}
	}
	if f := cd.Final("2024-12"); f != "2025-01-19" {
		t.Errorf("Final(2024-12) = %s", f)
	}
}

func TestMonthWindow(t *testing.T) {
	w, err := Month("s", "ActualCost", "2024-02")
	if err != nil || w.From != "2024-02-01" || w.To != "2024-02-29" {
		t.Errorf("Month(2024-02) = %+v, %v", w, err)
	}
	if _, err := Month("s", "ActualCost", "2024-2"); err == nil {
		t.Error("Month accepted 2024-2")
	}
	now := time.Date(2025, 1, 15, 3, 0, 0, 0, time.UTC)
	if p, o := PreviousMonth(now), Oldest(now); p != "2024-12" || o.Format(DateLayout) != "2023-12-01" {
		t.Errorf("PreviousMonth = %s, Oldest = %s", p, o)
	}
}
