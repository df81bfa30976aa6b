package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cronSchedule is a parsed NCRONTAB expression:
// {second} {minute} {hour} {day} {month} {day-of-week}. As in NCrontab, a day
// must match both the day and the day-of-week fields.
type cronSchedule struct {
	text                                  string
	second, minute, hour, day, month, dow uint64 // bit i set = value i allowed
}

type cronField struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	dayNames   = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
	cronFields = []cronField{
		{"second", 0, 59, nil},
		{"minute", 0, 59, nil},
		{"hour", 0, 23, nil},
		{"day", 1, 31, nil},
		{"month", 1, 12, monthNames},
		{"day-of-week", 0, 6, dayNames},
	}
)

// parseCron parses a six-field NCRONTAB expression; a five-field one is read
// without the seconds field (second 0), as NCrontab does.
func parseCron(expr string) (*cronSchedule, error) {
	parts := strings.Fields(expr)
	if len(parts) == 5 {
		parts = append([]string{"0"}, parts...)
	}
	if len(parts) == 1 && timeSpan.MatchString(parts[0]) {
		return nil, fmt.Errorf("schedule %q: TimeSpan schedules are not supported by devhost; use NCRONTAB", expr)
	}
	if len(parts) != 6 {
		return nil, fmt.Errorf("schedule %q: want six fields {second} {minute} {hour} {day} {month} {day-of-week}", expr)
	}
	s := &cronSchedule{text: expr}
	dst := []*uint64{&s.second, &s.minute, &s.hour, &s.day, &s.month, &s.dow}
	for i, p := range parts {
		bits, err := cronFields[i].parse(p)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", expr, err)
		}
		*dst[i] = bits
	}
	if s.next(time.Now()).IsZero() {
		return nil, fmt.Errorf("schedule %q never occurs", expr)
	}
	return s, nil
}

// parse reads one field: a comma-separated list of *, N, N-M, with an
// optional /step after * , N-M or N (N/step runs from N to the maximum).
func (f cronField) parse(text string) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(text, ",") {
		if item == "" {
			return 0, fmt.Errorf("%s field %q: empty list item", f.name, text)
		}
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("%s field %q: bad step %q", f.name, text, stepText)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return 0, err
			}
			if hi, err = f.value(b); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("%s field %q: range %d-%d is backwards", f.name, text, lo, hi)
			}
		default:
			v, err := f.value(rng)
			if err != nil {
				return 0, err
			}
			lo = v
			if !hasStep {
				hi = v
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func (f cronField) value(s string) (int, error) {
	if n, ok := f.names[strings.ToLower(s)]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < f.min || n > f.max {
		return 0, fmt.Errorf("%s field: %q is not a value from %d to %d", f.name, s, f.min, f.max)
	}
	return n, nil
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

// cronHorizon bounds the search for the next occurrence (e.g. "0 0 0 30 2 *"
// never occurs).
const cronHorizon = 5 * 366 * 24 * time.Hour

// next returns the first occurrence strictly after t, in UTC, or the zero
// time when there is none within five years.
func (s *cronSchedule) next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Second).Add(time.Second)
	limit := t.Add(cronHorizon)
	for t.Before(limit) {
		switch {
		case !has(s.month, int(t.Month())):
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !has(s.day, t.Day()) || !has(s.dow, int(t.Weekday())):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case !has(s.hour, t.Hour()):
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, time.UTC)
		case !has(s.minute, t.Minute()):
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute()+1, 0, 0, time.UTC)
		case !has(s.second, t.Second()):
			t = t.Add(time.Second)
		default:
			return t
		}
	}
	return time.Time{}
}
