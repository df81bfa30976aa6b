package handlers

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/internal/realdata"
	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/store"
)

// exportManifest is a 2024-04-01 manifest.json of an ActualCost run.
func exportManifest(runID, submitted string, blobs ...string) []byte {
	var list []string
	for _, b := range blobs {
		list = append(list, fmt.Sprintf(`{"blobName":%q,"byteCount":1}`, b))
	}
	return []byte(fmt.Sprintf(`{"manifestVersion":"2024-04-01","blobCount":%d,"exportConfig":{"exportName":"daily","resourceId":"/%s/providers/Microsoft.CostManagement/exports/daily","dataVersion":"2023-05-01","type":"ActualCost","timeFrame":"MonthToDate"},
		"deliveryConfig":{"partitionData":true,"dataOverwriteBehavior":"OverwritePreviousReport","fileFormat":"Csv","compressionMode":"None","rootFolderPath":"costs"},
		"runInfo":{"executionType":"Scheduled","submittedTime":%q,"runId":%q,"startDate":"2023-09-01T00:00:00","endDate":"2023-09-30T00:00:00Z"},"blobs":[%s]}`,
		len(blobs), testScope, submitted, runID, strings.Join(list, ",")))
}

func (r *rig) exportArrives(t *testing.T, name string, man []byte) {
	t.Helper()
	req := invocation.NewBlobRequest("manifest", invocation.BlobInfo{Content: man, URI: "https://a.blob.core.windows.net/cost-exports/" + name + "manifest.json",
		Tokens: map[string]string{"name": name}, ContentLength: int64(len(man)), LastModified: time.Date(2023, 9, 30, 6, 0, 0, 0, time.UTC)}, sys)
	if code, resp := r.post(t, "IngestExport", req); code != 200 {
		t.Fatalf("IngestExport: %d %v", code, resp.Logs)
	}
}

// TestExportRunsReplaceEachOther: a run's partitions (CSV and gzip CSV) are
// ingested from the exports container; a later run of the month replaces
// it; an earlier run arriving late changes nothing.
func TestExportRunsReplaceEachOther(t *testing.T) {
	csv, err := os.ReadFile(realdata.Path(t, "finops-toolkit/powershell-test-assets/EA_ActualCost_Small.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(csv), "\n")
	header, body := lines[0], lines[1:]
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(header + strings.Join(body[5:], "")))
	zw.Close()
	r := newRig(t, nil)
	dir1 := "costs/daily/20230901-20230930/run-1/"
	r.land.parts[dir1+"part_0_0001.csv"] = []byte(header + strings.Join(body[:5], ""))
	r.land.parts[dir1+"part_0_0002.csv.gz"] = gz.Bytes()
	r.exportArrives(t, dir1, exportManifest("run-1", "2023-09-30T05:00:00.1234567Z", dir1+"part_0_0001.csv", dir1+"part_0_0002.csv.gz"))
	r.ingestAll(t)
	wid := store.WindowID(testScope, "ActualCost", "2023-09-01", "2023-09-30")
	wd, err := r.store.GetWindow(context.Background(), testScope, wid)
	if err != nil {
		t.Fatal(err)
	}
	if wd.State != store.StateComplete || wd.Rows != 11 || !wd.Totals[0].BilledCost.Equal(decimal.RequireFromString("8.5450077867419368")) {
		t.Fatalf("first run: state %s rows %d totals %+v errors %v", wd.State, wd.Rows, wd.Totals, wd.Errors)
	}

	// The next run of September has only the first three lines.
	dir2 := "costs/daily/20230901-20230930/run-2/"
	r.land.parts[dir2+"part_0_0001.csv"] = []byte(header + strings.Join(body[:3], ""))
	r.land.manifests = map[string][]byte{}
	r.exportArrives(t, dir2, exportManifest("run-2", "2023-10-01T05:00:00Z", dir2+"part_0_0001.csv"))
	r.ingestAll(t)
	wd, _ = r.store.GetWindow(context.Background(), testScope, wid)
	if wd.State != store.StateComplete || wd.Rows != 3 {
		t.Fatalf("second run: state %s rows %d errors %v", wd.State, wd.Rows, wd.Errors)
	}
	stored, _ := r.store.CountWindow(context.Background(), testScope, "ActualCost", dayList(wd.Days))
	if rowsIn(stored) != 3 {
		t.Fatalf("stored rows after the second run %d, want 3: the first run's are swept", rowsIn(stored))
	}

	// The first run's manifest delivered again, late: refused.
	r.land.manifests = map[string][]byte{}
	r.exportArrives(t, dir1, exportManifest("run-1", "2023-09-30T05:00:00.1234567Z", dir1+"part_0_0001.csv", dir1+"part_0_0002.csv.gz"))
	r.ingestAll(t)
	if again, _ := r.store.CountWindow(context.Background(), testScope, "ActualCost", dayList(wd.Days)); rowsIn(again) != 3 {
		t.Fatalf("a late older run changed the documents: %d rows", rowsIn(again))
	}
}

func rowsIn(days []store.DayTotal) int64 {
	n := int64(0)
	for _, d := range days {
		n += d.Rows
	}
	return n
}

// TestExportOfAnotherDatasetIgnored: a price sheet run is not cost data.
func TestExportOfAnotherDatasetIgnored(t *testing.T) {
	man, err := os.ReadFile(realdata.Path(t, "azure-docs/exports-manifest-example-2024-04-01.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, nil)
	r.exportArrives(t, "folder/sample/20250301-20250331/bbac73f1/", man)
	if len(r.land.manifests) != 0 {
		t.Fatalf("a ReservationRecommendations run was handed to ingestion")
	}
}

// TestLegacyExportNamedInSettings: a _manifest.json (2021-01-01) says only
// its blobs; the setting gives scope and dataset, the folder the month, the
// blob's last-modified time the generation.
func TestLegacyExportNamedInSettings(t *testing.T) {
	csv, err := os.ReadFile(realdata.Path(t, "finops-toolkit/powershell-test-assets/EA_AmortizedCost_Small.csv"))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, nil)
	r.srv.d.Config.LegacyExports = map[string]config.LegacyExport{"amortized": {Scope: testScope, Dataset: "AmortizedCost"}}
	dir := "old/amortized/20230901-20230930/"
	r.land.parts[dir+"amortized_1.csv"] = csv
	man := []byte(`{"manifestVersion":"2021-01-01","dataFormat":"csv","blobCount":1,"byteCount":1,"dataRowCount":28,"blobs":[{"blobName":"amortized_1.csv","byteCount":1,"dataRowCount":28,"headerRowCount":1}]}`)
	r.exportArrives(t, dir+"_", man)
	r.ingestAll(t)
	wd, err := r.store.GetWindow(context.Background(), testScope, store.WindowID(testScope, "AmortizedCost", "2023-09-01", "2023-09-30"))
	if err != nil {
		t.Fatal(err)
	}
	if wd.State != store.StateComplete || wd.Rows != 28 || wd.Generation != time.Date(2023, 9, 30, 6, 0, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("legacy run: state %s rows %d generation %d errors %v", wd.State, wd.Rows, wd.Generation, wd.Errors)
	}
	// Not named in the settings: a clear permanent error, nothing landed.
	r.srv.d.Config.LegacyExports = nil
	r.land.manifests = map[string][]byte{}
	req := invocation.NewBlobRequest("manifest", invocation.BlobInfo{Content: man, URI: "https://a/cost-exports/x", Tokens: map[string]string{"name": dir + "_"}, LastModified: time.Now()}, sys)
	code, resp := r.post(t, "IngestExport", req)
	if code != 200 || !strings.Contains(strings.Join(resp.Logs, " "), "legacy exports setting") || len(r.land.manifests) != 0 {
		t.Fatalf("unnamed legacy export: %d %v", code, resp.Logs)
	}
}

// parquetOf writes a CSV file as a Parquet file of string columns.
func parquetOf(t *testing.T, csvText []byte) []byte {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(csvText, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	fields := make([]arrow.Field, len(recs[0]))
	for i, h := range recs[0] {
		fields[i] = arrow.Field{Name: h, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	for _, row := range recs[1:] {
		for i, v := range row {
			b.Field(i).(*array.StringBuilder).Append(v)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestParquetExportIngested: a Parquet run is read at random from where the
// export wrote it, with every row and the exact total.
func TestParquetExportIngested(t *testing.T) {
	csvText, err := os.ReadFile(realdata.Path(t, "finops-toolkit/powershell-test-assets/EA_ActualCost_Small.csv"))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, nil).withSources(&fakeSources{})
	dir := "costs/daily/20230901-20230930/run-pq/"
	r.land.parts[dir+"part_0_0001.snappy.parquet"] = parquetOf(t, csvText)
	man := bytes.Replace(exportManifest("run-pq", "2023-09-30T05:00:00Z", dir+"part_0_0001.snappy.parquet"),
		[]byte(`"fileFormat":"Csv","compressionMode":"None"`), []byte(`"fileFormat":"Parquet","compressionMode":"Snappy"`), 1)
	r.exportArrives(t, dir, man)
	r.ingestAll(t)
	wd, err := r.store.GetWindow(context.Background(), testScope, store.WindowID(testScope, "ActualCost", "2023-09-01", "2023-09-30"))
	if err != nil {
		t.Fatal(err)
	}
	if wd.State != store.StateComplete || wd.Rows != 11 || !wd.Totals[0].BilledCost.Equal(decimal.RequireFromString("8.5450077867419368")) {
		t.Fatalf("parquet run: state %s rows %d totals %+v errors %v", wd.State, wd.Rows, wd.Totals, wd.Errors)
	}
}
