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
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/costsync/costsync/internal/otlprecv"
	"github.com/costsync/costsync/internal/pipeline"
	"github.com/costsync/costsync/shared/telemetry"
)

func main() {
	var o pipeline.Options
	var scopes string
	flag.IntVar(&o.Days, "days", 7, "trailing days to ingest")
	flag.StringVar(&scopes, "scopes", strings.Join(pipeline.DefaultScopes, ";"), "scopes to ingest, separated by semicolons")
	flag.StringVar(&o.StackDir, "dir", ".stack", "state directory of the local stack (certificate, component logs)")
	flag.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long the pipeline may take")
	rows := flag.Int("rows-per-day", 150, "simulated cost lines per scope and day")
	otlp := flag.String("otlp", "local", "where the handler's traces and metrics go: local (an OTLP receiver in this process, whose counts are printed), off, or an OTLP/HTTP endpoint URL")
	flag.Parse()
	o.Scopes = strings.Split(scopes, ";")
	o.CostsimArgs = []string{"-seed", "1", "-rows-per-day", fmt.Sprint(*rows), "-blob-rows", "400", "-retry-after", "1", "-polls", "2"}
	o.Progress = os.Stdout

	recv, err := telemetryTo(*otlp, &o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "localrun: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := pipeline.Run(ctx, o)
	if sum != nil {
		printSummary(sum)
		printTelemetry(*otlp, recv)
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

// telemetryTo points the handler's OpenTelemetry exporters at the
// destination the -otlp flag names; for "local" it starts a receiver.
func telemetryTo(dest string, o *pipeline.Options) (*otlprecv.Receiver, error) {
	o.Env = map[string]string{telemetry.KeyServiceName: "costsync-localrun"}
	switch dest {
	case "off":
		o.Env[telemetry.KeySDKDisabled] = "true"
		return nil, nil
	case "local":
		recv, err := otlprecv.Start(nil)
		if err != nil {
			return nil, err
		}
		o.Env[telemetry.KeyEndpoint] = recv.URL
		return recv, nil
	}
	u, err := url.Parse(dest)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-otlp %q: want local, off or an http(s) URL", dest)
	}
	o.Env[telemetry.KeyEndpoint] = dest
	return nil, nil
}

// printTelemetry says where the telemetry went and, when localrun received
// it, its figures.
func printTelemetry(dest string, recv *otlprecv.Receiver) {
	switch {
	case recv != nil:
		recv.Close()
		fmt.Printf("\ntelemetry: OTLP/HTTP to %s (localrun's own receiver)\n", recv.URL)
		pipeline.ReadFigures(recv).Print(os.Stdout)
	case dest == "off":
		fmt.Printf("\ntelemetry: off\n")
	default:
		fmt.Printf("\ntelemetry: OTLP/HTTP to %s (the figures are in that backend)\n", dest)
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
