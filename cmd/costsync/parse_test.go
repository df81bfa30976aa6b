package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kylelemons/godebug/diff"
	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/internal/parquetgen"
	"github.com/costsync/costsync/internal/realdata"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// runIn runs the command line in dir (file names in the output are then
// relative to it, free of machine paths) and returns the exit code, stdout
// and stderr.
func runIn(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	if dir != "" {
		t.Chdir(dir)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (-want +got):\n%s", path, diff.Diff(string(want), got))
	}
}

// TestParseRealFilesJSON parses every real cost file with --json. The
// quarantined lines in the golden file are the two the files themselves
// explain (see shared/costcsv's real_test.go, which checks each reason
// against the file): opencost/headersets/BOM.csv has one data line that is
// empty but for its date, so no PreTaxCost; every data line of
// opencost/values/Template.csv has 10 fields under an 11-column header.
func TestParseRealFilesJSON(t *testing.T) {
	real := realdata.Dir(t)
	goldenPath, _ := filepath.Abs(filepath.Join("testdata", "parse-real.jsonl"))
	files := realdata.CostFiles(t)
	code, stdout, stderr := runIn(t, real, append([]string{"parse", "--json"}, files...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	golden(t, goldenPath, stdout)

	// Each line is one file's object, with exactly the documented keys.
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != len(files) {
		t.Fatalf("%d lines for %d files", len(lines), len(files))
	}
	for i, line := range lines {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"file", "quarantined", "rows", "schema", "totals"}; !slices.Equal(keys, want) {
			t.Errorf("line %d keys %v, want %v", i+1, keys, want)
		}
		var res parseResult
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatal(err)
		}
		if res.File != files[i] {
			t.Errorf("line %d is %s, want %s", i+1, res.File, files[i])
		}
	}
}

// TestParseTotalsExact checks the verb's totals against the EA file's own
// Cost column summed independently: to the last digit, not to the cent.
func TestParseTotalsExact(t *testing.T) {
	real := realdata.Dir(t)
	code, stdout, stderr := runIn(t, real, "parse", "--json", "finops-toolkit/powershell-test-assets/EA_ActualCost_Small.csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res parseResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	sum := decimal.Zero
	for _, d := range res.Totals {
		if d.Currency != "USD" {
			t.Errorf("currency %q", d.Currency)
		}
		sum = sum.Add(decimal.RequireFromString(d.BilledCost))
	}
	if res.Rows != 11 || res.Schema != "ea" || !sum.Equal(decimal.RequireFromString("8.5450077867419368")) {
		t.Errorf("rows %d, schema %s, total %s; want 11, ea, 8.5450077867419368", res.Rows, res.Schema, sum)
	}
}

func TestParseTable(t *testing.T) {
	real := realdata.Dir(t)
	goldenPath, _ := filepath.Abs(filepath.Join("testdata", "parse-table.txt"))
	code, stdout, stderr := runIn(t, real, "parse",
		"finops-toolkit/powershell-test-assets/EA_AmortizedCost_Small.csv",
		"opencost/headersets/BOM.csv",
		"opencost/headersets/EnterpriseCamel.csv")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	golden(t, goldenPath, stdout)
}

// TestParseFailures: a missing file, an unrecognised header and a corrupt
// gzip file are each named on stderr, the good files are still printed,
// and the exit code is 1.
func TestParseFailures(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := "Date,CostInBillingCurrency,BillingCurrencyCode\n09/01/2023,1.5E-05,EUR\n09/01/2023,-0.000005,EUR\n"
	write("good.csv", []byte(good))
	write("unknown.csv", []byte("Name,Amount\nx,1\n"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(good))
	zw.Close()
	write("good.csv.gz", gz.Bytes())
	write("cut.csv.gz", gz.Bytes()[:gz.Len()-6])

	code, stdout, stderr := runIn(t, dir, "parse", "--json", "good.csv", "missing.csv", "unknown.csv", "good.csv.gz", "cut.csv.gz")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := `{"file":"good.csv","schema":"ea","rows":2,"quarantined":[],"totals":[{"date":"2023-09-01","currency":"EUR","billedCost":"0.00001"}]}
{"file":"good.csv.gz","schema":"ea","rows":2,"quarantined":[],"totals":[{"date":"2023-09-01","currency":"EUR","billedCost":"0.00001"}]}
`
	if stdout != want {
		t.Errorf("stdout (-want +got):\n%s", diff.Diff(want, stdout))
	}
	for _, s := range []string{
		"missing.csv: no such file or directory",
		"file unknown.csv: unrecognised header", "ea: missing date", // the missing columns are named
		"cut.csv.gz",
		"3 of 5 files could not be parsed",
	} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr does not say %q:\n%s", s, stderr)
		}
	}
}

// TestParseParquet: a Parquet export goes through the same verb, its
// decimal and timestamp columns read exactly.
func TestParseParquet(t *testing.T) {
	dir := t.TempDir()
	data := parquetgen.Write(t, []parquetgen.Column{
		{Name: "BilledCost", Kind: parquetgen.DecimalFixed, Scale: 28},
		{Name: "EffectiveCost", Kind: parquetgen.DecimalFixed, Scale: 28},
		{Name: "BillingCurrency", Kind: parquetgen.Text},
		{Name: "ChargePeriodStart", Kind: parquetgen.TimestampMicros},
	}, [][]string{
		{"0.4834626378113516439680699237", "1", "EUR", "2025-10-16T00:00:00Z"},
		{"-0.0000000000000000000000000001", "0", "EUR", "2025-10-16T00:00:00Z"},
	})
	if err := os.WriteFile(filepath.Join(dir, "part_0_0001.snappy.parquet"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runIn(t, dir, "parse", "--json", "part_0_0001.snappy.parquet")
	want := `{"file":"part_0_0001.snappy.parquet","schema":"focus-1.0","rows":2,"quarantined":[],"totals":[{"date":"2025-10-16","currency":"EUR","billedCost":"0.4834626378113516439680699236"}]}` + "\n"
	if code != 0 || stdout != want {
		t.Errorf("exit %d, stderr %q, stdout (-want +got):\n%s", code, stderr, diff.Diff(want, stdout))
	}
}

func TestParseUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"parse"}, 2, "", "no FILE given"},
		{[]string{"parse", "--bogus", "x.csv"}, 2, "", "flag provided but not defined"},
		{[]string{"parse", "--help"}, 0, "Usage: costsync parse [--json] FILE...", ""},
		{[]string{"help"}, 0, "parse cost files", ""},
	} {
		code, stdout, stderr := runIn(t, "", tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}
