package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/costsync/costsync/internal/logscan"
	"github.com/costsync/costsync/internal/pipeline"
	"github.com/costsync/costsync/shared/store"
)

// The Cost Management faults (issue 3): each ends with every window
// complete and exact totals, and each proves it met its fault: costsim's
// counters must show the fault injected, every ARM request must have
// carried a ClientType header, and no log of the stack may hold a bearer
// token, a SAS signature or an Authorization header.
func init() {
	scenarios = append(scenarios,
		Scenario{Name: "throttle", About: "30 % of Cost Management calls answer 429 with the cost-management retry-after headers",
			CostsimArgs: []string{"-faults", `{"throttleRate":0.3}`},
			Run:         costFaults(func(c simCounters) (int, string) { return c.Throttled, fmt.Sprintf("%d throttled calls", c.Throttled) })},
		Scenario{Name: "server-errors", About: "10 % of calls answer 5xx, and some connections are reset",
			CostsimArgs: []string{"-faults", `{"serverErrorRate":0.1,"resetRate":0.1}`},
			Run: costFaults(func(c simCounters) (int, string) {
				return min(c.ServerErrors, c.Resets), fmt.Sprintf("%d server errors and %d connection resets", c.ServerErrors, c.Resets)
			})},
		Scenario{Name: "failed-report", About: "every report ends Failed once before it succeeds",
			CostsimArgs: []string{"-faults", `{"failReportOnce":true}`},
			Run: costFaults(func(c simCounters) (int, string) {
				return c.FailedReports, fmt.Sprintf("%d failed reports", c.FailedReports)
			})},
		Scenario{Name: "expired-link", About: "every download link has expired when first used",
			CostsimArgs: []string{"-faults", `{"expireLinksOnce":true}`},
			Run: costFaults(func(c simCounters) (int, string) {
				return c.ExpiredLinks, fmt.Sprintf("%d expired links", c.ExpiredLinks)
			})},
	)
}

// simCounters are the costsim counters (GET /_sim/stats) the scenarios read.
type simCounters struct {
	Throttled, ServerErrors, Resets, FailedReports, ExpiredLinks, MissingClientType int
	Requests                                                                        map[string]int
}

// costFaults runs PlanAndWait and then checks that the fault happened
// (injected returns more than 0, and says what), that every request carried
// ClientType, and that the stack's logs hold no secret.
func costFaults(injected func(simCounters) (int, string)) func(context.Context, *pipeline.Pipeline, pipeline.Options) ([]store.Window, error) {
	return func(ctx context.Context, p *pipeline.Pipeline, o pipeline.Options) ([]store.Window, error) {
		ws, err := PlanAndWait(ctx, p, o)
		if err != nil {
			return ws, err
		}
		c, err := counters(ctx, p)
		if err != nil {
			return ws, err
		}
		var problems []string
		n, what := injected(c)
		if n == 0 {
			problems = append(problems, fmt.Sprintf("costsim injected %s: the scenario proved nothing", what))
		}
		if c.MissingClientType > 0 {
			problems = append(problems, fmt.Sprintf("%d Cost Management requests without a ClientType header", c.MissingClientType))
		}
		leaks, st, err := logscan.Dir(filepath.Join(o.StackDir, "logs"))
		if err != nil {
			return ws, err
		}
		if st.Lines == 0 {
			problems = append(problems, "no log lines to scan")
		}
		for i, l := range leaks {
			if i == 5 {
				problems = append(problems, fmt.Sprintf("... %d more secrets in the logs", len(leaks)-5))
				break
			}
			problems = append(problems, "secret in a log: "+l.String())
		}
		if len(problems) > 0 {
			return ws, fmt.Errorf("%s", strings.Join(problems, "; "))
		}
		fmt.Fprintf(os.Stderr, "  costsim injected %s in %d requests; %d log lines in %d files hold no secret\n",
			what, c.Requests["create"]+c.Requests["poll"]+c.Requests["download"], st.Lines, st.Files)
		return ws, nil
	}
}

func counters(ctx context.Context, p *pipeline.Pipeline) (simCounters, error) {
	var c simCounters
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Stack.CostsimURL+"/_sim/stats", nil)
	resp, err := p.Stack.Transport().Do(req)
	if err != nil {
		return c, fmt.Errorf("costsim stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return c, fmt.Errorf("costsim stats: %s: %s", resp.Status, b)
	}
	return c, json.NewDecoder(resp.Body).Decode(&c)
}
