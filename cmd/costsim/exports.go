package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Native exports, cost-apis.md §6: PUT {scope}/providers/Microsoft.CostManagement/exports/{name}
// defines an export; POST .../exports/{name}/run runs it now (with an
// optional timePeriod); GET .../exports/{name}/runHistory lists its runs.
// A run writes its partitions, then its manifest, into the destination
// storage account:
//
//	{container}/{rootFolderPath}/{exportName}/{YYYYMMDD-YYYYMMDD}/{runId}/part_0_0001.csv[.gz]
//	{container}/{rootFolderPath}/{exportName}/{YYYYMMDD-YYYYMMDD}/{runId}/manifest.json
//
// manifest.json is the 2024-04-01 format for exports created with
// api-version 2023-07-01-preview or later; older api-versions write the
// 2021-01-01 _manifest.json. With OverwritePreviousReport, a run removes
// the month's earlier runs first. Datasets: ActualCost, AmortizedCost and
// Usage (the cost files' layout of the scope: EA or MCA columns) and
// FocusCost (FOCUS 1.0 columns; BilledCost from the ActualCost lines,
// EffectiveCost from the AmortizedCost lines, at the ActualCost revisions).
//
// Simplified: runs are synchronous (the POST returns when the run is
// written); no schedules fire by themselves; the destination storage
// account must be registered with POST /_sim/storage, and costsim writes to
// it with a token it mints for https://storage.azure.com/ (Azurite with
// --oauth basic accepts it).

var exportAPIVersions = []string{"2021-10-01", "2022-10-01", "2023-03-01", "2023-07-01-preview", "2023-08-01", "2023-11-01", "2024-08-01", "2025-03-01"}

// exportResource is the export as PUT and returned.
type exportResource struct {
	ID         string           `json:"id,omitempty"`
	Name       string           `json:"name,omitempty"`
	Type       string           `json:"type,omitempty"`
	ETag       string           `json:"eTag,omitempty"`
	Identity   json.RawMessage  `json:"identity,omitempty"`
	Location   string           `json:"location,omitempty"`
	Properties exportProperties `json:"properties"`
}

type exportProperties struct {
	Format                string           `json:"format"`
	CompressionMode       string           `json:"compressionMode,omitempty"`
	DataOverwriteBehavior string           `json:"dataOverwriteBehavior,omitempty"`
	PartitionData         bool             `json:"partitionData,omitempty"`
	Definition            exportDefinition `json:"definition"`
	DeliveryInfo          struct {
		Destination struct {
			Type           string `json:"type,omitempty"`
			ResourceID     string `json:"resourceId"`
			Container      string `json:"container"`
			RootFolderPath string `json:"rootFolderPath"`
		} `json:"destination"`
	} `json:"deliveryInfo"`
	Schedule          json.RawMessage `json:"schedule,omitempty"`
	ExportDescription string          `json:"exportDescription,omitempty"`
}

type exportDefinition struct {
	Type       string           `json:"type"`
	Timeframe  string           `json:"timeframe"`
	TimePeriod *queryTimePeriod `json:"timePeriod,omitempty"`
	DataSet    json.RawMessage  `json:"dataSet,omitempty"`
}

// export is a defined export with its runs.
type export struct {
	sc         scope
	apiVersion string
	res        exportResource
	runs       []exportRunInfo
}

// exportRunInfo is one run in the run history.
type exportRunInfo struct {
	ID         string `json:"id"`
	Properties struct {
		ExecutionType  string `json:"executionType"`
		Status         string `json:"status"`
		SubmittedBy    string `json:"submittedBy"`
		SubmittedTime  string `json:"submittedTime"`
		StartDate      string `json:"startDate"`
		EndDate        string `json:"endDate"`
		ManifestFile   string `json:"manifestFile"`
		FileName       string `json:"fileName"`
		RowCount       int    `json:"-"`
		ProcessingTime string `json:"processingEndTime"`
	} `json:"properties"`
}

// exportState holds the exports and the registered storage accounts.
type exportState struct {
	mu       sync.Mutex
	exports  map[string]*export // scope key|name (lower case)
	accounts map[string]string  // storage account resource id (lower case) → blob service URL
	sink     exportSink         // nil: azblob on the registered accounts
}

// exportSink writes and removes blobs of a destination account.
type exportSink interface {
	put(ctx context.Context, account, container, name string, data []byte) error
	removePrefix(ctx context.Context, account, container, prefix string) error
}

func (s *sim) exportsState() *exportState {
	s.exportsOnce.Do(func() {
		s.exports = &exportState{exports: map[string]*export{}, accounts: map[string]string{}}
	})
	return s.exports
}

// serveExport routes exports/{name}[/run|/runHistory].
func (s *sim) serveExport(w http.ResponseWriter, r *http.Request, rawScope, rest string) {
	name, action, _ := strings.Cut(rest, "/")
	if _, ok := s.checkARMVersions(w, r, exportAPIVersions); !ok {
		return
	}
	sc, err := parseScope(rawScope)
	if err != nil {
		writeScopeError(w, err)
		return
	}
	st := s.exportsState()
	key := sc.key + "|" + strings.ToLower(name)
	switch {
	case action == "" && r.Method == http.MethodPut:
		s.putExport(w, r, sc, name, key)
	case action == "" && r.Method == http.MethodGet:
		st.mu.Lock()
		e := st.exports[key]
		st.mu.Unlock()
		if e == nil {
			writeARMError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The export '%s' was not found.", name))
			return
		}
		writeJSON(w, http.StatusOK, e.res)
	case strings.EqualFold(action, "run") && r.Method == http.MethodPost:
		s.runExportNow(w, r, key, name)
	case strings.EqualFold(action, "runHistory") && r.Method == http.MethodGet:
		st.mu.Lock()
		e := st.exports[key]
		var runs []exportRunInfo
		if e != nil {
			runs = slices.Clone(e.runs)
		}
		st.mu.Unlock()
		if e == nil {
			writeARMError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The export '%s' was not found.", name))
			return
		}
		slices.Reverse(runs)
		writeJSON(w, http.StatusOK, map[string]any{"value": runs})
	default:
		writeARMError(w, http.StatusMethodNotAllowed, "HttpMethodNotAllowed", "The requested method is not allowed.")
	}
}

func (s *sim) putExport(w http.ResponseWriter, r *http.Request, sc scope, name, key string) {
	var res exportResource
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, &res); err != nil {
		writeARMError(w, http.StatusBadRequest, "BadRequest", "Invalid export definition: "+err.Error())
		return
	}
	p := &res.Properties
	bad := func(msg string) { writeARMError(w, http.StatusBadRequest, "BadRequest", msg) }
	switch {
	case !strings.EqualFold(p.Format, "Csv") && !strings.EqualFold(p.Format, "Parquet"):
		bad(fmt.Sprintf("Invalid format '%s'. Valid values are Csv and Parquet.", p.Format))
		return
	case strings.EqualFold(p.CompressionMode, "gzip") && !strings.EqualFold(p.Format, "Csv"),
		strings.EqualFold(p.CompressionMode, "snappy") && !strings.EqualFold(p.Format, "Parquet"):
		bad(fmt.Sprintf("Compression '%s' is not supported with format '%s': gzip goes with Csv, snappy with Parquet.", p.CompressionMode, p.Format))
		return
	case exportDataset(p.Definition.Type) == "":
		bad(fmt.Sprintf("Invalid definition type '%s'. costsim exports ActualCost, AmortizedCost, Usage and FocusCost.", p.Definition.Type))
		return
	case p.DeliveryInfo.Destination.ResourceID == "" || p.DeliveryInfo.Destination.Container == "":
		bad("deliveryInfo.destination needs resourceId and container.")
		return
	case strings.EqualFold(p.Definition.Type, "FocusCost") && sc.payg:
		bad("FOCUS exports are not supported for Microsoft Online Services Program (pay-as-you-go) subscriptions.")
		return
	}
	st := s.exportsState()
	st.mu.Lock()
	defer st.mu.Unlock()
	status := http.StatusCreated
	e := st.exports[key]
	if e != nil {
		status = http.StatusOK
	} else {
		e = &export{sc: sc}
		st.exports[key] = e
	}
	e.apiVersion = r.URL.Query().Get("api-version")
	res.ID = sc.path + "/providers/Microsoft.CostManagement/exports/" + name
	res.Name, res.Type, res.ETag = name, "Microsoft.CostManagement/exports", `"`+newGUID()+`"`
	e.res = res
	writeJSON(w, status, res)
}

// exportDataset is the metric of an export's lines, "" for a type costsim
// does not export.
func exportDataset(t string) string {
	switch strings.ToLower(t) {
	case "actualcost", "usage":
		return actualCost
	case "amortizedcost":
		return amortizedCost
	case "focuscost":
		return "FocusCost"
	}
	return ""
}

// exportPeriod is the period a run covers: the timePeriod of the run
// request, else the definition's timeframe.
func exportPeriod(def exportDefinition, body []byte, today time.Time) (time.Time, time.Time, string) {
	var req struct {
		TimePeriod *queryTimePeriod `json:"timePeriod"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return time.Time{}, time.Time{}, "Invalid run request: " + err.Error()
		}
	}
	tp := req.TimePeriod
	if tp == nil {
		tp = def.TimePeriod
	}
	if tp != nil {
		from, ok1 := parseDate(tp.From)
		to, ok2 := parseDate(tp.To)
		if !ok1 || !ok2 || to.Before(from) {
			return time.Time{}, time.Time{}, "Invalid timePeriod: from and to must be dates, from before to."
		}
		if !to.Before(addMonthClamped(from, 1)) {
			return time.Time{}, time.Time{}, "The timePeriod of a run can be at most one month."
		}
		return from, to, ""
	}
	switch strings.ToLower(def.Timeframe) {
	case "thelastmonth", "thelastbillingmonth":
		from := monthStart(today).AddDate(0, -1, 0)
		return from, monthEnd(from), ""
	case "monthtodate", "billingmonthtodate", "":
		return monthStart(today), today, ""
	}
	return time.Time{}, time.Time{}, fmt.Sprintf("Timeframe '%s' needs a timePeriod.", def.Timeframe)
}

// runExportNow is POST .../exports/{name}/run.
func (s *sim) runExportNow(w http.ResponseWriter, r *http.Request, key, name string) {
	st := s.exportsState()
	st.mu.Lock()
	e := st.exports[key]
	st.mu.Unlock()
	if e == nil {
		writeARMError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The export '%s' was not found.", name))
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	from, to, msg := exportPeriod(e.res.Properties.Definition, body, s.today())
	if msg != "" {
		writeARMError(w, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	if err := s.writeExportRun(r.Context(), e, from, to); err != nil {
		writeARMError(w, http.StatusBadRequest, "BadRequest", "The export run failed: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

// exportPartRows bounds the data rows of one partition when -blob-rows is 0
// (real partitions are bounded by size, under 1 GB uncompressed).
const exportPartRows = 5000

// writeExportRun renders the run's files and writes them, the manifest last.
func (s *sim) writeExportRun(ctx context.Context, e *export, from, to time.Time) error {
	p := e.res.Properties
	dest := p.DeliveryInfo.Destination
	today := s.today()
	header, rows := s.exportRows(e.sc, exportDataset(p.Definition.Type), from, to, today)
	perPart := s.cfg.blobRows
	if perPart <= 0 {
		perPart = exportPartRows
	}
	if !p.PartitionData {
		perPart = max(len(rows), 1)
	}
	gz := strings.EqualFold(p.CompressionMode, "gzip")
	parquet := strings.EqualFold(p.Format, "Parquet")
	runID := newGUID()
	submitted := s.simNow() // the simulated clock, as -today sets it
	monthDir := path.Join(dest.RootFolderPath, e.res.Name, from.Format("20060102")+"-"+to.Format("20060102"))
	runDir := path.Join(monthDir, runID)
	type blob struct {
		name string
		data []byte
		rows int
	}
	var blobs []blob
	for i := 0; i < len(rows) || i == 0; i += perPart {
		part := rows[i:min(i+perPart, len(rows))]
		n := len(blobs) + 1
		var data []byte
		var err error
		var name string
		switch {
		case parquet:
			name = fmt.Sprintf("part_0_%04d.snappy.parquet", n)
			data, err = parquetPart(header, part)
		default:
			name = fmt.Sprintf("part_0_%04d.csv", n)
			data, err = csvPart(header, part)
			if err == nil && gz {
				name += ".gz"
				data, err = gzipBytes(data)
			}
		}
		if err != nil {
			return fmt.Errorf("write partition %d: %w", n, err)
		}
		blobs = append(blobs, blob{name: path.Join(runDir, name), data: data, rows: len(part)})
		if len(rows) == 0 {
			break
		}
	}
	sink, account, err := s.exportSink(dest.ResourceID)
	if err != nil {
		return err
	}
	if strings.EqualFold(p.DataOverwriteBehavior, "OverwritePreviousReport") {
		if err := sink.removePrefix(ctx, account, dest.Container, monthDir+"/"); err != nil {
			return fmt.Errorf("remove the month's earlier runs: %w", err)
		}
	}
	var total int64
	for _, b := range blobs {
		if err := sink.put(ctx, account, dest.Container, b.name, b.data); err != nil {
			return fmt.Errorf("write %s: %w", b.name, err)
		}
		total += int64(len(b.data))
	}
	var manifest []byte
	manifestName := path.Join(runDir, "manifest.json")
	if e.apiVersion < "2023-07-01-preview" {
		manifestName = path.Join(runDir, "_manifest.json")
		list := make([]map[string]any, len(blobs))
		for i, b := range blobs {
			list[i] = map[string]any{"blobName": b.name, "byteCount": len(b.data), "dataRowCount": b.rows, "headerRowCount": 1, "contentMD5": ""}
		}
		manifest, err = json.Marshal(jsonObj{{"manifestVersion", "2021-01-01"}, {"dataFormat", strings.ToLower(p.Format)},
			{"blobCount", len(blobs)}, {"byteCount", total}, {"dataRowCount", len(rows)}, {"blobs", list}})
	} else {
		list := make([]jsonObj, len(blobs))
		for i, b := range blobs {
			list[i] = jsonObj{{"blobName", b.name}, {"byteCount", len(b.data)}, {"dataRowCount", b.rows}}
		}
		compression := "None"
		switch {
		case gz:
			compression = "Gzip"
		case parquet:
			compression = "Snappy"
		}
		timeFrame := p.Definition.Timeframe
		manifest, err = json.Marshal(jsonObj{
			{"manifestVersion", "2024-04-01"}, {"byteCount", total}, {"blobCount", len(blobs)}, {"dataRowCount", len(rows)},
			{"exportConfig", jsonObj{{"exportName", e.res.Name}, {"resourceId", "/" + e.res.ID}, {"dataVersion", "2023-05-01"},
				{"apiVersion", e.apiVersion}, {"type", p.Definition.Type}, {"timeFrame", timeFrame}, {"granularity", "Daily"}}},
			{"deliveryConfig", jsonObj{{"partitionData", p.PartitionData}, {"dataOverwriteBehavior", p.DataOverwriteBehavior},
				{"fileFormat", p.Format}, {"compressionMode", compression}, {"containerUri", dest.ResourceID}, {"rootFolderPath", dest.RootFolderPath}}},
			{"runInfo", jsonObj{{"executionType", "OnDemand"}, {"submittedTime", submitted.Format(validTillLayout)}, {"runId", runID},
				{"startDate", from.Format("2006-01-02T15:04:05")}, {"endDate", to.Format("2006-01-02T15:04:05Z")}}},
			{"blobs", list},
		})
	}
	if err != nil {
		return err
	}
	if err := sink.put(ctx, account, dest.Container, manifestName, manifest); err != nil {
		return fmt.Errorf("write %s: %w", manifestName, err)
	}
	var info exportRunInfo
	info.ID = e.res.ID + "/Run/" + runID
	ip := &info.Properties
	ip.ExecutionType, ip.Status, ip.SubmittedBy = "OnDemand", "Completed", "costsim"
	ip.SubmittedTime, ip.ProcessingTime = submitted.Format(validTillLayout), s.now().UTC().Format(validTillLayout)
	ip.StartDate, ip.EndDate = from.Format(time.RFC3339), to.Format(time.RFC3339)
	ip.ManifestFile, ip.FileName, ip.RowCount = manifestName, blobs[0].name, len(rows)
	st := s.exportsState()
	st.mu.Lock()
	e.runs = append(e.runs, info)
	st.mu.Unlock()
	return nil
}

// exportRows are the header and rows of a dataset over [from, to].
func (s *sim) exportRows(sc scope, dataset string, from, to, today time.Time) ([]string, [][]string) {
	if dataset == "FocusCost" {
		return s.focusRows(sc, from, to, today)
	}
	s.mu.Lock()
	revs := map[string]int{}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		revs[d.Format(time.DateOnly)] = s.revs.get(sc.key, dataset, d)
	}
	s.mu.Unlock()
	schema, rows := s.gen.reportRows(sc, dataset, from, to, today, func(d time.Time) int { return revs[d.Format(time.DateOnly)] })
	return schema.columns, rows
}

func csvPart(header []string, rows [][]string) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(header); err != nil {
		return nil, err
	}
	if err := w.WriteAll(rows); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func gzipBytes(data []byte) ([]byte, error) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// storageRegistration is the body of POST /_sim/storage.
type storageRegistration struct {
	ResourceID     string `json:"resourceId"`
	BlobServiceURI string `json:"blobServiceUri"`
}

// serveSetStorage registers the blob endpoint of a storage account that
// exports deliver to.
func (s *sim) serveSetStorage(w http.ResponseWriter, r *http.Request) {
	var reg storageRegistration
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&reg); err != nil || reg.ResourceID == "" || !strings.HasPrefix(reg.BlobServiceURI, "https://") {
		simError(w, http.StatusBadRequest, "want {\"resourceId\": storage account id, \"blobServiceUri\": https URL}")
		return
	}
	st := s.exportsState()
	st.mu.Lock()
	st.accounts[strings.ToLower(reg.ResourceID)] = strings.TrimRight(reg.BlobServiceURI, "/")
	st.mu.Unlock()
	writeJSON(w, http.StatusOK, reg)
}

// exportSink returns where a destination account's blobs go.
func (s *sim) exportSink(resourceID string) (exportSink, string, error) {
	st := s.exportsState()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.sink != nil {
		return st.sink, strings.ToLower(resourceID), nil
	}
	u, ok := st.accounts[strings.ToLower(resourceID)]
	if !ok {
		return nil, "", fmt.Errorf("the storage account %s is not reachable (costsim: register it with POST /_sim/storage)", resourceID)
	}
	return &blobSink{s: s}, u, nil
}

// blobSink writes with azblob to a blob service URL.
type blobSink struct{ s *sim }

func (b *blobSink) client(serviceURL string) (*azblob.Client, error) {
	return azblob.NewClient(serviceURL, storageCredential{b.s}, &azblob.ClientOptions{ClientOptions: policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: 2}}})
}

func (b *blobSink) put(ctx context.Context, serviceURL, cont, name string, data []byte) error {
	c, err := b.client(serviceURL)
	if err != nil {
		return err
	}
	if _, err := c.CreateContainer(ctx, cont, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return err
	}
	_, err = c.UploadBuffer(ctx, cont, name, data, nil)
	return err
}

func (b *blobSink) removePrefix(ctx context.Context, serviceURL, cont, prefix string) error {
	c, err := b.client(serviceURL)
	if err != nil {
		return err
	}
	pager := c.NewListBlobsFlatPager(cont, &container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, it := range page.Segment.BlobItems {
			if _, err := c.DeleteBlob(ctx, cont, *it.Name, nil); err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
				return err
			}
		}
	}
	return nil
}

// storageCredential is Cost Management's own identity towards the
// destination account: a token costsim mints for Azure Storage.
type storageCredential struct{ s *sim }

func (c storageCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s := c.s
	now := s.now().UTC()
	oid := stableGUID(s.cfg.seed, "cost-management-exports")
	tok, err := s.mintJWT(claims{
		Aud: "https://storage.azure.com", Iss: "https://sts.windows.net/" + s.cfg.tenant + "/",
		Iat: now.Unix(), Nbf: now.Add(-5 * time.Minute).Unix(), Exp: now.Add(time.Hour).Unix(),
		Appid: oid, Appidacr: "2", Idtyp: "app", Oid: oid, Sub: oid, Tid: s.cfg.tenant, Uti: newGUID(), Ver: "1.0",
	})
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: tok, ExpiresOn: now.Add(time.Hour)}, nil
}

// memorySink keeps blobs in memory (tests).
type memorySink struct {
	mu    sync.Mutex
	blobs map[string][]byte // container/name
}

func (m *memorySink) put(ctx context.Context, account, cont, name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[cont+"/"+name] = slices.Clone(data)
	return nil
}

func (m *memorySink) removePrefix(ctx context.Context, account, cont, prefix string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.blobs {
		if strings.HasPrefix(k, cont+"/"+prefix) {
			delete(m.blobs, k)
		}
	}
	return nil
}
