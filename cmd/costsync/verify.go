package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/handlers"
	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

func init() {
	verbs = append(verbs, verb{Name: "verify", Short: "recount a window in Cosmos DB against its ledger and the source report", Run: runVerify})
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "--scope SCOPE --from YYYY-MM-DD --to YYYY-MM-DD [--metric METRIC] [--no-source] [flags]",
		"Recounts one window: the rows and exact billed totals per day and currency of its\n"+
			"documents in Cosmos DB, set against what the ledger recorded when the window\n"+
			"completed, and against the source: the Cost Details report requested again now\n"+
			"(paced by the rate governor, polled with the service's waits, parsed as ingestion\n"+
			"parses it). A source that differs from both means the service restated the window\n"+
			"since; ingest it again. With --query (the default) the Cosmos DB totals are also set\n"+
			"against the Query API's daily totals for the same scope, metric and days: an\n"+
			"independent aggregate of the same data, which the service rounds, so differences\n"+
			"within --tolerance pass. It exits 1 when anything differs. It writes nothing.", stdout, stderr)
	var (
		c         connection
		from, to  string
		noSource  bool
		query     bool
		tolerance string
	)
	c.register(fs, true)
	fs.StringVar(&from, "from", "", "first day of the window, YYYY-MM-DD (required)")
	fs.StringVar(&to, "to", "", "last day of the window, YYYY-MM-DD (required)")
	fs.BoolVar(&noSource, "no-source", false, "compare Cosmos DB with the ledger only (no report request)")
	fs.BoolVar(&query, "query", true, "also compare Cosmos DB with the Query API's daily totals")
	fs.StringVar(&tolerance, "tolerance", "0.01", "largest difference per day and currency accepted from the Query API, in billing currency")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tol, err := decimal.NewFromString(tolerance)
	if err != nil || tol.IsNegative() {
		return usagef("--tolerance %q is not a non-negative decimal", tolerance)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if len(c.scopes) != 1 || from == "" || to == "" {
		return usagef("one --scope, --from and --to are required")
	}
	w := window.Window{From: from, To: to}
	if err := w.Validate(); err != nil {
		return usagef("%v", err)
	}
	cfg, cred, db, err := c.open()
	if err != nil {
		return err
	}
	sc, metric := cfg.Scopes[0], cfg.Metrics[0]
	if len(cfg.Metrics) > 1 {
		return usagef("one --metric at a time")
	}
	w.Scope, w.Metric = sc.Path, metric
	id := store.WindowID(w.Scope, w.Metric, w.From, w.To)
	wd, err := db.GetWindow(ctx, w.Scope, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no window %s %s %s..%s in the ledger (costsync status lists them)", w.Scope, w.Metric, w.From, w.To)
	}
	if err != nil {
		return err
	}
	days := w.Days()
	for _, d := range wd.Days {
		days = append(days, d.Date)
	}
	slices.Sort(days)
	days = slices.Compact(days)
	stored, err := db.CountWindow(ctx, w.Scope, w.Metric, days)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "window %s %s %s..%s: %s, generation %d, last success %s\n", w.Scope, w.Metric, w.From, w.To, wd.State, wd.SuccessGeneration, wd.LastSuccessAt.Format(time.RFC3339))
	cols := [][]store.DayTotal{wd.Days, stored}
	names := []string{"ledger", "cosmos"}
	var cost *costapi.Client
	if !noSource || query {
		if cost, err = costapi.New(cred, &costapi.Options{Cloud: cfg.Cloud, Endpoint: cfg.ARMEndpoint, AllowedHosts: cfg.AllowedHosts}); err != nil {
			return err
		}
	}
	if !noSource {
		src, quarantined, err := sourceTotals(ctx, cfg, cost, db, sc, w, stderr)
		if err != nil {
			return fmt.Errorf("source report: %w", err)
		}
		if quarantined != wd.Quarantined {
			fmt.Fprintf(stdout, "the source has %d lines that cannot be ingested; the ledger quarantined %d\n", quarantined, wd.Quarantined)
		}
		cols, names = append(cols, src), append(names, "source")
	}
	agree := compareTotals(stdout, names, cols)
	if agree {
		fmt.Fprintf(stdout, "\n%s agree: every day and currency has the same rows and exact billed cost\n", strings.Join(names, ", "))
	}
	if query {
		days, err := handlers.Verify(ctx, cost, db, w)
		if err != nil {
			return fmt.Errorf("query totals: %w", err)
		}
		fmt.Fprintln(stdout)
		if !compareQuery(stdout, days, tol) {
			agree = false
		} else {
			fmt.Fprintf(stdout, "\ncosmos and the Query API agree within %s per day and currency\n", tol)
		}
	}
	if !agree {
		return errors.New("the window does not reconcile")
	}
	return nil
}

// compareQuery prints the stored totals next to the Query API's and tells
// whether every difference is within tol.
func compareQuery(w io.Writer, days []handlers.VerifiedDay, tol decimal.Decimal) bool {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "day\tcurrency\tcosmos billed cost\tquery cost\tdifference\tmatch\t")
	ok := true
	for _, d := range days {
		match := "exact"
		switch diff := d.Difference(); {
		case diff.Abs().GreaterThan(tol):
			match, ok = "DIFFERS", false
		case !diff.IsZero():
			match = "within tolerance"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", d.Date, d.Currency, d.Stored, d.Query, d.Difference(), match)
	}
	tw.Flush()
	return ok
}

// compareTotals prints the totals side by side and tells whether they agree.
func compareTotals(w io.Writer, names []string, cols [][]store.DayTotal) bool {
	type key struct{ date, currency string }
	var keys []key
	vals := make([]map[key]store.DayTotal, len(cols))
	for i, col := range cols {
		vals[i] = map[key]store.DayTotal{}
		for _, d := range col {
			if d.Rows == 0 && d.BilledCost.IsZero() {
				continue
			}
			k := key{d.Date, d.Currency}
			if _, seen := vals[i][k]; !seen && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
			v := vals[i][k]
			v.Rows += d.Rows
			v.BilledCost = v.BilledCost.Add(d.BilledCost)
			vals[i][k] = v
		}
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.date+a.currency, b.date+b.currency) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "day\tcurrency\t"
	for _, n := range names {
		head += n + " rows\t" + n + " billed cost\t"
	}
	fmt.Fprintln(tw, head+"match\t")
	ok := true
	for _, k := range keys {
		line := k.date + "\t" + k.currency + "\t"
		match := true
		for i := range cols {
			v := vals[i][k]
			line += fmt.Sprintf("%d\t%s\t", v.Rows, v.BilledCost)
			if v.Rows != vals[0][k].Rows || !v.BilledCost.Equal(vals[0][k].BilledCost) {
				match = false
			}
		}
		if !match {
			ok = false
			line += "DIFFERS\t"
		} else {
			line += "exact\t"
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	return ok
}

// sourceTotals requests the window's report again, waits for it as the
// service asks, and totals it per day and currency as ingestion would. A
// failed report, an expired link or a transient error is tried again, up
// to COSTSYNC_REPORT_ATTEMPTS times.
func sourceTotals(ctx context.Context, cfg *config.Config, cost *costapi.Client, db *store.Cosmos, sc costapi.Scope, w window.Window, stderr io.Writer) ([]store.DayTotal, int, error) {
	ticket := make([]byte, 8)
	_, _ = rand.Read(ticket)
	for attempt := 1; ; attempt++ {
		out, quarantined, wait, err := sourceOnce(ctx, cfg, cost, db, sc, w, "verify-"+hex.EncodeToString(ticket), stderr)
		if err == nil {
			return out, quarantined, nil
		}
		if wait < 0 || attempt >= cfg.ReportAttempts {
			return nil, 0, err
		}
		fmt.Fprintf(stderr, "%v; trying again in %s\n", err, wait)
		if err := sleep(ctx, wait); err != nil {
			return nil, 0, err
		}
	}
}

// sourceOnce makes one attempt; on error, wait is how long to wait before
// the next one, or negative when trying again cannot help.
func sourceOnce(ctx context.Context, cfg *config.Config, cost *costapi.Client, db *store.Cosmos, sc costapi.Scope, w window.Window, ticket string, stderr io.Writer) ([]store.DayTotal, int, time.Duration, error) {
	// The governor: the same quota as the function app's.
	for {
		g, err := db.Acquire(ctx, handlers.Buckets(cfg.Rates, sc), ticket, time.Now(), &store.AcquireOptions{Slack: cfg.Rates.Slack})
		if err != nil {
			return nil, 0, -1, err
		}
		if g.Go {
			break
		}
		fmt.Fprintf(stderr, "waiting %s for the Cost Details quota\n", time.Until(g.At).Round(time.Second))
		if err := sleep(ctx, time.Until(g.At)); err != nil {
			return nil, 0, -1, err
		}
	}
	retry := func(err error) time.Duration {
		if e, ok := costapi.AsError(err); ok && (e.Retryable || e.LinkExpired) {
			return max(e.RetryAfter, 5*time.Second)
		}
		return -1
	}
	rep, err := cost.RequestReport(ctx, sc, costapi.ReportRequest{Metric: w.Metric, From: w.From, To: w.To})
	for err == nil && !rep.Done {
		fmt.Fprintf(stderr, "report not ready; polling again in %s\n", rep.RetryAfter)
		if err = sleep(ctx, rep.RetryAfter); err == nil {
			rep, err = cost.PollReport(ctx, sc, rep.Location)
		}
	}
	if err != nil {
		return nil, 0, retry(err), err
	}
	if rep.Status == costapi.StatusFailed {
		return nil, 0, 0, fmt.Errorf("the report failed: %s", rep.Message)
	}
	var totals costcsv.Totals
	quarantined := 0
	for i, b := range rep.Blobs {
		q, err := totalBlob(ctx, cost, b, i, &totals)
		if err != nil {
			return nil, 0, retry(err), err
		}
		quarantined += q
	}
	var out []store.DayTotal
	for _, d := range totals.ByDayCurrency() {
		out = append(out, store.DayTotal{Date: d.Date, Currency: d.Currency, Rows: int64(d.Rows), BilledCost: d.BilledCost})
	}
	return out, quarantined, 0, nil
}

// totalBlob parses one report part into totals and counts the lines that
// cannot be ingested.
func totalBlob(ctx context.Context, cost *costapi.Client, b costapi.Blob, part int, totals *costcsv.Totals) (int, error) {
	rc, err := cost.OpenBlob(ctx, b.Link)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	rd, err := costcsv.NewReader(rc, &costcsv.Options{File: fmt.Sprintf("part %d", part), Part: part})
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	quarantined := 0
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			return quarantined, nil
		}
		var le *costcsv.LineError
		if errors.As(err, &le) {
			quarantined++
			continue
		}
		if err != nil {
			return quarantined, err
		}
		totals.Add(rec)
	}
}

// sleep waits d or until ctx ends: the command line may wait, a function
// never does.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
