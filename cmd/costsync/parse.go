package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/costsync/costsync/shared/costcsv"
)

func init() {
	verbs = append(verbs, verb{
		Name:  "parse",
		Short: "parse cost files (CSV, gzip CSV, Parquet): schema, rows, quarantined lines, exact totals",
		Run:   runParse,
	})
}

const parseAbout = `Parses each cost file as ingestion would and prints, per file, the schema
recognised from its header, the number of accepted lines, every quarantined
line (line number, column, reason) and the exact billed cost per usage day
and billing currency (EA/MCA CostInBillingCurrency or Cost, pay-as-you-go
PreTaxCost, FOCUS BilledCost). CSV, gzip-compressed CSV and Parquet files are
told apart by their content. Nothing is written anywhere.

With --json, one JSON object per file per line:
  {"file":"...","schema":"...","rows":N,"quarantined":[{"line":L,"column":"...","reason":"..."}],
   "totals":[{"date":"YYYY-MM-DD","currency":"EUR","billedCost":"<exact decimal>"}]}

A file that cannot be read (missing, unrecognised header, corrupt) is
reported on stderr and the others are still parsed; the exit code is then 1.`

// parseResult is what parse prints for one file; with --json it is the
// line's JSON object, fields in this order.
type parseResult struct {
	File        string           `json:"file"`
	Schema      costcsv.Schema   `json:"schema"`
	Rows        int              `json:"rows"`
	Quarantined []quarantinedRow `json:"quarantined"`
	Totals      []dayTotal       `json:"totals"`

	format costcsv.Format
}

type quarantinedRow struct {
	Line   int    `json:"line"`
	Column string `json:"column"`
	Reason string `json:"reason"`
}

type dayTotal struct {
	Date       string `json:"date"`
	Currency   string `json:"currency"`
	BilledCost string `json:"billedCost"`
	rows       int
}

func runParse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("parse", "[--json] FILE...", parseAbout, stdout, stderr)
	asJSON := fs.Bool("json", false, "print one JSON object per file per line")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() == 0 {
		return usagef("no FILE given")
	}
	failed := 0
	for _, name := range fs.Args() {
		res, err := parseFile(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed++
			fmt.Fprintf(stderr, "costsync parse: %v\n", err)
			continue
		}
		if *asJSON {
			b, err := json.Marshal(res)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			printTable(stdout, res)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files could not be parsed", failed, fs.NArg())
	}
	return nil
}

// parseFile reads one file to the end.
func parseFile(ctx context.Context, name string) (*parseResult, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory", name)
	}
	r, err := costcsv.Open(f, st.Size(), &costcsv.Options{File: name})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	res := &parseResult{File: name, Schema: r.Schema(), format: r.Format(), Quarantined: []quarantinedRow{}, Totals: []dayTotal{}}
	var totals costcsv.Totals
	for n := 0; ; n++ {
		if n%10000 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rec, err := r.Next()
		var le *costcsv.LineError
		switch {
		case errors.Is(err, io.EOF):
			res.Rows = totals.Rows()
			for _, d := range totals.ByDayCurrency() {
				res.Totals = append(res.Totals, dayTotal{Date: d.Date, Currency: d.Currency, BilledCost: d.BilledCost.String(), rows: d.Rows})
			}
			return res, nil
		case errors.As(err, &le):
			res.Quarantined = append(res.Quarantined, quarantinedRow{Line: le.Line, Column: le.Column, Reason: le.Reason})
		case err != nil:
			return nil, err
		default:
			totals.Add(rec)
		}
	}
}

func printTable(w io.Writer, res *parseResult) {
	fmt.Fprintf(w, "%s\n  schema %s, %s, %d rows, %d quarantined\n", res.File, res.Schema, res.format, res.Rows, len(res.Quarantined))
	if len(res.Totals) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  date\tcurrency\trows\tbilled cost\t")
		for _, d := range res.Totals {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t\n", d.Date, d.Currency, d.rows, d.BilledCost)
		}
		tw.Flush()
	}
	for _, q := range res.Quarantined {
		col := ""
		if q.Column != "" {
			col = " column " + q.Column
		}
		fmt.Fprintf(w, "  quarantined: line %d%s: %s\n", q.Line, col, q.Reason)
	}
	fmt.Fprintln(w)
}
