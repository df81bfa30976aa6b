package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/telemetry"
)

// ingestExport is the blob trigger on cost-exports/{name}manifest.json: a
// native export run's manifest (manifest.json, or _manifest.json of the
// older format) has arrived, written after the run's partitions. It becomes
// our manifest — Source "export", the run's scope, dataset and month, the
// run's submitted time as generation, the partitions where the export wrote
// them — and IngestManifest ingests it like any report: a later run of the
// same month replaces the earlier one, an older run arriving late is
// refused.
func (s *Server) ingestExport(ctx context.Context, c *call) (*outcome, error) {
	b, err := c.req.BlobTrigger("manifest", "name")
	if err != nil {
		return nil, permanent(err)
	}
	name := b.Name + "manifest.json"
	c.note("blob", name)
	run, err := landing.ParseExportManifest(name, b.Content, lastModified(b.Properties), s.legacyExport)
	if err != nil {
		return nil, permanent(err)
	}
	c.note("export", run.Name, "dataset", run.Dataset, "run", run.RunID, "parts", len(run.Parts))
	if !run.IsCost() {
		c.note("outcome_detail", "not a cost dataset: nothing to ingest")
		return &outcome{}, nil
	}
	if run.Generation <= 0 {
		return nil, permanent(fmt.Errorf("export manifest %s: no submitted time for the run's generation", name))
	}
	c.tag("scope", run.Window.Scope, "window", run.Window.From+".."+run.Window.To, "metric", run.Window.Metric)
	man := &landing.Manifest{Version: landing.ManifestVersion, Source: landing.SourceExport, Window: run.Window,
		Generation: run.Generation, Parts: run.Parts, LandedAt: s.d.Now().UTC(), Trace: telemetry.Traceparent(ctx)}
	out, err := s.d.Landing.PutManifest(ctx, man)
	if err != nil {
		return nil, retryable(err)
	}
	c.note("manifest", out)
	return &outcome{}, nil
}

// legacyExport looks up an export of the older format in the settings.
func (s *Server) legacyExport(name string) (scope, dataset string, ok bool) {
	e, ok := s.d.Config.LegacyExports[strings.ToLower(name)]
	return e.Scope, e.Dataset, ok
}

// lastModified reads LastModified of the trigger's blob properties; zero
// when absent.
func lastModified(props json.RawMessage) time.Time {
	var p struct {
		LastModified string `json:"LastModified"`
	}
	if json.Unmarshal(props, &p) != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, p.LastModified)
	if err != nil {
		return time.Time{}
	}
	return t
}
