package main

import (
	"context"
	"io"
	"time"

	"github.com/costsync/costsync/shared/window"
)

func init() {
	verbs = append(verbs, verb{Name: "backfill", Short: "ingest the 13 months Cost Details serves (or --from/--to) in this process", Run: runBackfill})
}

func runBackfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backfill", "[--scope SCOPE]... [--from YYYY-MM-DD] [--to YYYY-MM-DD] [flags]",
		"Seeds the store: ingests, in this process, every configured scope (or the --scope ones)\n"+
			"month by month from the first day Cost Details serves (the first of the month 13\n"+
			"months ago) to yesterday, or over --from/--to. It is `costsync ingest` with month\n"+
			"windows and these defaults; the rate governor paces the report requests (10 per\n"+
			"scope an hour), so 14 months of one scope take a little over an hour. Progress goes\n"+
			"to stderr.", stdout, stderr)
	var (
		c        connection
		i        ingestOptions
		from, to string
	)
	c.register(fs, true)
	i.register(fs)
	now := time.Now().UTC()
	fs.StringVar(&from, "from", window.Oldest(now).Format(window.DateLayout), "first day, YYYY-MM-DD")
	fs.StringVar(&to, "to", window.Day(now).AddDate(0, 0, -1).Format(window.DateLayout), "last day, YYYY-MM-DD, inclusive")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if _, err := parseDay("from", from); err != nil {
		return err
	}
	if _, err := parseDay("to", to); err != nil {
		return err
	}
	return i.run(ctx, &c, from, to, stdout, stderr)
}
