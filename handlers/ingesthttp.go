package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/window"
)

// ingestRequest is the body of POST /api/ingest. It decodes strictly.
type ingestRequest struct {
	Scopes  []string `json:"scopes"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	Metrics []string `json:"metrics"`
	DryRun  bool     `json:"dryRun"`
}

// ingestAnswer is the 202 (or dry-run 200) body.
type ingestAnswer struct {
	RunID    string `json:"runId"`
	Windows  int    `json:"windows"`
	Requests int    `json:"requests"`
	// Estimate is how long the requests take at the documented Cost Details
	// quota (10 per scope per hour), scopes in parallel.
	Estimate string `json:"estimate"`
	DryRun   bool   `json:"dryRun,omitempty"`
}

// historyMonths is how far back Cost Details serves data.
const historyMonths = 13

// perScopeHourly is the documented Cost Details limit per scope and hour.
const perScopeHourly = 10

// ingestHTTP validates an on-demand ingestion or backfill, splits it into
// windows of at most one calendar month, and enqueues them.
func (s *Server) ingestHTTP(ctx context.Context, c *call) (*outcome, error) {
	h, err := c.req.HTTPTrigger("req")
	if err != nil {
		return nil, permanent(err)
	}
	bad := func(format string, args ...any) (*outcome, error) {
		msg := fmt.Sprintf(format, args...)
		c.note("outcome_detail", "rejected: "+msg)
		return &outcome{outputs: map[string]any{"res": jsonResponse(http.StatusBadRequest, map[string]string{"error": msg})}}, nil
	}
	var r ingestRequest
	dec := json.NewDecoder(bytes.NewReader([]byte(h.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return bad("invalid body: %v (want {\"scopes\": [...], \"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\", \"metrics\": [\"ActualCost\"], \"dryRun\": false})", err)
	}
	cfg := s.d.Config
	configured := map[string]costapi.Scope{}
	for _, sc := range cfg.Scopes {
		configured[sc.Key()] = sc
	}
	var scopes []costapi.Scope
	if len(r.Scopes) == 0 {
		scopes = cfg.Scopes
	}
	for _, raw := range r.Scopes {
		sc, err := costapi.ParseScope(raw)
		if err != nil {
			return bad("%v", err)
		}
		known, ok := configured[sc.Key()]
		if !ok {
			return bad("scope %q is not configured (COSTSYNC_SCOPES); only configured scopes can be ingested", raw)
		}
		scopes = append(scopes, known)
	}
	from, err := window.ParseDate(r.From)
	if err != nil {
		return bad("from: %v", err)
	}
	to, err := window.ParseDate(r.To)
	if err != nil {
		return bad("to: %v", err)
	}
	now := s.d.Now()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	oldest := time.Date(today.Year(), today.Month()-historyMonths, 1, 0, 0, 0, 0, time.UTC)
	switch {
	case to.Before(from):
		return bad("to %s is before from %s", r.To, r.From)
	case to.After(today):
		return bad("to %s is in the future (today is %s)", r.To, today.Format(window.DateLayout))
	case from.Before(oldest):
		return bad("from %s is more than %d months back; Cost Details serves data from %s on (use exports for older history)", r.From, historyMonths, oldest.Format(window.DateLayout))
	}
	metrics := r.Metrics
	if len(metrics) == 0 {
		metrics = cfg.Metrics
	}
	for i, m := range metrics {
		switch strings.ToLower(m) {
		case "actualcost":
			metrics[i] = "ActualCost"
		case "amortizedcost":
			metrics[i] = "AmortizedCost"
		default:
			return bad("metric %q is not ActualCost or AmortizedCost", m)
		}
	}
	runID := runID(scopes, metrics, r.From, r.To)
	var msgs []windowMessage
	perScope := 0
	for _, sc := range scopes {
		n := 0
		for _, m := range metrics {
			for _, w := range window.Split(sc.Path, m, from, to) {
				msgs = append(msgs, windowMessage{Version: messageVersion, Window: w, Step: stepRequest, RunID: runID})
				n++
			}
		}
		perScope = max(perScope, n)
	}
	ans := ingestAnswer{RunID: runID, Windows: len(msgs), Requests: len(msgs), DryRun: r.DryRun,
		Estimate: (time.Duration(perScope) * time.Hour / perScopeHourly).String()}
	c.note("run_id", runID, "windows", len(msgs), "dry_run", r.DryRun)
	if r.DryRun {
		return &outcome{outputs: map[string]any{"res": jsonResponse(http.StatusOK, ans)}}, nil
	}
	return &outcome{outputs: map[string]any{
		"res":     jsonResponse(http.StatusAccepted, ans),
		"windows": msgs,
	}}, nil
}

// runID is deterministic for the same request, so a repeated request names
// the same run.
func runID(scopes []costapi.Scope, metrics []string, from, to string) string {
	h := sha256.New()
	for _, s := range scopes {
		h.Write([]byte(s.Key() + "\n"))
	}
	h.Write([]byte(strings.Join(metrics, ",") + "\n" + from + "\n" + to))
	return "run-" + hex.EncodeToString(h.Sum(nil))[:16]
}
