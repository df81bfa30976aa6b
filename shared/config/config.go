// Package config loads and validates costsync's settings once, at start-up,
// from the environment (the Functions host passes app settings as
// environment variables). Every problem is reported at once, each naming the
// setting that causes it. Loading makes no network calls.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/costsync/costsync/shared/costapi"
)

// Config is every setting costsync reads.
type Config struct {
	// Port is where the custom handler listens (FUNCTIONS_CUSTOMHANDLER_PORT).
	Port string

	// BlobServiceURL and QueueServiceURL are the storage account's endpoints
	// (AzureWebJobsStorage__blobServiceUri / __queueServiceUri), reached with
	// the managed identity.
	BlobServiceURL  string
	QueueServiceURL string
	// ClientID selects a user-assigned identity (AZURE_CLIENT_ID, or
	// AzureWebJobsStorage__clientId); empty means system-assigned.
	ClientID string

	CosmosEndpoint string
	CosmosDatabase string
	// CosmosEmulator installs the compatibility policy for the local
	// @vercel/cosmosdb-server emulator. Never set it against real Cosmos.
	CosmosEmulator bool

	Scopes  []costapi.Scope
	Metrics []string

	Cloud        costapi.Cloud
	ARMEndpoint  string   // overrides the cloud's ARM endpoint (local simulator)
	AllowedHosts []string // extra hosts links may point at

	// TrailingDays is how many days before today PlanWindows re-pulls.
	TrailingDays int
	// ReportAttempts bounds how often a Failed or expired report is requested again.
	ReportAttempts int
	// MaxPolls bounds how often one report is polled before it is requested again.
	MaxPolls int
	// Today overrides the current date (tests); zero means the clock.
	Today time.Time

	// Warnings are settings that are valid but may not do what is meant
	// (scopes whose overlap the paths cannot rule out); the handler logs
	// them at start-up.
	Warnings []string

	// LegacyExports names the native exports of the older partitioned
	// format (_manifest.json, 2021-01-01), whose manifest does not say the
	// scope and dataset, by lower-cased export name.
	LegacyExports map[string]LegacyExport
}

// LegacyExport is the scope and dataset of an export of the older format.
type LegacyExport struct {
	Scope   string
	Dataset string // ActualCost, AmortizedCost, FocusCost or Usage
}

// The setting names.
const (
	KeyPort           = "FUNCTIONS_CUSTOMHANDLER_PORT"
	KeyBlobURL        = "AzureWebJobsStorage__blobServiceUri"
	KeyQueueURL       = "AzureWebJobsStorage__queueServiceUri"
	KeyStorageClient  = "AzureWebJobsStorage__clientId"
	KeyClientID       = "AZURE_CLIENT_ID"
	KeyCosmosEndpoint = "COSTSYNC_COSMOS_ENDPOINT"
	KeyCosmosDatabase = "COSTSYNC_COSMOS_DATABASE"
	KeyCosmosEmulator = "COSTSYNC_COSMOS_EMULATOR"
	KeyScopes         = "COSTSYNC_SCOPES"
	KeyMetrics        = "COSTSYNC_METRICS"
	KeyCloud          = "COSTSYNC_CLOUD"
	KeyARMEndpoint    = "COSTSYNC_ARM_ENDPOINT"
	KeyAllowedHosts   = "COSTSYNC_ALLOWED_HOSTS"
	KeyTrailingDays   = "COSTSYNC_TRAILING_DAYS"
	KeyReportAttempts = "COSTSYNC_REPORT_ATTEMPTS"
	KeyMaxPolls       = "COSTSYNC_MAX_POLLS"
	KeyToday          = "COSTSYNC_TODAY"
	KeyLegacyExports  = "COSTSYNC_LEGACY_EXPORTS"
)

// Load reads the configuration. getenv is os.Getenv in production.
func Load(getenv func(string) string) (*Config, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }

	c := &Config{
		Port:           get(KeyPort),
		BlobServiceURL: get(KeyBlobURL), QueueServiceURL: get(KeyQueueURL),
		ClientID:       get(KeyClientID),
		CosmosEndpoint: get(KeyCosmosEndpoint), CosmosDatabase: get(KeyCosmosDatabase),
		ARMEndpoint: get(KeyARMEndpoint),
	}
	if c.Port == "" {
		c.Port = "8080"
	}
	if n, err := strconv.Atoi(c.Port); err != nil || n < 1 || n > 65535 {
		bad(KeyPort, "%q is not a TCP port", c.Port)
	}
	if c.ClientID == "" {
		c.ClientID = get(KeyStorageClient)
	}
	for key, v := range map[string]string{KeyBlobURL: c.BlobServiceURL, KeyQueueURL: c.QueueServiceURL, KeyCosmosEndpoint: c.CosmosEndpoint} {
		if v == "" {
			bad(key, "required (an https URL)")
			continue
		}
		if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" {
			bad(key, "%q is not an https URL (managed identity tokens are only sent over https)", v)
		}
	}
	if c.ARMEndpoint != "" {
		if u, err := url.Parse(c.ARMEndpoint); err != nil || u.Scheme != "https" || u.Host == "" {
			bad(KeyARMEndpoint, "%q is not an https URL", c.ARMEndpoint)
		}
	}
	if c.CosmosDatabase == "" {
		c.CosmosDatabase = "costsync"
	}
	if v := get(KeyCosmosEmulator); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(KeyCosmosEmulator, "%q is not true or false", v)
		}
		c.CosmosEmulator = b
	}

	cloud := get(KeyCloud)
	if cloud == "" {
		cloud = "public"
	}
	if cl, err := costapi.LookupCloud(cloud); err == nil {
		c.Cloud = cl
	} else {
		bad(KeyCloud, "%v", err)
	}
	for _, h := range splitList(get(KeyAllowedHosts)) {
		if strings.ContainsAny(h, "/?#@") {
			bad(KeyAllowedHosts, "%q is not a host[:port]", h)
			continue
		}
		c.AllowedHosts = append(c.AllowedHosts, h)
	}
	if u, err := url.Parse(c.ARMEndpoint); c.ARMEndpoint != "" && err == nil && u.Host != "" && c.Cloud.ARM != "" {
		// Links are followed only to the cloud's hosts and the allowed ones:
		// an endpoint elsewhere (the local simulator) must be listed.
		if arm, _ := url.Parse(c.Cloud.ARM); !strings.EqualFold(u.Host, arm.Host) && !slices.ContainsFunc(c.AllowedHosts, func(h string) bool { return strings.EqualFold(h, u.Host) }) {
			bad(KeyARMEndpoint, "host %s is neither the %s cloud's ARM host nor listed in %s", u.Host, c.Cloud.Name, KeyAllowedHosts)
		}
	}

	scopes := splitList(get(KeyScopes))
	if len(scopes) == 0 {
		bad(KeyScopes, "required: at least one scope, separated by commas or semicolons (forms: %s)", strings.Join(costapi.ScopeForms(), ", "))
	}
	for _, s := range scopes {
		sc, err := costapi.ParseScope(s)
		if err != nil {
			bad(KeyScopes, "%v", err)
			continue
		}
		c.Scopes = append(c.Scopes, sc)
	}
	overlaps, notes := costapi.Overlap(c.Scopes)
	for _, err := range overlaps {
		bad(KeyScopes, "%v", err)
	}
	for _, n := range notes {
		c.Warnings = append(c.Warnings, KeyScopes+": "+n)
	}

	c.Metrics = splitList(get(KeyMetrics))
	if len(c.Metrics) == 0 {
		c.Metrics = []string{"ActualCost"}
	}
	for i, m := range c.Metrics {
		switch strings.ToLower(m) {
		case "actualcost":
			c.Metrics[i] = "ActualCost"
		case "amortizedcost":
			c.Metrics[i] = "AmortizedCost"
		default:
			bad(KeyMetrics, "%q is not ActualCost or AmortizedCost", m)
		}
	}

	c.TrailingDays = intSetting(get, bad, KeyTrailingDays, 3, 1, 31)
	c.ReportAttempts = intSetting(get, bad, KeyReportAttempts, 3, 1, 10)
	c.MaxPolls = intSetting(get, bad, KeyMaxPolls, 120, 1, 10000)
	if v := get(KeyToday); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			bad(KeyToday, "%q is not a YYYY-MM-DD date", v)
		}
		c.Today = t
	}
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
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration:\n%w", errors.Join(errs...))
	}
	return c, nil
}

// Now returns the current time, or the configured day at the current time of day.
func (c *Config) Now() time.Time {
	now := time.Now().UTC()
	if c.Today.IsZero() {
		return now
	}
	return time.Date(c.Today.Year(), c.Today.Month(), c.Today.Day(), now.Hour(), now.Minute(), now.Second(), 0, time.UTC)
}

func intSetting(get func(string) string, bad func(string, string, ...any), key string, def, lo, hi int) int {
	v := get(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		bad(key, "%q is not a whole number from %d to %d", v, lo, hi)
		return def
	}
	return n
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func slicesContainsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
