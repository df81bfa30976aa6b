// Command costsync is the operator's command line: it provisions the stores,
// runs ingestion and backfill in one process, shows status, verifies windows
// and parses cost files. Every verb has --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
)

// verb is one subcommand. Verbs register themselves by appending to verbs in
// an init function, one file per verb.
type verb struct {
	Name  string
	Short string // one line for the overview
	// Run runs the verb with its arguments (after the verb's name). A
	// *usageError makes main print the verb's usage and exit 2.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var verbs []verb

// usageError is a mistake in the command line, as opposed to a failure.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		overview(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	i := slices.IndexFunc(verbs, func(v verb) bool { return v.Name == args[0] })
	if i < 0 {
		fmt.Fprintf(stderr, "costsync: unknown command %q\n\n", args[0])
		overview(stderr)
		return 2
	}
	err := verbs[i].Run(ctx, args[1:], stdout, stderr)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "costsync %s: %s\nRun 'costsync %s --help' for usage.\n", args[0], ue.msg, args[0])
		return 2
	default:
		fmt.Fprintf(stderr, "costsync %s: %v\n", args[0], err)
		return 1
	}
}

func overview(w io.Writer) {
	fmt.Fprintln(w, "costsync keeps a Cosmos DB copy of Azure cost data complete, exact and current.")
	fmt.Fprintln(w, "\nUsage: costsync COMMAND [flags]\n\nCommands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	sorted := slices.Clone(verbs)
	slices.SortFunc(sorted, func(a, b verb) int { return strings.Compare(a.Name, b.Name) })
	for _, v := range sorted {
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, v.Short)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun 'costsync COMMAND --help' for a command's flags.")
}

// newFlags returns a flag set for a verb whose --help prints usage (a
// one-line synopsis and a description) and the flags to stdout, and whose
// errors go to stderr.
func newFlags(name, synopsis, about string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: costsync %s %s\n\n%s\n", name, synopsis, about)
		fs.SetOutput(stdout)
		fmt.Fprintln(stdout, "\nFlags:")
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	return fs
}
