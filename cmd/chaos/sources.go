package main

import (
	"context"
	"time"

	"github.com/costsync/costsync/handlers"
	"github.com/costsync/costsync/internal/pipeline"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// The other sources under faults: every trailing day of every default scope
// ingested from Consumption usage details, 40 records a page, while a third
// of the calls are throttled (with the consumption retry header) and some
// fail or are reset. Each ends with every window complete and exact totals.
func init() {
	scenarios = append(scenarios,
		Scenario{Name: "usage-details-faults", About: "usage details, paged, with 30 % throttled and 10 % failed or reset calls",
			CostsimArgs: []string{"-page-rows", "40", "-faults", `{"throttleRate":0.3,"serverErrorRate":0.05,"resetRate":0.05}`},
			Run:         usageDetailsWindows},
	)
}

// usageDetailsWindows sends one usage details window per scope and trailing
// day, as IngestHttp would, and waits for them.
func usageDetailsWindows(ctx context.Context, p *pipeline.Pipeline, o pipeline.Options) ([]store.Window, error) {
	base, err := p.Baseline(ctx, o.Scopes)
	if err != nil {
		return nil, err
	}
	for _, sc := range o.Scopes {
		for _, d := range window.LastDays(time.Now().UTC(), o.Days) {
			msg, err := handlers.NewSourceMessage(handlers.SourceRequest{Source: landing.SourceUsageDetails,
				Window: window.Window{Scope: sc, Metric: "ActualCost", From: d, To: d}})
			if err != nil {
				return nil, err
			}
			if err := p.Send(ctx, msg); err != nil {
				return nil, err
			}
		}
	}
	return p.Wait(ctx, o.Scopes, len(o.Scopes)*o.Days, base, o.Timeout)
}
