package main

// The Cost Management faults (issue 3): each ends with every window
// complete and exact totals.
func init() {
	scenarios = append(scenarios,
		Scenario{Name: "throttle", About: "30 % of Cost Management calls answer 429 with the cost-management retry-after headers",
			CostsimArgs: []string{"-faults", `{"throttleRate":0.3}`}},
		Scenario{Name: "server-errors", About: "10 % of calls answer 5xx, and some connections are reset",
			CostsimArgs: []string{"-faults", `{"serverErrorRate":0.1,"resetRate":0.05}`}},
		Scenario{Name: "failed-report", About: "every report ends Failed once before it succeeds",
			CostsimArgs: []string{"-faults", `{"failReportOnce":true}`}},
		Scenario{Name: "expired-link", About: "every download link has expired when first used",
			CostsimArgs: []string{"-faults", `{"expireLinksOnce":true}`}},
	)
}
