package landing

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
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

// OpenPartAt opens a part for random access — Parquet is read from its
// footer, a page per column at a time — and returns its size. Each ReadAt
// is one ranged download.
func (s *Store) OpenPartAt(ctx context.Context, p Part) (io.ReaderAt, int64, error) {
	cont := ReportsContainer
	if p.Container != "" {
		cont = p.Container
	}
	bc := s.blobs.ServiceClient().NewContainerClient(cont).NewBlobClient(p.Blob)
	props, err := bc.GetProperties(ctx, nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			return nil, 0, fmt.Errorf("open part %s: %w", p.Blob, ErrPartMissing)
		}
		return nil, 0, fmt.Errorf("open part %s: %w", p.Blob, err)
	}
	size := int64(0)
	if props.ContentLength != nil {
		size = *props.ContentLength
	}
	return &blobReaderAt{ctx: ctx, blob: bc, name: p.Blob, size: size}, size, nil
}

// blobReaderAt reads a blob with ranged downloads.
type blobReaderAt struct {
	ctx  context.Context // the invocation's: ReadAt has none of its own
	blob *blob.Client
	name string
	size int64
}

// ReadAt reads len(b) bytes at off, io.EOF past the end.
func (r *blobReaderAt) ReadAt(b []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := min(int64(len(b)), r.size-off)
	resp, err := r.blob.DownloadStream(r.ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: off, Count: n}})
	if err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", r.name, off, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadFull(resp.Body, b[:n])
	if err != nil {
		return got, fmt.Errorf("read %s at %d: %w", r.name, off, err)
	}
	if n < int64(len(b)) {
		return got, io.EOF
	}
	return got, nil
}
