// Command localrun is `make run`: the full costsync pipeline on the local
// stack. It starts Azurite, the Cosmos emulator, costsim (simulated Cost
// Management and managed identity) and devhost (which runs the handler),
// fires the PlanWindows timer for the trailing days of three simulated
// scopes, waits until every window is ingested into Cosmos, prints a
// per-scope, per-day summary set against costsim's ground truth, and stops
// everything it started. It exits non-zero when any number differs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/costsync/costsync/internal/pipeline"
)

func main() {
	var o pipeline.Options
	var scopes string
	flag.IntVar(&o.Days, "days", 7, "trailing days to ingest")
	flag.StringVar(&scopes, "scopes", strings.Join(pipeline.DefaultScopes, ";"), "scopes to ingest, separated by semicolons")
	flag.StringVar(&o.StackDir, "dir", ".stack", "state directory of the local stack (certificate, component logs)")
	flag.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long the pipeline may take")
	rows := flag.Int("rows-per-day", 150, "simulated cost lines per scope and day")
	flag.Parse()
	o.Scopes = strings.Split(scopes, ";")
	o.CostsimArgs = []string{"-seed", "1", "-rows-per-day", fmt.Sprint(*rows), "-blob-rows", "400", "-retry-after", "1", "-polls", "2"}
	o.Progress = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := pipeline.Run(ctx, o)
	if sum != nil {
		printSummary(sum)
	}
	if err == nil && sum != nil {
		for _, d := range sum.Days {
			if !d.Matches() {
				err = fmt.Errorf("%s %s %s: documents do not reconcile with the source", d.Scope, d.Date, d.Currency)
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "localrun: %v\n", err)
		fmt.Fprintf(os.Stderr, "component logs: %s/logs\n", o.StackDir)
		os.Exit(1)
	}
}

func printSummary(s *pipeline.Summary) {
	fmt.Printf("\ncostsync local run: %d windows, %d complete, %d failed, in %s\n\n", s.Windows, s.Complete, s.Failed, s.Elapsed.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scope\tday\tcurrency\trows\tbilled cost\tsource rows\tsource cost\tmatch\t")
	mismatches := 0
	for _, d := range s.Days {
		match := "exact"
		if !d.Matches() {
			match = "MISMATCH"
			mismatches++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t\n", shortScope(d.Scope), d.Date, d.Currency, d.Rows, d.BilledCost, d.SourceRows, d.SourceCost, match)
	}
	tw.Flush()
	for _, e := range s.Errors {
		fmt.Println("error:", e)
	}
	if mismatches == 0 && len(s.Days) > 0 {
		fmt.Printf("\nall %d scope-days reconcile exactly with the source\n", len(s.Days))
	} else if mismatches > 0 {
		fmt.Printf("\n%d scope-days do NOT reconcile\n", mismatches)
	}
}

// shortScope keeps the last two segments of a scope for the table.
func shortScope(s string) string {
	parts := strings.Split(s, "/")
	if len(parts) <= 2 {
		return s
	}
	return ".../" + strings.Join(parts[len(parts)-2:], "/")
}
