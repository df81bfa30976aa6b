package inproc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/window"
)

// Landing keeps report parts and manifests in a folder, as landing.Store
// keeps them in Blob Storage: parts under cost-reports/, manifests under
// cost-manifests/, the manifest written last. A manifest triggers the
// function of its container on the host, as the blob trigger does.
type Landing struct {
	dir  string
	host *Host
}

// Landing returns a landing in dir whose manifests trigger on h.
func (h *Host) Landing(dir string) *Landing { return &Landing{dir: dir, host: h} }

func (l *Landing) path(container, name string) (string, error) {
	if name == "" || strings.Contains(name, "..") {
		return "", fmt.Errorf("invalid blob name %q", name)
	}
	return filepath.Join(l.dir, container, filepath.FromSlash(name)), nil
}

// PutPart writes one report part.
func (l *Landing) PutPart(ctx context.Context, w window.Window, generation int64, index int, r io.Reader) (landing.Part, error) {
	name := fmt.Sprintf("%s/part_%05d.csv", landing.Dir(w, generation), index)
	p, err := l.path(landing.ReportsContainer, name)
	if err != nil {
		return landing.Part{}, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return landing.Part{}, err
	}
	f, err := os.Create(p)
	if err != nil {
		return landing.Part{}, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return landing.Part{}, fmt.Errorf("land part %d of %s %s..%s: %w", index, w.Scope, w.From, w.To, err)
	}
	return landing.Part{Blob: name, Bytes: n}, nil
}

// PutManifest writes the manifest and triggers its ingestion.
func (l *Landing) PutManifest(ctx context.Context, m *landing.Manifest) (string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	name := landing.ManifestName(m.Window, m.Generation)
	p, err := l.path(landing.ManifestsContainer, name)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", fmt.Errorf("write manifest %s: %w", name, err)
	}
	l.host.putBlob(landing.ManifestsContainer, name, b)
	return name, nil
}

// OpenPart opens a landed part.
func (l *Landing) OpenPart(ctx context.Context, p landing.Part) (io.ReadCloser, error) {
	path, err := l.path(landing.ReportsContainer, p.Blob)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("open part %s: %w", p.Blob, landing.ErrPartMissing)
	}
	return f, err
}

// PutIDs keeps the ids of one part's records on date, as landing.Store
// keeps them under cost-reports.
func (l *Landing) PutIDs(ctx context.Context, w window.Window, generation int64, part int, date string, ids [][16]byte) error {
	name := fmt.Sprintf("%spart_%05d.ids", landing.IDsDir(w, generation, date), part)
	p, err := l.path(landing.ReportsContainer, name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	buf := make([]byte, 0, 16*len(ids))
	for _, id := range ids {
		buf = append(buf, id[:]...)
	}
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		return fmt.Errorf("keep ids %s: %w", name, err)
	}
	return nil
}

// ReadIDs calls each with the ids every part kept for date.
func (l *Landing) ReadIDs(ctx context.Context, w window.Window, generation int64, date string, each func(id [16]byte)) error {
	dir, err := l.path(landing.ReportsContainer, landing.IDsDir(w, generation, date))
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.ids"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read ids %s: %w", f, err)
		}
		if len(b)%16 != 0 {
			return fmt.Errorf("read ids %s: %d bytes is not a whole number of ids", f, len(b))
		}
		for i := 0; i < len(b); i += 16 {
			each([16]byte(b[i : i+16]))
		}
	}
	return nil
}
