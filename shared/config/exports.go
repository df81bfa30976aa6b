package config

import "strings"

// LegacyExport is the scope and dataset of an export of the older format.
type LegacyExport struct {
	Scope   string
	Dataset string // ActualCost, AmortizedCost, FocusCost or Usage
}

// loadLegacyExports reads COSTSYNC_LEGACY_EXPORTS: exportName=Dataset@scope,
// separated by ";" or ",".
func loadLegacyExports(c *Config, get func(string) string, bad func(string, string, ...any)) {
	c.LegacyExports = map[string]LegacyExport{}
	for _, e := range splitList(get(KeyLegacyExports)) {
		name, rest, ok1 := strings.Cut(e, "=")
		dataset, scope, ok2 := strings.Cut(rest, "@")
		name, dataset, scope = strings.TrimSpace(name), strings.TrimSpace(dataset), strings.Trim(strings.TrimSpace(scope), "/")
		switch {
		case !ok1 || !ok2 || name == "" || scope == "":
			bad(KeyLegacyExports, "%q is not exportName=Dataset@scope", e)
		case !slicesContainsFold([]string{"ActualCost", "AmortizedCost", "FocusCost", "Usage"}, dataset):
			bad(KeyLegacyExports, "%q: dataset %q is not ActualCost, AmortizedCost, FocusCost or Usage", e, dataset)
		case !strings.HasPrefix(strings.ToLower(scope), "subscriptions/") && !strings.HasPrefix(strings.ToLower(scope), "providers/"):
			bad(KeyLegacyExports, "%q: scope %q is not an ARM scope (subscriptions/... or providers/...)", e, scope)
		default:
			c.LegacyExports[strings.ToLower(name)] = LegacyExport{Scope: scope, Dataset: dataset}
		}
	}
}

func slicesContainsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
