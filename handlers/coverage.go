package handlers

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/status"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// coverageAnswer is the JSON body of GET /api/coverage.
type coverageAnswer struct {
	GeneratedAt time.Time `json:"generatedAt"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	// Counts add up the days of every scope and metric.
	Counts status.Counts     `json:"counts"`
	Scopes []status.Coverage `json:"scopes"`
}

// maxCoverageDays bounds the range of one coverage request.
const maxCoverageDays = 800

// coverage is GET /api/coverage?scope=&metric=&from=&to=: per scope, metric
// and day, whether the day is ingested, stale, missing or failed, with the
// rows and exact totals of its latest pull, the last success, and how each
// month stands in its close with the size of every restatement. It answers
// JSON, or an HTML calendar heat map for Accept: text/html or
// ?format=html. Without scope it covers every configured scope; without
// dates, the 13 months Cost Details serves up to yesterday.
func (s *Server) coverage(ctx context.Context, c *call) (*outcome, error) {
	h, err := c.req.HTTPTrigger("req")
	if err != nil {
		return nil, permanent(err)
	}
	bad := func(format string, args ...any) (*outcome, error) { return rejected(c, format, args...) }
	q := h.Query
	cfg := s.d.Config
	now := s.d.Now().UTC()
	today := window.Day(now)
	scopes := cfg.Scopes
	if v := strings.TrimSpace(q["scope"]); v != "" {
		sc, err := costapi.ParseScope(v)
		if err != nil {
			return bad("scope: %v", err)
		}
		scopes = nil
		for _, known := range cfg.Scopes {
			if known.Key() == sc.Key() {
				scopes = append(scopes, known)
			}
		}
		if len(scopes) == 0 {
			return bad("scope %q is not configured (COSTSYNC_SCOPES)", v)
		}
	}
	metrics := cfg.Metrics
	if v := strings.TrimSpace(q["metric"]); v != "" {
		switch strings.ToLower(v) {
		case "actualcost":
			metrics = []string{"ActualCost"}
		case "amortizedcost":
			metrics = []string{"AmortizedCost"}
		default:
			return bad("metric %q is not ActualCost or AmortizedCost", v)
		}
	}
	from, to := window.Oldest(now), today.AddDate(0, 0, -1)
	if v := strings.TrimSpace(q["from"]); v != "" {
		if from, err = window.ParseDate(v); err != nil {
			return bad("from: %v", err)
		}
	}
	if v := strings.TrimSpace(q["to"]); v != "" {
		if to, err = window.ParseDate(v); err != nil {
			return bad("to: %v", err)
		}
	}
	switch {
	case to.Before(from):
		return bad("to %s is before from %s", to.Format(window.DateLayout), from.Format(window.DateLayout))
	case to.Sub(from) > maxCoverageDays*24*time.Hour:
		return bad("at most %d days per request", maxCoverageDays)
	}
	format := strings.ToLower(strings.TrimSpace(q["format"]))
	switch format {
	case "", "json", "html":
	default:
		return bad("format %q is not json or html", format)
	}
	if format == "" && strings.Contains(strings.ToLower(h.Header("Accept")), "text/html") {
		format = "html"
	}

	ans, err := s.computeCoverage(ctx, scopes, metrics, from, to, now)
	if err != nil {
		return nil, err
	}
	c.note("scopes", len(scopes), "days", len(ans.Scopes)*int(to.Sub(from)/(24*time.Hour)+1), "format", format)
	if format != "html" {
		return answer(http.StatusOK, ans), nil
	}
	page, err := renderCoverage(ans)
	if err != nil {
		return nil, permanent(fmt.Errorf("render coverage page: %w", err))
	}
	return &outcome{outputs: map[string]any{"res": invocationHTML(page)}}, nil
}

// computeCoverage reads the ledger of each scope and judges its days.
func (s *Server) computeCoverage(ctx context.Context, scopes []costapi.Scope, metrics []string, from, to, now time.Time) (*coverageAnswer, error) {
	cfg := s.d.Config
	o := status.Options{Now: now, TrailingDays: cfg.TrailingDays, CloseDays: cfg.CloseDays, StaleAfter: cfg.StaleAfter}
	ans := &coverageAnswer{GeneratedAt: now, From: from.Format(window.DateLayout), To: to.Format(window.DateLayout)}
	for _, sc := range scopes {
		ws, err := s.d.Store.ListWindows(ctx, sc.Path)
		if err != nil {
			return nil, retryable(fmt.Errorf("read windows of %s: %w", sc.Path, err))
		}
		ms, err := s.d.Store.ListMonths(ctx, sc.Path)
		if err != nil {
			return nil, retryable(fmt.Errorf("read months of %s: %w", sc.Path, err))
		}
		for _, m := range metrics {
			cov := status.Compute(ws, ms, sc.Path, m, from, to, o)
			ans.Counts.Add(cov.Counts)
			ans.Scopes = append(ans.Scopes, cov)
		}
	}
	return ans, nil
}

// invocationHTML is an http output with an HTML body.
func invocationHTML(page []byte) any {
	r := jsonResponse(http.StatusOK, string(page))
	r.Headers["Content-Type"] = "text/html; charset=utf-8"
	return r
}

//go:embed coverage.html
var coverageHTML string

var coverageTmpl = template.Must(template.New("coverage").Funcs(template.FuncMap{
	"short": shortScope,
	"last": func(ps []store.MonthPull) *store.MonthPull {
		if len(ps) == 0 {
			return nil
		}
		return &ps[len(ps)-1]
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}).Parse(coverageHTML))

// The page's view of the coverage: a calendar per month.
type (
	pageView struct {
		*coverageAnswer
		States []status.DayState
		Views  []scopeView
	}
	scopeView struct {
		status.Coverage
		Calendars []calendarView
	}
	calendarView struct {
		Month string // YYYY-MM
		Title string
		Info  status.Month
		Weeks [][]cellView
	}
	cellView struct {
		Blank    bool
		Day      int
		Date     string
		State    status.DayState
		InFlight bool
		Rows     int64
		Opacity  string
		Title    string
	}
)

// renderCoverage writes the HTML page.
func renderCoverage(ans *coverageAnswer) ([]byte, error) {
	v := pageView{coverageAnswer: ans, States: status.States}
	for _, cov := range ans.Scopes {
		sv := scopeView{Coverage: cov}
		var maxRows int64
		for _, d := range cov.Days {
			maxRows = max(maxRows, d.Rows)
		}
		months := map[string]status.Month{}
		for _, m := range cov.Months {
			months[m.Month] = m
		}
		var cal *calendarView
		for _, d := range cov.Days {
			t, _ := time.Parse(window.DateLayout, d.Date)
			if cal == nil || cal.Month != window.MonthOf(t) {
				sv.Calendars = append(sv.Calendars, calendarView{Month: window.MonthOf(t), Title: t.Format("January 2006"), Info: months[window.MonthOf(t)]})
				cal = &sv.Calendars[len(sv.Calendars)-1]
				// Weeks start on Monday; blank cells before the first day.
				cal.Weeks = [][]cellView{make([]cellView, (int(t.Weekday())+6)%7)}
				for i := range cal.Weeks[0] {
					cal.Weeks[0][i].Blank = true
				}
			}
			level := 1.0
			if maxRows > 0 && d.State != status.Missing {
				level = 0.35 + 0.65*float64(d.Rows)/float64(maxRows)
			}
			title := fmt.Sprintf("%s: %s, %d rows", d.Date, d.State, d.Rows)
			if len(d.Totals) > 0 {
				var parts []string
				for _, t := range d.Totals {
					parts = append(parts, t.BilledCost.String()+" "+t.Currency)
				}
				title += ", " + strings.Join(parts, ", ")
			}
			if d.InFlight {
				title += ", being pulled now"
			}
			if d.Error != "" {
				title += ": " + d.Error
			}
			week := &cal.Weeks[len(cal.Weeks)-1]
			if len(*week) == 7 {
				cal.Weeks = append(cal.Weeks, nil)
				week = &cal.Weeks[len(cal.Weeks)-1]
			}
			*week = append(*week, cellView{Day: t.Day(), Date: d.Date, State: d.State, InFlight: d.InFlight, Rows: d.Rows,
				Opacity: strconv.FormatFloat(level, 'f', 2, 64), Title: title})
		}
		v.Views = append(v.Views, sv)
	}
	var b bytes.Buffer
	if err := coverageTmpl.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// shortScope keeps the last two segments of a scope for headings.
func shortScope(s string) string {
	parts := strings.Split(s, "/")
	if len(parts) <= 2 {
		return s
	}
	return ".../" + strings.Join(parts[len(parts)-2:], "/")
}
