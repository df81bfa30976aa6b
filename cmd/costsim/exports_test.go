package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/landing"
)

const storageID = "/subscriptions/00000000-0000-0000-0000-000000000009/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/exportsacct"

// exportEnv is a simulator whose exports land in memory.
func exportEnv(t *testing.T) (*env, *memorySink) {
	e := newEnv(t, func(c *config) { c.blobRows = 150 })
	sink := &memorySink{blobs: map[string][]byte{}}
	e.sim.exportsState().sink = sink
	return e, sink
}

func (e *env) putExport(scope, name, apiVersion, body string) (*http.Response, []byte) {
	return e.do("PUT", "/"+scope+"/providers/Microsoft.CostManagement/exports/"+name+"?api-version="+apiVersion, body, e.armHeaders())
}

func (e *env) runExport(scope, name, apiVersion, from, to string) {
	e.t.Helper()
	body := fmt.Sprintf(`{"timePeriod":{"from":"%sT00:00:00.000Z","to":"%sT00:00:00.000Z"}}`, from, to)
	resp, b := e.do("POST", "/"+scope+"/providers/Microsoft.CostManagement/exports/"+name+"/run?api-version="+apiVersion, body, e.armHeaders())
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("run %s: %d %s", name, resp.StatusCode, b)
	}
}

func exportBody(dataset, format, compression string) string {
	return fmt.Sprintf(`{"identity":{"type":"SystemAssigned"},"location":"centralus","properties":{"format":%q,"compressionMode":%q,
		"dataOverwriteBehavior":"OverwritePreviousReport","partitionData":true,
		"definition":{"type":%q,"timeframe":"Custom","dataSet":{"granularity":"Daily","configuration":{"dataVersion":"2023-05-01"}}},
		"deliveryInfo":{"destination":{"type":"AzureBlob","resourceId":%q,"container":"cost-exports","rootFolderPath":"costs"}}}}`,
		format, compression, dataset, storageID)
}

// manifests returns the export manifests in the sink, by blob name.
func (m *memorySink) manifests() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range m.blobs {
		if strings.HasSuffix(k, "manifest.json") {
			out[strings.TrimPrefix(k, "cost-exports/")] = v
		}
	}
	return out
}

// readRun parses every partition of a run and sums billed and effective
// cost per day.
func (m *memorySink) readRun(t *testing.T, run *landing.ExportRun) (rows int, billed, effective map[string]decimal.Decimal, schema costcsv.Schema) {
	t.Helper()
	billed, effective = map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	for i, p := range run.Parts {
		m.mu.Lock()
		data, ok := m.blobs["cost-exports/"+p.Blob]
		m.mu.Unlock()
		if !ok {
			t.Fatalf("partition %s missing", p.Blob)
		}
		var r io.Reader = bytes.NewReader(data)
		if p.Format == landing.FormatCSVGzip {
			zr, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		rd, err := costcsv.NewReader(r, &costcsv.Options{File: p.Blob, Part: i})
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		schema = rd.Schema()
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			rows++
			billed[rec.Date] = billed[rec.Date].Add(rec.BilledCost)
			effective[rec.Date] = effective[rec.Date].Add(rec.EffectiveCost)
		}
	}
	return rows, billed, effective, schema
}

func TestExportRunMatchesTruth(t *testing.T) {
	e, sink := exportEnv(t)
	if resp, b := e.putExport(eaSub, "daily", "2025-03-01", exportBody("ActualCost", "Csv", "gzip")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	e.runExport(eaSub, "daily", "2025-03-01", "2026-10-01", "2026-10-31")
	first := sink.manifests()
	e.clock.advance(time.Minute)
	e.runExport(eaSub, "daily", "2025-03-01", "2026-10-01", "2026-10-31")
	mans := sink.manifests()
	if len(mans) != 1 {
		t.Fatalf("%d manifests after two runs with OverwritePreviousReport, want 1", len(mans))
	}
	for name := range first {
		if _, still := mans[name]; still {
			t.Fatal("the second run kept the first run's folder")
		}
	}
	for name, b := range mans {
		if !strings.HasPrefix(name, "costs/daily/20261001-20261031/") {
			t.Errorf("manifest at %s", name)
		}
		run, err := landing.ParseExportManifest(name, b, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if run.Window.Scope != eaSub || run.Window.Metric != "ActualCost" || run.Window.From != "2026-10-01" || run.Window.To != "2026-10-31" || len(run.Parts) < 2 {
			t.Fatalf("run %+v", run)
		}
		if run.Parts[0].Format != landing.FormatCSVGzip || !strings.HasSuffix(run.Parts[0].Blob, "/part_0_0001.csv.gz") {
			t.Errorf("part %+v", run.Parts[0])
		}
		rows, billed, _, _ := sink.readRun(t, run)
		tr := e.truth(eaSub, "ActualCost", "2026-10-01", "2026-10-31")
		if int64(rows) != run.Rows || rows != tr.Rows {
			t.Errorf("rows %d, manifest %d, truth %d", rows, run.Rows, tr.Rows)
		}
		want, _ := e.truthByDay(eaSub, "ActualCost", "2026-10-01", "2026-10-31")
		compareDays(t, "export billed cost", want, billed)
	}
}

func TestFocusExportCombinesActualAndAmortized(t *testing.T) {
	e, sink := exportEnv(t)
	if resp, b := e.putExport(mcaBP, "focus", "2025-03-01", exportBody("FocusCost", "Csv", "None")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	e.runExport(mcaBP, "focus", "2025-03-01", "2026-10-01", "2026-10-10")
	for name, b := range sink.manifests() {
		run, err := landing.ParseExportManifest(name, b, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if run.Window.Metric != "FocusCost" {
			t.Errorf("metric %q", run.Window.Metric)
		}
		_, billed, effective, schema := sink.readRun(t, run)
		if schema != costcsv.SchemaFOCUS10 {
			t.Errorf("schema %s, want %s", schema, costcsv.SchemaFOCUS10)
		}
		actual, _ := e.truthByDay(mcaBP, "ActualCost", "2026-10-01", "2026-10-10")
		amortized, _ := e.truthByDay(mcaBP, "AmortizedCost", "2026-10-01", "2026-10-10")
		compareDays(t, "FOCUS BilledCost", actual, billed)
		compareDays(t, "FOCUS EffectiveCost", amortized, effective)
	}
}

func TestLegacyExportWritesUnderscoreManifest(t *testing.T) {
	e, sink := exportEnv(t)
	if resp, b := e.putExport(eaSub, "old", "2022-10-01", exportBody("AmortizedCost", "Csv", "None")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	e.runExport(eaSub, "old", "2022-10-01", "2026-10-01", "2026-10-03")
	for name, b := range sink.manifests() {
		if !strings.HasSuffix(name, "/_manifest.json") || !bytes.Contains(b, []byte(`"manifestVersion":"2021-01-01"`)) {
			t.Fatalf("%s: %s", name, b)
		}
		lookup := func(n string) (string, string, bool) { return eaSub, "AmortizedCost", n == "old" }
		run, err := landing.ParseExportManifest(name, b, time.Now(), lookup)
		if err != nil {
			t.Fatal(err)
		}
		_, billed, _, _ := sink.readRun(t, run)
		want, _ := e.truthByDay(eaSub, "AmortizedCost", "2026-10-01", "2026-10-03")
		compareDays(t, "legacy export cost", want, billed)
	}
}

func TestExportValidation(t *testing.T) {
	e, _ := exportEnv(t)
	for _, tc := range []struct{ name, body, want string }{
		{"gzip parquet", exportBody("ActualCost", "Parquet", "gzip"), "gzip goes with Csv"},
		{"price sheet", exportBody("PriceSheet", "Csv", "None"), "PriceSheet"},
		{"no destination", `{"properties":{"format":"Csv","definition":{"type":"ActualCost","timeframe":"MonthToDate"}}}`, "destination"},
	} {
		resp, b := e.putExport(eaSub, "x", "2025-03-01", tc.body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, b)
		}
	}
	if resp, b := e.putExport(paygSub, "f", "2025-03-01", exportBody("FocusCost", "Csv", "None")); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("FOCUS for pay-as-you-go: %d %s", resp.StatusCode, b)
	}
	// Without a registered storage account the run fails, saying so.
	e2 := newEnv(t, nil)
	e2.putExport(eaSub, "d", "2025-03-01", exportBody("ActualCost", "Csv", "None"))
	resp, b := e2.do("POST", "/"+eaSub+"/providers/Microsoft.CostManagement/exports/d/run?api-version=2025-03-01",
		`{"timePeriod":{"from":"2026-10-01","to":"2026-10-02"}}`, e2.armHeaders())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "/_sim/storage") {
		t.Errorf("run without storage: %d %s", resp.StatusCode, b)
	}
}

func TestParquetExportKeepsEveryDigit(t *testing.T) {
	e, sink := exportEnv(t)
	if resp, b := e.putExport(mcaBP, "pq", "2025-03-01", exportBody("ActualCost", "Parquet", "Snappy")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	e.runExport(mcaBP, "pq", "2025-03-01", "2026-10-01", "2026-10-05")
	for name, b := range sink.manifests() {
		run, err := landing.ParseExportManifest(name, b, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]decimal.Decimal{}
		for _, p := range run.Parts {
			if p.Format != landing.FormatParquet || !strings.HasSuffix(p.Blob, ".snappy.parquet") {
				t.Fatalf("part %+v", p)
			}
			sink.mu.Lock()
			data := sink.blobs["cost-exports/"+p.Blob]
			sink.mu.Unlock()
			tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(data), nil, pqarrow.ArrowReadProperties{}, memory.NewGoAllocator())
			if err != nil {
				t.Fatal(err)
			}
			cost, date := -1, -1
			for i, f := range tbl.Schema().Fields() {
				switch f.Name {
				case "costInBillingCurrency":
					cost = i
					if _, ok := f.Type.(*arrow.Decimal128Type); !ok {
						t.Fatalf("cost column type %s, want decimal", f.Type)
					}
				case "date":
					date = i
				}
			}
			costs, dates := tbl.Column(cost).Data().Chunk(0).(*array.Decimal128), tbl.Column(date).Data().Chunk(0).(*array.String)
			for i := range costs.Len() {
				d, _ := time.Parse("01/02/2006", dates.Value(i))
				day := d.Format(time.DateOnly)
				got[day] = got[day].Add(decimal.NewFromBigInt(costs.Value(i).BigInt(), -parquetScale))
			}
			tbl.Release()
		}
		want, _ := e.truthByDay(mcaBP, "ActualCost", "2026-10-01", "2026-10-05")
		compareDays(t, "parquet cost", want, got)
	}
}
