package main

import (
	"testing"
	"time"
)

func TestParseCronErrors(t *testing.T) {
	for _, expr := range []string{
		"",
		"* * * *",
		"* * * * * * *",
		"60 * * * * *",
		"* 60 * * * *",
		"* * 24 * * *",
		"* * * 0 * *",
		"* * * 32 * *",
		"* * * * 13 *",
		"* * * * * 7",
		"*/0 * * * * *",
		"5-1 * * * * *",
		"a * * * * *",
		"1,,2 * * * * *",
		"0 0 0 30 2 *", // never occurs
		"00:05:00",     // TimeSpan schedule
	} {
		if _, err := parseCron(expr); err == nil {
			t.Errorf("parseCron(%q) = nil error, want an error", expr)
		}
	}
}

func TestCronNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		expr, after string
		want        []string // successive occurrences
	}{
		{"0 */5 * * * *", "2024-11-30T14:43:50Z", []string{"2024-11-30T14:45:00Z", "2024-11-30T14:50:00Z"}},
		{"*/15 * * * * *", "2026-01-01T00:00:00Z", []string{"2026-01-01T00:00:15Z", "2026-01-01T00:00:30Z", "2026-01-01T00:00:45Z", "2026-01-01T00:01:00Z"}},
		{"0 30 9 * * 1-5", "2026-11-20T10:00:00Z", []string{"2026-11-23T09:30:00Z", "2026-11-24T09:30:00Z"}}, // Friday → Monday
		{"0 30 9 * * mon-fri", "2026-11-20T10:00:00Z", []string{"2026-11-23T09:30:00Z"}},
		{"0 0 6 1 * *", "2026-11-22T00:00:00Z", []string{"2026-12-01T06:00:00Z", "2027-01-01T06:00:00Z"}},
		{"0 0 0 29 2 *", "2026-01-01T00:00:00Z", []string{"2028-02-29T00:00:00Z"}},
		{"0 0 12 * jan,jul *", "2026-02-01T00:00:00Z", []string{"2026-07-01T12:00:00Z"}},
		{"5/20 0 0 * * *", "2026-01-01T00:00:00Z", []string{"2026-01-01T00:00:05Z", "2026-01-01T00:00:25Z", "2026-01-01T00:00:45Z", "2026-01-02T00:00:05Z"}},
		{"0 0 1-3/2 * * *", "2026-01-01T00:00:00Z", []string{"2026-01-01T01:00:00Z", "2026-01-01T03:00:00Z", "2026-01-02T01:00:00Z"}},
		{"0 0 0 13 * 5", "2026-01-01T00:00:00Z", []string{"2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z"}}, // Friday the 13th: both fields must match
		{"0 * * * *", "2026-01-01T00:30:00Z", []string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}},    // five fields: minutes
		{"0 0 0 * * 0", "2026-11-21T23:59:59.5Z", []string{"2026-11-22T00:00:00Z"}},                        // sub-second start
		{"0 */5 * * * *", "2026-11-22T10:05:00Z", []string{"2026-11-22T10:10:00Z"}},                        // strictly after
	} {
		t.Run(tc.expr, func(t *testing.T) {
			s, err := parseCron(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			cur := at(tc.after)
			for _, w := range tc.want {
				cur = s.next(cur)
				if !cur.Equal(at(w)) {
					t.Fatalf("next = %s, want %s", cur.Format(time.RFC3339), w)
				}
			}
		})
	}
}
