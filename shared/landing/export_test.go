package landing

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/costsync/costsync/internal/realdata"
)

func TestParseExportManifests(t *testing.T) {
	current, err := os.ReadFile(realdata.Path(t, "azure-docs/exports-manifest-example-2024-04-01.json"))
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := os.ReadFile(realdata.Path(t, "azure-docs/exports-v1-_manifest-example-2021-01-01.json"))
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(name string) (string, string, bool) {
		if name == "daily" {
			return "subscriptions/00000000-0000-0000-0000-000000000001", "AmortizedCost", true
		}
		return "", "", false
	}
	modified := time.Date(2021, 2, 1, 3, 4, 5, 0, time.UTC)

	t.Run("documented 2024-04-01", func(t *testing.T) {
		run, err := ParseExportManifest("folder/sample/20250301-20250331/bbac73f1/manifest.json", current, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// startDate has no zone, endDate has Z: both UTC.
		if run.Window.Scope != "providers/Microsoft.Billing/billingAccounts/1234567" || run.Window.From != "2025-03-01" || run.Window.To != "2025-03-21" {
			t.Errorf("window %+v", run.Window)
		}
		if run.Dataset != "ReservationRecommendations" || run.IsCost() {
			t.Errorf("dataset %q counted as cost: %v", run.Dataset, run.IsCost())
		}
		if run.Generation != time.Date(2025, 3, 21, 21, 4, 6, 523444700, time.UTC).UnixMilli() || run.RunID != "bbac73f1-9a05-4de6-84ab-c72b568a03b4" {
			t.Errorf("generation %d run %q", run.Generation, run.RunID)
		}
		if len(run.Parts) != 1 || run.Parts[0].Container != ExportsContainer || run.Parts[0].Format != FormatCSV || strings.HasPrefix(run.Parts[0].Blob, " ") {
			t.Errorf("parts %+v", run.Parts)
		}
	})
	t.Run("documented 2021-01-01", func(t *testing.T) {
		run, err := ParseExportManifest("exports/daily/20210101-20210131/7c1a/_manifest.json", legacy, modified, lookup)
		if err != nil {
			t.Fatal(err)
		}
		if !run.IsCost() || run.Window.Metric != "AmortizedCost" || run.Window.From != "2021-01-01" || run.Window.To != "2021-01-31" || run.Generation != modified.UnixMilli() {
			t.Errorf("run %+v", run)
		}
		if len(run.Parts) != 1 || run.Parts[0].Blob != "exports/daily/20210101-20210131/7c1a/blobName.csv" || run.Rows != 136 {
			t.Errorf("parts %+v rows %d", run.Parts, run.Rows)
		}
	})
	t.Run("2021-01-01 of an export nobody named", func(t *testing.T) {
		_, err := ParseExportManifest("exports/other/20210101-20210131/_manifest.json", legacy, modified, lookup)
		if err == nil || !strings.Contains(err.Error(), `"other"`) {
			t.Fatalf("got %v, want an error naming the export", err)
		}
	})
	t.Run("formats", func(t *testing.T) {
		m := `{"manifestVersion":"2024-04-01","dataRowCount":5,"exportConfig":{"exportName":"e","resourceId":"/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.CostManagement/exports/e","type":"FocusCost"},
			"deliveryConfig":{"fileFormat":"Parquet","compressionMode":"Snappy"},"runInfo":{"runId":"r","submittedTime":"2024-02-03T01:02:03+00:00","startDate":"2024-01-01T00:00:00","endDate":"2024-01-31T00:00:00"},
			"blobs":[{"blobName":"d/e/20240101-20240131/r/part_0_0001.snappy.parquet"},{"blobName":"d/e/20240101-20240131/r/part_1_0001.csv.gz"}]}`
		run, err := ParseExportManifest("d/e/20240101-20240131/r/manifest.json", []byte(m), time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if run.Window.Metric != "FocusCost" || run.Parts[0].Format != FormatParquet || run.Parts[1].Format != FormatCSVGzip {
			t.Errorf("run %+v", run)
		}
		if _, err := ParseExportManifest("m.json", []byte(`{"manifestVersion":"2024-04-01","blobs":[{"blobName":"../x"}]}`), time.Time{}, nil); err == nil {
			t.Error("a blob name with .. accepted")
		}
	})
}
