// Package landing keeps report blobs and their manifests in our storage
// account: parts under cost-reports/, and a small manifest per report under
// cost-manifests/, written last, whose arrival triggers ingestion.
package landing

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/costsync/costsync/shared/window"
)

// The containers costsync writes.
const (
	ReportsContainer   = "cost-reports"
	ManifestsContainer = "cost-manifests"
)

// ManifestVersion is the version of our manifest format.
const ManifestVersion = 1

// Manifest describes one landed report: the window it covers, the
// generation that wrote it and its parts, in order.
type Manifest struct {
	Version    int           `json:"version"`
	Source     string        `json:"source"` // one of the Source* names; "cost-details" when empty
	Window     window.Window `json:"window"`
	Generation int64         `json:"generation"`
	Parts      []Part        `json:"parts"`
	LandedAt   time.Time     `json:"landedAt"`
	// Trace carries the W3C traceparent of the window, when there is one:
	// ingestion continues the window's trace.
	Trace string `json:"trace,omitempty"`
	// RunID is the on-demand run the report belongs to, when there is one.
	RunID string `json:"runId,omitempty"`
	// Query describes the pages of a Query API source (Source "query").
	Query *QueryInfo `json:"query,omitempty"`
}

// Part is one report blob in our storage.
type Part struct {
	Blob  string `json:"blob"` // name inside ReportsContainer (or Container)
	Bytes int64  `json:"bytes"`
	// Container, when set, holds the blob instead of ReportsContainer: the
	// parts of a native export are read where Cost Management wrote them.
	Container string `json:"container,omitempty"`
	// Format is how the part is encoded (Format* names); empty is CSV.
	Format string `json:"format,omitempty"`
}

// DecodeManifest reads a manifest strictly: unknown fields are an error, as
// are missing ones that ingestion depends on.
func DecodeManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	switch {
	case m.Version != ManifestVersion:
		return nil, fmt.Errorf("decode manifest: version %d, want %d", m.Version, ManifestVersion)
	case m.Generation <= 0:
		return nil, errors.New("decode manifest: generation missing")
	}
	if err := m.Window.Validate(); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	for i, p := range m.Parts {
		if p.Blob == "" || strings.Contains(p.Blob, "..") {
			return nil, fmt.Errorf("decode manifest: part %d has an invalid blob name %q", i, p.Blob)
		}
	}
	return &m, nil
}

// Dir is the blob folder of a window's report of one generation.
func Dir(w window.Window, generation int64) string {
	return strings.ToLower(w.Scope) + "/" + w.Metric + "/" + w.From + "_" + w.To + "/" + strconv.FormatInt(generation, 10)
}

// ManifestName is the manifest blob name of a window's report.
func ManifestName(w window.Window, generation int64) string {
	return Dir(w, generation) + "/manifest.json"
}

// Store reads and writes landed reports.
type Store struct {
	blobs *azblob.Client
}

// New builds a Store on a blob service client.
func New(blobs *azblob.Client) *Store { return &Store{blobs: blobs} }

// PutPart streams one report part into cost-reports.
func (s *Store) PutPart(ctx context.Context, w window.Window, generation int64, index int, r io.Reader) (Part, error) {
	name := fmt.Sprintf("%s/part_%05d.csv", Dir(w, generation), index)
	cr := &countingReader{r: r}
	_, err := s.blobs.UploadStream(ctx, ReportsContainer, name, cr, &azblob.UploadStreamOptions{
		BlockSize: 4 << 20, Concurrency: 2,
		HTTPHeaders: &blobHTTPHeaders{BlobContentType: to.Ptr("text/csv")},
	})
	if err != nil {
		return Part{}, fmt.Errorf("land part %d of %s: %w", index, w.Scope+" "+w.From+".."+w.To, err)
	}
	return Part{Blob: name, Bytes: cr.n}, nil
}

// PutManifest writes the manifest; it must be the last write of a report.
func (s *Store) PutManifest(ctx context.Context, m *Manifest) (string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	name := ManifestName(m.Window, m.Generation)
	_, err = s.blobs.UploadBuffer(ctx, ManifestsContainer, name, b, &azblob.UploadBufferOptions{
		HTTPHeaders: &blobHTTPHeaders{BlobContentType: to.Ptr("application/json")},
	})
	if err != nil {
		return "", fmt.Errorf("write manifest %s: %w", name, err)
	}
	return name, nil
}

// OpenPart streams a landed part.
func (s *Store) OpenPart(ctx context.Context, p Part) (io.ReadCloser, error) {
	container := ReportsContainer
	if p.Container != "" {
		container = p.Container
	}
	resp, err := s.blobs.DownloadStream(ctx, container, p.Blob, nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			return nil, fmt.Errorf("open part %s: %w", p.Blob, ErrPartMissing)
		}
		return nil, fmt.Errorf("open part %s: %w", p.Blob, err)
	}
	return resp.Body, nil
}

// IDsDir is the blob folder of the ids of one day of a window's report of
// one generation.
func IDsDir(w window.Window, generation int64, date string) string {
	return Dir(w, generation) + "/ids/" + date + "/"
}

// PutIDs keeps the ids of the records of one part of a report that fall on
// date: 16 bytes each (costcsv ids are 32 hex digits), in one blob per part
// and day under cost-reports. Once every part is in, the sweep deletes the
// documents of that day whose ids no part kept. Writing them again
// replaces them.
func (s *Store) PutIDs(ctx context.Context, w window.Window, generation int64, part int, date string, ids [][16]byte) error {
	name := fmt.Sprintf("%spart_%05d.ids", IDsDir(w, generation, date), part)
	buf := make([]byte, 0, 16*len(ids))
	for _, id := range ids {
		buf = append(buf, id[:]...)
	}
	_, err := s.blobs.UploadBuffer(ctx, ReportsContainer, name, buf, &azblob.UploadBufferOptions{
		HTTPHeaders: &blobHTTPHeaders{BlobContentType: to.Ptr("application/octet-stream")},
	})
	if err != nil {
		return fmt.Errorf("keep ids %s: %w", name, err)
	}
	return nil
}

// ReadIDs calls each with the ids every part of a report kept for date (see
// PutIDs); a day no part kept ids for has none.
func (s *Store) ReadIDs(ctx context.Context, w window.Window, generation int64, date string, each func(id [16]byte)) error {
	prefix := IDsDir(w, generation, date)
	pager := s.blobs.NewListBlobsFlatPager(ReportsContainer, &azblob.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list ids %s: %w", prefix, err)
		}
		for _, it := range page.Segment.BlobItems {
			if it.Name == nil {
				continue
			}
			resp, err := s.blobs.DownloadStream(ctx, ReportsContainer, *it.Name, nil)
			if err != nil {
				return fmt.Errorf("read ids %s: %w", *it.Name, err)
			}
			err = readIDs(resp.Body, each)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("read ids %s: %w", *it.Name, err)
			}
		}
	}
	return nil
}

// readIDs reads 16-byte ids from r.
func readIDs(r io.Reader, each func(id [16]byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var id [16]byte
	for {
		_, err := io.ReadFull(br, id[:])
		switch {
		case err == io.EOF:
			return nil
		case err == io.ErrUnexpectedEOF:
			return errors.New("truncated: the length is not a multiple of 16 bytes")
		case err != nil:
			return err
		}
		each(id)
	}
}

// ErrPartMissing reports a manifest whose part is not in storage.
var ErrPartMissing = errors.New("report part not found")

// IsPermanent tells storage errors that no retry can fix.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrPartMissing) {
		return true
	}
	var re *azcore.ResponseError
	return errors.As(err, &re) && (re.StatusCode == 400 || re.StatusCode == 403)
}

type blobHTTPHeaders = blob.HTTPHeaders

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Provision creates the containers costsync writes, if they do not exist.
// It is an explicit provisioning step (costsync init, the local stack),
// never a side effect of a function call.
func (s *Store) Provision(ctx context.Context) error {
	for _, c := range []string{ReportsContainer, ManifestsContainer} {
		if _, err := s.blobs.CreateContainer(ctx, c, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			return fmt.Errorf("create container %s: %w", c, err)
		}
	}
	return nil
}
