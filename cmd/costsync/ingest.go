package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/status"
)

func init() {
	verbs = append(verbs, verb{Name: "ingest", Short: "ingest a date range of some scopes in this process, into any Cosmos DB", Run: runIngestVerb})
}

func runIngestVerb(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ingest", "--scope SCOPE --from YYYY-MM-DD --to YYYY-MM-DD [flags]",
		"Runs the costsync pipeline in this process for the scopes and days given: it requests\n"+
			"the Cost Details reports (at most one calendar month each), polls them with the\n"+
			"service's waits, downloads the report parts into a work folder, parses them and\n"+
			"upserts the documents into Cosmos DB, sweeps the rows of older runs and reconciles\n"+
			"every window's rows and exact totals with the source. The rate governor's state is\n"+
			"the ledger's, so this shares the quota with a deployed function app. Progress goes\n"+
			"to stderr; the windows' outcome to stdout.\n\n"+
			"Sign in with `az login` (or any DefaultAzureCredential source); the identity needs a\n"+
			"Cost Management reader role on the scopes and Cosmos DB data access on the account.", stdout, stderr)
	var (
		c    connection
		i    ingestOptions
		from string
		to   string
	)
	c.register(fs, true)
	i.register(fs)
	fs.StringVar(&from, "from", "", "first day, YYYY-MM-DD (required)")
	fs.StringVar(&to, "to", "", "last day, YYYY-MM-DD, inclusive (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if from == "" || to == "" {
		return usagef("--from and --to are required")
	}
	if _, err := parseDay("from", from); err != nil {
		return err
	}
	if _, err := parseDay("to", to); err != nil {
		return err
	}
	return i.run(ctx, &c, from, to, stdout, stderr)
}

// ingestOptions are the flags ingest and backfill share.
type ingestOptions struct {
	work        string
	concurrency int
	every       time.Duration
}

func (i *ingestOptions) register(fs flagSet) {
	fs.StringVar(&i.work, "work", "", "folder for the downloaded report parts (default: a temporary folder, removed at the end)")
	fs.IntVar(&i.concurrency, "concurrency", 4, "windows worked on at once")
	fs.DurationVar(&i.every, "progress", 5*time.Second, "how often progress is printed to stderr")
}

// flagSet is the part of *flag.FlagSet the options register with.
type flagSet interface {
	StringVar(p *string, name, value, usage string)
	IntVar(p *int, name string, value int, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
}

// run requests the range through the pipeline's IngestHttp, runs the
// pipeline until every window is done, and prints the run.
func (i *ingestOptions) run(ctx context.Context, c *connection, from, to string, stdout, stderr io.Writer) error {
	work := i.work
	if work == "" {
		dir, err := os.MkdirTemp("", "costsync-ingest-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	p, err := c.newPipeline(work, i.concurrency, stderr)
	if err != nil {
		return err
	}
	scopes := make([]string, len(p.cfg.Scopes))
	for k, s := range p.cfg.Scopes {
		scopes[k] = s.Path
	}
	body, _ := json.Marshal(map[string]any{"scopes": scopes, "metrics": p.cfg.Metrics, "from": from, "to": to})
	res, out, err := p.host.HTTP(ctx, "IngestHttp", invocation.HTTP{URL: "costsync://local/api/ingest", Method: "POST", Body: string(body)})
	if err != nil {
		return err
	}
	if res.StatusCode != 202 {
		return usagef("%s", apiError(out))
	}
	var ans struct {
		RunID    string `json:"runId"`
		Windows  int    `json:"windows"`
		Estimate string `json:"estimate"`
	}
	if err := json.Unmarshal(out, &ans); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: %d windows of %d scope(s), %s to %s; the report requests take about %s at the Cost Details quota\n",
		ans.RunID, ans.Windows, len(scopes), from, to, ans.Estimate)

	start := time.Now()
	progress := func() (*status.Progress, error) {
		var pr status.Progress
		err := p.get(ctx, "RunStatus", "costsync://local/api/runs/"+ans.RunID, map[string]string{"id": ans.RunID}, nil, &pr)
		return &pr, err
	}
	last := ""
	report := func() {
		pr, err := progress()
		if err != nil {
			fmt.Fprintf(stderr, "progress: %v\n", err)
			return
		}
		line := fmt.Sprintf("%d/%d windows complete, %d failed, %d pending, %d rows", pr.Complete, pr.Total, pr.Failed, pr.Pending, pr.Rows)
		if line != last {
			fmt.Fprintf(stderr, "%s  (%s)\n", line, time.Since(start).Round(time.Second))
			last = line
		}
	}
	tick := time.NewTicker(max(i.every, 100*time.Millisecond))
	defer tick.Stop()
	done := make(chan error, 1)
	go func() { done <- p.host.Run(ctx, nil) }()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			running = false
		case <-tick.C:
			report()
		}
	}
	report()
	pr, err := progress()
	if err != nil {
		return err
	}
	printRun(stdout, pr)
	if pr.State != status.RunComplete {
		return errFailed
	}
	return nil
}

// printRun writes a run's windows as a table.
func printRun(w io.Writer, pr *status.Progress) {
	fmt.Fprintf(w, "run %s: %s, %d of %d windows complete, %d failed, %d rows\n\n", pr.ID, pr.State, pr.Complete, pr.Total, pr.Failed, pr.Rows)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scope\tmetric\tfrom\tto\tstate\trows\tbilled cost\tattempts\tthrottled")
	for _, win := range pr.Windows {
		var totals []string
		for _, t := range win.Totals {
			totals = append(totals, t.BilledCost.String()+" "+t.Currency)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\n", win.Scope, win.Metric, win.From, win.To, win.State, win.Rows, strings.Join(totals, ", "), win.Attempts, win.Throttles)
	}
	tw.Flush()
	for _, e := range pr.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}
