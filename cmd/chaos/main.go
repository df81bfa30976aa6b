// Command chaos is `make chaos`: it runs fault scenarios on the local stack,
// each on a fresh stack, and prints one line per scenario:
//
//	scenario NAME: windows=W docs=D expected=E totals=exact
//
// (or totals=MISMATCH with the difference). W counts the windows that ended
// complete out of those planned, D the cost documents in Cosmos and E the
// lines costsim's ground truth holds for the same days. It exits non-zero when
// any scenario does not end with every window complete and exact totals.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	var o runOptions
	only := flag.String("run", "", "comma-separated scenario names to run (default: all)")
	list := flag.Bool("list", false, "list the scenarios and exit")
	flag.StringVar(&o.dir, "dir", ".stack/chaos", "state directory of the local stacks (one per scenario, logs under NAME/logs)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long one scenario may take")
	flag.BoolVar(&o.verbose, "v", false, "print progress")
	flag.Parse()
	if *list {
		for _, s := range scenarios {
			fmt.Printf("%-20s %s\n", s.Name, s.About)
		}
		return
	}
	selected, err := pick(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := 0
	for _, s := range selected {
		r, err := runScenario(ctx, s, o)
		fmt.Println(r.Line(s.Name))
		if err != nil {
			fmt.Fprintf(os.Stderr, "scenario %s: %v (logs: %s)\n", s.Name, err, o.logDir(s.Name))
		}
		if err != nil || !r.OK() {
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "chaos: %d of %d scenarios failed\n", failed, len(selected))
		os.Exit(1)
	}
}

// pick returns the scenarios named in a comma-separated list, or all.
func pick(names string) ([]Scenario, error) {
	if strings.TrimSpace(names) == "" {
		return scenarios, nil
	}
	var out []Scenario
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		s, ok := lookup(n)
		if !ok {
			var known []string
			for _, s := range scenarios {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("unknown scenario %q; known: %s", n, strings.Join(known, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

func lookup(name string) (Scenario, bool) {
	for _, s := range scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}
