package main

import (
	"context"
	"fmt"
	"time"

	"github.com/costsync/costsync/internal/pipeline"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// The orchestration scenarios (issue 6).
func init() {
	scenarios = append(scenarios,
		Scenario{Name: "backfill",
			About: "a 13-month backfill of the 3 scopes through POST /api/ingest while 30 % of calls are throttled and costsim enforces the Cost Details quotas (time ×60)",
			CostsimArgs: []string{"-rows-per-day", "3", "-blob-rows", "0", "-polls", "1",
				"-enforce-quota", "-quota-scale", fmt.Sprint(pipeline.LocalTimeScale), "-faults", `{"throttleRate":0.3}`},
			Range: func(today time.Time) (time.Time, time.Time) {
				return window.Oldest(today), window.Day(today).AddDate(0, 0, -1)
			},
			Run: backfillScenario,
		},
	)
}

// backfillScenario requests the backfill through the HTTP API, twice with
// the same idempotency key (one run), and waits for the run.
func backfillScenario(ctx context.Context, p *pipeline.Pipeline, o pipeline.Options) ([]store.Window, error) {
	today := time.Now().UTC()
	from, to := window.Oldest(today), window.Day(today).AddDate(0, 0, -1)
	run, err := p.Ingest(ctx, nil, from, to, "chaos-backfill")
	if err != nil {
		return nil, err
	}
	if again, err := p.Ingest(ctx, nil, from, to, "chaos-backfill"); err != nil || again.RunID != run.RunID {
		return nil, fmt.Errorf("the same idempotency key gave run %v (%v), want %s", again, err, run.RunID)
	}
	if _, err := p.WaitRun(ctx, run.StatusURL, o.Timeout); err != nil {
		return nil, err
	}
	pr, err := p.RunStatus(ctx, run.StatusURL)
	if err != nil {
		return nil, err
	}
	var out []store.Window
	for _, w := range pr.Windows {
		out = append(out, store.Window{ID: w.WindowID, Scope: w.Scope, Metric: w.Metric, From: w.From, To: w.To, State: store.WindowState(w.State)})
	}
	return out, nil
}
