package landing

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/costsync/costsync/shared/window"
)

// Sources: every source lands as parts plus a manifest and follows one
// ingestion path; the manifest's Source says how to read its parts.
const (
	SourceCostDetails     = "cost-details"     // Cost Details report blobs (CSV)
	SourceQuery           = "query"            // Query API pages (JSON, as sent)
	SourceUsageDetails    = "usage-details"    // Consumption usage details pages (CSV of the API's properties)
	SourceUsageAggregates = "usage-aggregates" // Commerce usage aggregates pages (CSV of the API's properties)
	SourceExport          = "export"           // a native export run's blobs, read in the exports container
)

// Part formats.
const (
	FormatCSV     = "csv"
	FormatCSVGzip = "csv.gz"
	FormatParquet = "parquet"
	FormatJSON    = "json"
)

// QueryInfo describes the pages of a Query API source.
type QueryInfo struct {
	// Key identifies the query definition (type and dataset).
	Key string `json:"key"`
	// Type is the query type: ActualCost, AmortizedCost or Usage.
	Type        string `json:"type"`
	Granularity string `json:"granularity,omitempty"`
	// Value is the aggregated column that ingestion reconciles.
	Value string `json:"value"`
}

// PutPage stores page index of a paged source (Query, usage details, usage
// aggregates) as page_NNNNN.{format} in the window's folder of generation.
// Storing the same page again replaces it.
func (s *Store) PutPage(ctx context.Context, w window.Window, generation int64, index int, format string, r io.Reader) (Part, error) {
	name := fmt.Sprintf("%s/page_%05d.%s", Dir(w, generation), index, format)
	ct := "text/csv"
	if format == FormatJSON {
		ct = "application/json"
	}
	cr := &countingReader{r: r}
	_, err := s.blobs.UploadStream(ctx, ReportsContainer, name, cr, &azblob.UploadStreamOptions{
		BlockSize: 4 << 20, Concurrency: 2,
		HTTPHeaders: &blobHTTPHeaders{BlobContentType: to.Ptr(ct)},
	})
	if err != nil {
		return Part{}, fmt.Errorf("land page %d of %s: %w", index, w.Scope+" "+w.From+".."+w.To, err)
	}
	return Part{Blob: name, Bytes: cr.n, Format: format}, nil
}

// ListPages returns the pages stored for a window's generation, in order.
func (s *Store) ListPages(ctx context.Context, w window.Window, generation int64) ([]Part, error) {
	prefix := Dir(w, generation) + "/page_"
	pager := s.blobs.NewListBlobsFlatPager(ReportsContainer, &container.ListBlobsFlatOptions{Prefix: &prefix})
	var out []Part
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list pages of %s: %w", w.Scope+" "+w.From+".."+w.To, err)
		}
		for _, b := range page.Segment.BlobItems {
			p := Part{Blob: *b.Name, Format: FormatCSV}
			if b.Properties != nil && b.Properties.ContentLength != nil {
				p.Bytes = *b.Properties.ContentLength
			}
			if strings.HasSuffix(p.Blob, "."+FormatJSON) {
				p.Format = FormatJSON
			}
			out = append(out, p)
		}
	}
	return out, nil // the service lists names in order
}
