package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/costsync/costsync/shared/status"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

func init() {
	verbs = append(verbs, verb{Name: "status", Short: "show the ledger: windows, states, last success, failures, coverage, runs", Run: runStatus})
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "[--scope SCOPE]... [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--run RUN] [--json]",
		"Shows what the ledger in Cosmos DB says, per scope and metric: the windows by state,\n"+
			"the last success and its age (freshness), the days ingested, stale, missing or failed\n"+
			"(the same judgement as GET /api/coverage), the windows that failed with their last\n"+
			"error (poisoned messages marked), the windows being pulled now, throttling (429s),\n"+
			"quarantined lines with their reasons, and how each month stands in its close with the\n"+
			"size of its last restatement. It ends with the alerts of README.md that the ledger\n"+
			"raises, for people without a telemetry backend. With --run, the progress of one run\n"+
			"(as GET /api/runs/{id}). It only reads.", stdout, stderr)
	var (
		c        connection
		from, to string
		run      string
		asJSON   bool
	)
	c.register(fs, true)
	now := time.Now().UTC()
	fs.StringVar(&from, "from", window.Day(now).AddDate(0, 0, -30).Format(window.DateLayout), "first day of the coverage")
	fs.StringVar(&to, "to", window.Day(now).AddDate(0, 0, -1).Format(window.DateLayout), "last day of the coverage, inclusive")
	fs.StringVar(&run, "run", "", "show this run (run-…) instead")
	fs.BoolVar(&asJSON, "json", false, "print the JSON the status endpoints answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	p, err := c.reader()
	if err != nil {
		return err
	}
	if run != "" {
		var pr status.Progress
		if err := p.get(ctx, "RunStatus", "costsync://local/api/runs/"+run, map[string]string{"id": run}, nil, &pr); err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, pr)
		}
		printRun(stdout, &pr)
		return nil
	}
	var cov struct {
		Counts status.Counts     `json:"counts"`
		Scopes []status.Coverage `json:"scopes"`
	}
	if err := p.get(ctx, "Coverage", "costsync://local/api/coverage", nil, map[string]string{"from": from, "to": to}, &cov); err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, cov)
	}
	windows := map[string][]store.Window{}
	for _, sc := range p.cfg.Scopes {
		ws, err := p.db.ListWindows(ctx, sc.Path)
		if err != nil {
			return err
		}
		windows[store.LedgerPK(sc.Path)] = ws
	}
	var alerts []string
	for _, sc := range cov.Scopes {
		ws := windows[store.LedgerPK(sc.Scope)]
		h := status.Check(ws, sc.Months, sc.Scope, sc.Metric, now, p.cfg.StaleAfter)
		printScope(stdout, sc, ws, h, now)
		printQuarantine(ctx, stdout, p.db, h)
		fmt.Fprintln(stdout)
		alerts = append(alerts, h.Alerts(now, p.cfg.StaleAfter)...)
	}
	fmt.Fprintf(stdout, "all scopes, %s to %s: %d ingested, %d stale, %d missing, %d failed days\n", from, to, cov.Counts.Ingested, cov.Counts.Stale, cov.Counts.Missing, cov.Counts.Failed)
	if len(alerts) == 0 {
		fmt.Fprintln(stdout, "alerts: none")
		return nil
	}
	fmt.Fprintf(stdout, "alerts: %d\n", len(alerts))
	for _, a := range alerts {
		fmt.Fprintf(stdout, "  ALERT %s\n", a)
	}
	return nil
}

// maxQuarantineLines bounds the quarantined lines status lists per scope.
const maxQuarantineLines = 5

// printQuarantine lists the first quarantined lines of the scope's latest
// reports with their reasons.
func printQuarantine(ctx context.Context, w io.Writer, db *store.Cosmos, h status.Health) {
	shown := 0
	for _, win := range h.Quarantine {
		qs, err := db.ListQuarantine(ctx, win.Scope, win.ID)
		if err != nil {
			fmt.Fprintf(w, "  quarantine of %s..%s unreadable: %v\n", win.From, win.To, err)
			continue
		}
		for _, q := range qs {
			if q.Generation != win.PartsGeneration && win.PartsGeneration != 0 {
				continue // a line of an older report
			}
			if shown == maxQuarantineLines {
				fmt.Fprintf(w, "  quarantined  … more: costsync parse the part to see them all\n")
				return
			}
			col := ""
			if q.Column != "" {
				col = " column " + q.Column
			}
			fmt.Fprintf(w, "  quarantined  %s line %d%s: %s\n", q.File, q.Line, col, q.Reason)
			shown++
		}
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printScope writes one scope and metric: windows by state, freshness,
// coverage counts, throttling, quarantine, failures, windows in flight and
// months.
func printScope(w io.Writer, c status.Coverage, all []store.Window, h status.Health, now time.Time) {
	fmt.Fprintf(w, "%s  %s\n", c.Scope, c.Metric)
	states := map[store.WindowState]int{}
	var failed, busy []store.Window
	for _, win := range all {
		if win.Metric != c.Metric {
			continue
		}
		states[win.State]++
		switch win.State {
		case store.StateFailed:
			failed = append(failed, win)
		case store.StateComplete:
		default:
			busy = append(busy, win)
		}
	}
	var parts []string
	for _, s := range []store.WindowState{store.StateComplete, store.StateFailed, store.StateQueued, store.StateRequested, store.StatePolling, store.StateLanded, store.StateIngesting} {
		if states[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", states[s], s))
		}
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	last := "never"
	if !c.LastSuccess.IsZero() {
		last = fmt.Sprintf("%s (%s ago)", c.LastSuccess.Format("2006-01-02 15:04 UTC"), now.Sub(c.LastSuccess).Round(time.Minute))
	}
	if h.Stale {
		last += ", STALE"
	}
	fmt.Fprintf(w, "  windows: %s; last success %s\n", strings.Join(parts, ", "), last)
	fmt.Fprintf(w, "  days %s to %s: %d ingested, %d stale, %d missing, %d failed\n", c.From, c.To, c.Counts.Ingested, c.Counts.Stale, c.Counts.Missing, c.Counts.Failed)
	fmt.Fprintf(w, "  throttling: %d answers 429 on the windows written in the last 24 h; %d windows in flight throttled %d times or more\n", h.Throttles, len(h.Throttled), status.SustainedThrottles)
	fmt.Fprintf(w, "  quarantined lines: %d in %d windows; poisoned messages: %d failed windows\n", h.Quarantined, len(h.Quarantine), len(h.Poisoned))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range failed {
		msg := ""
		if n := len(f.Errors); n > 0 {
			msg = f.Errors[n-1]
		}
		kind := "failed"
		if f.Poisoned > 0 {
			kind = "poisoned"
		}
		fmt.Fprintf(tw, "  %s\t%s..%s\t%s\n", kind, f.From, f.To, msg)
	}
	for _, b := range busy {
		fmt.Fprintf(tw, "  in flight\t%s..%s\t%s since %s\n", b.From, b.To, b.State, b.UpdatedAt.Format("2006-01-02 15:04 UTC"))
	}
	for _, m := range c.Months {
		line := string(m.State)
		if n := len(m.Pulls); n > 0 {
			r := m.Pulls[n-1].Restatement
			line += fmt.Sprintf(", %d re-pulls, the last changed %d rows on %d days", n, r.RowsChanged, r.DaysChanged)
			for _, t := range r.Totals {
				line += fmt.Sprintf(", %s %s", t.Currency, t.Delta)
			}
			for _, p := range m.Pulls {
				if status.LateRestatement(m.Month, p) {
					line += fmt.Sprintf("; CHANGED on %s, after day %d", p.CompletedAt.Format("2006-01-02"), status.LateDay)
				}
			}
		}
		fmt.Fprintf(tw, "  month\t%s\t%s\n", m.Month, line)
	}
	tw.Flush()
}
