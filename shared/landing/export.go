package landing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/costsync/costsync/shared/window"
)

// Native Cost Management exports (cost-apis.md §6) write their runs into a
// container of the customer's storage account: a folder per export, month
// (YYYYMMDD-YYYYMMDD) and run, holding the run's partitions and a manifest,
// written last. Two manifest formats exist:
//
//   - manifest.json, manifestVersion 2024-04-01 ("improved exports"): the
//     export's resource id (so its scope), dataset type, run id, submitted
//     time and period, delivery format and the blobs, named relative to
//     the container;
//   - _manifest.json, manifestVersion 2021-01-01 (older partitioned
//     exports): only the blobs; scope and dataset come from the setting
//     that names the export, the period from the folder.

// ExportsContainer is the container the IngestExport trigger watches.
const ExportsContainer = "cost-exports"

// ExportRun is one run of an export, read from its manifest.
type ExportRun struct {
	// Name is the export's name; Dataset its type (ActualCost,
	// AmortizedCost, FocusCost, Usage, or another dataset such as
	// PriceSheet, which is not cost data).
	Name, Dataset string
	// Window is the scope, metric (the store's dataset) and days of the run.
	Window window.Window
	// RunID and Submitted identify the run; Generation is Submitted in Unix
	// milliseconds: a later run of the same month replaces an earlier one.
	RunID      string
	Submitted  time.Time
	Generation int64
	// Parts are the run's blobs in ExportsContainer.
	Parts []Part
	// Rows is the manifest's dataRowCount (-1 when absent).
	Rows int64
}

// IsCost tells whether the run's dataset is cost and usage data.
func (r *ExportRun) IsCost() bool { return r.Window.Metric != "" }

// LegacyLookup returns the scope and dataset of an export of the older
// format by its name (which its _manifest.json does not say); ok is false
// for an export it does not know.
type LegacyLookup func(name string) (scope, dataset string, ok bool)

// exportManifest is both formats' fields.
type exportManifest struct {
	ManifestVersion string `json:"manifestVersion"`
	DataRowCount    *int64 `json:"dataRowCount"`
	ExportConfig    *struct {
		ExportName string `json:"exportName"`
		ResourceID string `json:"resourceId"`
		Type       string `json:"type"`
	} `json:"exportConfig"`
	DeliveryConfig *struct {
		FileFormat      string `json:"fileFormat"`
		CompressionMode string `json:"compressionMode"`
	} `json:"deliveryConfig"`
	RunInfo *struct {
		RunID         string `json:"runId"`
		SubmittedTime string `json:"submittedTime"`
		StartDate     string `json:"startDate"`
		EndDate       string `json:"endDate"`
	} `json:"runInfo"`
	Blobs []struct {
		BlobName     string `json:"blobName"`
		DataRowCount *int64 `json:"dataRowCount"`
	} `json:"blobs"`
	DataFormat string `json:"dataFormat"`
}

// reMonthFolder is the period folder of an export run.
var reMonthFolder = regexp.MustCompile(`^(\d{8})-(\d{8})$`)

// ParseExportManifest reads the manifest at name (its path inside the
// exports container). modified is the blob's last-modified time, the
// generation of a 2021-01-01 run; legacy names the exports of that format
// (nil: none).
func ParseExportManifest(name string, b []byte, modified time.Time, legacy LegacyLookup) (*ExportRun, error) {
	var m exportManifest
	if err := json.Unmarshal(bytes.TrimPrefix(b, []byte("\ufeff")), &m); err != nil {
		return nil, fmt.Errorf("export manifest %s: %w", name, err)
	}
	dir := path.Dir(name)
	run := &ExportRun{Rows: -1}
	if m.DataRowCount != nil {
		run.Rows = *m.DataRowCount
	}
	switch {
	case m.ManifestVersion >= "2023" && m.ExportConfig != nil && m.RunInfo != nil:
		if err := run.fromCurrent(&m); err != nil {
			return nil, fmt.Errorf("export manifest %s: %w", name, err)
		}
	case m.ManifestVersion == "2021-01-01" || (m.ExportConfig == nil && m.RunInfo == nil):
		if err := run.fromLegacy(name, &m, modified, legacy); err != nil {
			return nil, fmt.Errorf("export manifest %s: %w", name, err)
		}
	default:
		return nil, fmt.Errorf("export manifest %s: manifestVersion %q without exportConfig and runInfo", name, m.ManifestVersion)
	}
	format := FormatCSV
	if dc := m.DeliveryConfig; dc != nil {
		switch {
		case strings.EqualFold(dc.FileFormat, "Parquet"):
			format = FormatParquet
		case strings.EqualFold(dc.CompressionMode, "Gzip"):
			format = FormatCSVGzip
		}
	}
	for i, bl := range m.Blobs {
		blob := strings.TrimSpace(bl.BlobName)
		if blob == "" || strings.Contains(blob, "..") {
			return nil, fmt.Errorf("export manifest %s: blob %d has an invalid name %q", name, i, bl.BlobName)
		}
		if !strings.Contains(blob, "/") && dir != "." {
			blob = dir + "/" + blob // the older format names blobs next to it
		}
		f := format
		switch lower := strings.ToLower(blob); {
		case strings.HasSuffix(lower, ".parquet"):
			f = FormatParquet
		case strings.HasSuffix(lower, ".csv.gz") || strings.HasSuffix(lower, ".gz"):
			f = FormatCSVGzip
		case strings.HasSuffix(lower, ".csv"):
			f = FormatCSV
		}
		run.Parts = append(run.Parts, Part{Blob: blob, Container: ExportsContainer, Format: f})
	}
	if run.Rows == 0 {
		run.Parts = nil // "no data" (FinOps hubs' rule): the month has no cost
	}
	return run, nil
}

func (r *ExportRun) fromCurrent(m *exportManifest) error {
	ec, ri := m.ExportConfig, m.RunInfo
	r.Name, r.Dataset, r.RunID = ec.ExportName, ec.Type, ri.RunID
	scope, _, ok := strings.Cut(strings.ToLower(ec.ResourceID), "/providers/microsoft.costmanagement/exports/")
	if !ok {
		return fmt.Errorf("exportConfig.resourceId %q is not an export's id", ec.ResourceID)
	}
	// Keep the id's own casing for the scope.
	scope = strings.Trim(ec.ResourceID[:len(scope)], "/")
	t, err := exportTime(ri.SubmittedTime)
	if err != nil {
		return fmt.Errorf("runInfo.submittedTime: %w", err)
	}
	from, err := exportTime(ri.StartDate)
	if err != nil {
		return fmt.Errorf("runInfo.startDate: %w", err)
	}
	to, err := exportTime(ri.EndDate)
	if err != nil {
		return fmt.Errorf("runInfo.endDate: %w", err)
	}
	r.Submitted, r.Generation = t, t.UnixMilli()
	r.Window = window.Window{Scope: scope, Metric: exportMetric(ec.Type), From: from.Format(window.DateLayout), To: to.Format(window.DateLayout)}
	return r.Window.Validate()
}

func (r *ExportRun) fromLegacy(name string, m *exportManifest, modified time.Time, legacy LegacyLookup) error {
	// .../{export}/{YYYYMMDD-YYYYMMDD}/[{run}/]_manifest.json
	parts := strings.Split(path.Dir(name), "/")
	month := -1
	for i := len(parts) - 1; i >= 0; i-- {
		if reMonthFolder.MatchString(parts[i]) {
			month = i
			break
		}
	}
	if month < 1 {
		return errors.New("no YYYYMMDD-YYYYMMDD folder with the export's folder before it in the path")
	}
	r.Name = parts[month-1]
	if month+1 < len(parts) {
		r.RunID = parts[month+1]
	}
	var scope, dataset string
	ok := false
	if legacy != nil {
		scope, dataset, ok = legacy(r.Name)
	}
	if !ok {
		return fmt.Errorf("export %q of the 2021-01-01 format is not named in the legacy exports setting (its manifest does not say its scope and dataset)", r.Name)
	}
	if modified.IsZero() {
		return errors.New("the 2021-01-01 format needs the manifest's last-modified time for the run's generation")
	}
	d := reMonthFolder.FindStringSubmatch(parts[month])
	from, err1 := time.Parse("20060102", d[1])
	to, err2 := time.Parse("20060102", d[2])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("period folder %q is not two dates", parts[month])
	}
	r.Dataset, r.Submitted, r.Generation = dataset, modified.UTC(), modified.UnixMilli()
	r.Window = window.Window{Scope: scope, Metric: exportMetric(dataset), From: from.Format(window.DateLayout), To: to.Format(window.DateLayout)}
	return r.Window.Validate()
}

// exportMetric maps an export's dataset to the store's metric; "" for a
// dataset that is not cost data.
func exportMetric(dataset string) string {
	switch strings.ToLower(dataset) {
	case "actualcost", "usage":
		return "ActualCost"
	case "amortizedcost":
		return "AmortizedCost"
	case "focuscost":
		return "FocusCost"
	}
	return ""
}

// exportTime reads the manifests' times: with Z, with an offset, or with
// no zone at all (read as UTC), with or without fractions.
func exportTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date-time", s)
}
