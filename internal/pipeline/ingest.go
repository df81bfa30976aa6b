package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/costsync/costsync/shared/status"
	"github.com/costsync/costsync/shared/window"
)

// Ingested is the answer of POST /api/ingest.
type Ingested struct {
	RunID     string `json:"runId"`
	StatusURL string `json:"statusUrl"`
	Windows   int    `json:"windows"`
	Estimate  string `json:"estimate"`
	Existing  bool   `json:"existing"`
}

// Ingest requests an on-demand ingestion through devhost's
// POST /api/ingest, as an operator would, with an idempotency key when
// key is not empty. It returns the 202 answer.
func (p *Pipeline) Ingest(ctx context.Context, scopes []string, from, to time.Time, key string) (*Ingested, error) {
	body, _ := json.Marshal(map[string]any{"scopes": scopes, "from": from.Format(window.DateLayout), "to": to.Format(window.DateLayout)})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.Stack.DevhostURL+"/api/ingest", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	var ans Ingested
	if err := do(req, http.StatusAccepted, &ans); err != nil {
		return nil, fmt.Errorf("POST /api/ingest: %w", err)
	}
	return &ans, nil
}

// RunStatus reads a run's progress from its status URL (GET /api/runs/{id}).
func (p *Pipeline) RunStatus(ctx context.Context, statusURL string) (*status.Progress, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, statusURL, nil)
	var pr status.Progress
	if err := do(req, http.StatusOK, &pr); err != nil {
		return nil, fmt.Errorf("GET %s: %w", statusURL, err)
	}
	return &pr, nil
}

// WaitRun polls a run's status until no window is pending, printing
// progress, and returns its last progress.
func (p *Pipeline) WaitRun(ctx context.Context, statusURL string, timeout time.Duration) (*status.Progress, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		pr, err := p.RunStatus(ctx, statusURL)
		if err != nil {
			return nil, err
		}
		line := fmt.Sprintf("run %s: %d/%d windows complete, %d failed", pr.ID, pr.Complete, pr.Total, pr.Failed)
		if line != last && p.log != nil {
			fmt.Fprintln(p.log, line)
			last = line
		}
		if pr.State != status.RunRunning {
			return pr, nil
		}
		select {
		case <-ctx.Done():
			return pr, fmt.Errorf("run did not finish in %s (%s)", timeout, line)
		case <-time.After(time.Second):
		}
	}
}

// Coverage is the JSON answer of GET /api/coverage.
type Coverage struct {
	Counts status.Counts     `json:"counts"`
	Scopes []status.Coverage `json:"scopes"`
}

// CoverageURL is devhost's coverage URL for a scope ("" for all) and range.
func (p *Pipeline) CoverageURL(scope string, from, to time.Time, format string) string {
	q := url.Values{"from": {from.Format(window.DateLayout)}, "to": {to.Format(window.DateLayout)}}
	if scope != "" {
		q.Set("scope", scope)
	}
	if format != "" {
		q.Set("format", format)
	}
	return p.Stack.DevhostURL + "/api/coverage?" + q.Encode()
}

// Coverage reads GET /api/coverage as JSON.
func (p *Pipeline) Coverage(ctx context.Context, scope string, from, to time.Time) (*Coverage, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.CoverageURL(scope, from, to, ""), nil)
	var c Coverage
	if err := do(req, http.StatusOK, &c); err != nil {
		return nil, fmt.Errorf("GET /api/coverage: %w", err)
	}
	return &c, nil
}

// do sends a request to devhost and decodes a JSON answer with status want.
func do(req *http.Request, want int, v any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// SimStats are costsim's counters of faults and quota refusals.
type SimStats struct {
	Requests map[string]int `json:"requests"`
	// Status counts the answers per request kind and status ("reset":
	// the connection was reset).
	Status        map[string]map[string]int `json:"status"`
	Throttled     int                       `json:"throttled"`
	QuotaRejected int                       `json:"quotaRejected"`
	ServerErrors  int                       `json:"serverErrors"`
	Resets        int                       `json:"resets"`
}

// SimStats reads costsim's GET /_sim/stats.
func (p *Pipeline) SimStats(ctx context.Context) (*SimStats, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Stack.CostsimURL+"/_sim/stats", nil)
	resp, err := p.Stack.Transport().Do(req)
	if err != nil {
		return nil, fmt.Errorf("costsim stats: %w", err)
	}
	defer resp.Body.Close()
	var s SimStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("costsim stats: %w", err)
	}
	return &s, nil
}
