package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/telemetry"
	"github.com/costsync/costsync/shared/window"
)

// A message that fails maxDequeueCount times goes to its queue's poison
// queue, where nothing would ever look at it. RecordPoison (cost-windows-
// poison), RecordPartPoison (cost-parts-poison) and RecordBlobPoison (the
// host's webjobs-blobtrigger-poison, for manifests that could not be
// ingested) make it visible: the window it belongs to is marked failed in
// the ledger with its last error, and an alert-level log line names it.
// A message that names no window is still logged at alert level.

// alertMessage starts every alert-level log line, for alert rules to match.
const alertMessage = "ALERT: poisoned message"

// poisonedWindow is the part of our queue messages (windows and parts)
// that names a window; other fields are ignored.
type poisonedWindow struct {
	Window     window.Window `json:"window"`
	Step       string        `json:"step"`
	Generation int64         `json:"generation"`
	RunID      string        `json:"runId"`
}

// recordPoison returns the function for the poison queue of queue.
func (s *Server) recordPoison(queue string) fn {
	poison := queue + "-poison"
	return func(ctx context.Context, c *call) (*outcome, error) {
		q, err := c.req.QueueTrigger("msg")
		if err != nil {
			return nil, permanent(err)
		}
		s.tel().Poisoned(ctx, poison)
		var m poisonedWindow
		if err := json.Unmarshal([]byte(q.Message), &m); err != nil || m.Window.Validate() != nil || m.Window.Metric == "" {
			c.log.Error(alertMessage, "alert", true, "queue", poison, "message_id", q.ID, "bytes", len(q.Message),
				"problem", "the message names no window; it stays in "+poison)
			c.note("outcome_detail", "unrecognised poison message")
			return &outcome{}, nil
		}
		if _, err := costapi.ParseScope(m.Window.Scope); err != nil {
			c.log.Error(alertMessage, "alert", true, "queue", poison, "message_id", q.ID, "problem", err.Error())
			return &outcome{}, nil
		}
		why := fmt.Sprintf("a %s message (step %q) failed on every delivery and went to %s", queue, m.Step, poison)
		return s.poisonWindow(ctx, c, m.Window, m.Generation, why, "queue", poison, "message_id", q.ID, "run_id", m.RunID)
	}
}

// blobPoison is the host's message on webjobs-blobtrigger-poison.
type blobPoison struct {
	FunctionID    string `json:"FunctionId"`
	BlobType      string `json:"BlobType"`
	ContainerName string `json:"ContainerName"`
	BlobName      string `json:"BlobName"`
	ETag          string `json:"ETag"`
}

// recordBlobPoison handles webjobs-blobtrigger-poison: a manifest whose
// ingestion failed poisonBlobThreshold times. The manifest's name says its
// window and generation (landing.ManifestName).
func (s *Server) recordBlobPoison(ctx context.Context, c *call) (*outcome, error) {
	q, err := c.req.QueueTrigger("msg")
	if err != nil {
		return nil, permanent(err)
	}
	const poison = "webjobs-blobtrigger-poison"
	s.tel().Poisoned(ctx, poison)
	var b blobPoison
	if err := json.Unmarshal([]byte(q.Message), &b); err != nil {
		c.log.Error(alertMessage, "alert", true, "queue", poison, "message_id", q.ID, "problem", "not a blob trigger poison message: "+err.Error())
		return &outcome{}, nil
	}
	w, gen, ok := parseManifestName(b.BlobName)
	if !ok {
		c.log.Error(alertMessage, "alert", true, "queue", poison, "message_id", q.ID, "function", b.FunctionID,
			"container", b.ContainerName, "blob", b.BlobName, "problem", "the blob is not one of our manifests")
		return &outcome{}, nil
	}
	why := fmt.Sprintf("manifest %s/%s could not be ingested on any attempt and went to %s", b.ContainerName, b.BlobName, poison)
	return s.poisonWindow(ctx, c, w, gen, why, "queue", poison, "message_id", q.ID, "blob", b.BlobName)
}

// parseManifestName reads {scope}/{metric}/{from}_{to}/{generation}/manifest.json.
func parseManifestName(name string) (window.Window, int64, bool) {
	parts := strings.Split(strings.Trim(name, "/"), "/")
	n := len(parts)
	if n < 6 || parts[n-1] != "manifest.json" {
		return window.Window{}, 0, false
	}
	gen, err := strconv.ParseInt(parts[n-2], 10, 64)
	from, to, ok := strings.Cut(parts[n-3], "_")
	w := window.Window{Scope: strings.Join(parts[:n-4], "/"), Metric: parts[n-4], From: from, To: to}
	if err != nil || !ok || w.Validate() != nil {
		return window.Window{}, 0, false
	}
	if _, err := costapi.ParseScope(w.Scope); err != nil {
		return window.Window{}, 0, false
	}
	return w, gen, true
}

// poisonWindow marks the window failed with the poisoned message's last
// error (the latest the ledger recorded) and logs the alert. A message of
// an attempt that a newer one superseded only adds the error: the newer
// attempt owns the window.
func (s *Server) poisonWindow(ctx context.Context, c *call, w window.Window, generation int64, why string, attrs ...any) (*outcome, error) {
	wd, err := s.loadWindow(ctx, w)
	if err != nil {
		return nil, err
	}
	last := "none recorded"
	if n := len(wd.Errors); n > 0 {
		last = wd.Errors[n-1]
	}
	superseded := generation > 0 && generation < wd.Generation
	msg := why + "; last error: " + last
	c.tag("scope", w.Scope, "window", w.From+".."+w.To, "metric", w.Metric)
	failed := false
	if err := s.updateWindow(ctx, wd, func(x *store.Window) {
		failed = false
		if !superseded && (generation == 0 || generation == x.Generation) {
			failed = x.State != store.StateFailed
			x.State = store.StateFailed
		}
		x.Poisoned++
		x.AddError(msg)
	}); err != nil {
		return nil, err
	}
	if failed {
		s.tel().Window(ctx, w.Scope, w.Metric, telemetry.WindowFailed, 0)
	}
	c.log.Error(alertMessage, append([]any{"alert", true, "window_id", wd.ID, "superseded", superseded, "last_error", last}, attrs...)...)
	c.note("outcome_detail", "window marked failed", "superseded", superseded)
	return &outcome{}, nil
}

// noteRetry returns a function that records in the window's ledger an
// error the host retries for, best effort: when the message is poisoned,
// RecordPoison names it as the last error.
func (s *Server) noteRetry(ctx context.Context, wd *store.Window) func(error) {
	return func(err error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		fresh, gerr := s.d.Store.GetWindow(ctx, wd.Scope, wd.ID)
		if gerr != nil {
			return // the store is what failed, most likely
		}
		_ = s.updateWindow(ctx, fresh, func(x *store.Window) { x.AddError("will retry: " + err.Error()) })
	}
}
