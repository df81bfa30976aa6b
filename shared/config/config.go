// Package config loads and validates costsync's settings once, at start-up,
// from the environment (the Functions host passes app settings as
// environment variables). Every problem is reported at once, each naming the
// setting that causes it. Loading makes no network calls.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
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
	// IngestBudget is how long one IngestManifest or IngestPart invocation
	// ingests before it checkpoints and hands the rest of its part to a
	// cost-parts message. It must leave room under functionTimeout.
	IngestBudget time.Duration
	// ServicesFile is the FinOps toolkit's open-data Services.csv, which maps
	// ConsumedService and ResourceType to the FOCUS service name and
	// category (COSTSYNC_SERVICES_FILE, default open-data/Services.csv in the
	// app's folder when it is there). Empty: those fields stay empty, and
	// start-up warns.
	ServicesFile string
	// Today overrides the current date (tests); zero means the clock.
	Today time.Time

	// Warnings are settings that are valid but may not do what is meant
	// (scopes whose overlap the paths cannot rule out); the handler logs
	// them at start-up.
	Warnings []string
	// CloseDays are the days of the next month on which PlanWindows pulls a
	// closing month again; the last one is its final pull. Empty ("none"):
	// months are not re-pulled and are final when they end.
	CloseDays window.CloseDays
	// RepullAfter is the least time between two planned pulls of the same
	// window: Cost Management refreshes its data every four hours, so a
	// timer that fires twice (or past due) requests nothing twice.
	RepullAfter time.Duration
	// StaleAfter is how old the last success of a day that the schedule
	// keeps fresh may be before coverage calls it stale.
	StaleAfter time.Duration
	// Rates are the Cost Details quotas the rate governor keeps.
	Rates RateLimits

	// LegacyExports names the native exports of the older partitioned
	// format (_manifest.json, 2021-01-01), whose manifest does not say the
	// scope and dataset, by lower-cased export name.
	LegacyExports map[string]LegacyExport
}

// RateLimits are the Cost Details quotas (reference/cost-apis.md §1.7) the
// rate governor keeps, shared by every function instance through the
// ledger. Local runs scale them down to scale time.
type RateLimits struct {
	// Scope: per distinct scope (2/min, 10/h, 50/day).
	Scope []store.Limit
	// Tenant: all subscription scopes of the tenant (10/min).
	Tenant []store.Limit
	// BillingAccount: all other scopes of one billing account (5/min).
	BillingAccount []store.Limit
	// Client: every call of the client application (30/min).
	Client []store.Limit
	// Slack is added to every period when a call is booked for later.
	Slack time.Duration
}

// DefaultRateLimits are the documented Cost Details limits.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		Scope:          []store.Limit{{Calls: 2, Per: time.Minute}, {Calls: 10, Per: time.Hour}, {Calls: 50, Per: 24 * time.Hour}},
		Tenant:         []store.Limit{{Calls: 10, Per: time.Minute}},
		BillingAccount: []store.Limit{{Calls: 5, Per: time.Minute}},
		Client:         []store.Limit{{Calls: 30, Per: time.Minute}},
		Slack:          store.DefaultSlack,
	}
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

	KeyCloseDays          = "COSTSYNC_CLOSE_DAYS"
	KeyRepullAfter        = "COSTSYNC_REPULL_AFTER"
	KeyStaleAfter         = "COSTSYNC_STALE_AFTER"
	KeyRateScope          = "COSTSYNC_RATE_SCOPE"
	KeyRateTenant         = "COSTSYNC_RATE_TENANT"
	KeyRateBillingAccount = "COSTSYNC_RATE_BILLING_ACCOUNT"
	KeyRateClient         = "COSTSYNC_RATE_CLIENT"
	KeyRateSlack          = "COSTSYNC_RATE_SLACK"
	KeyLegacyExports      = "COSTSYNC_LEGACY_EXPORTS"
	KeyIngestBudget       = "COSTSYNC_INGEST_BUDGET"
	KeyServicesFile       = "COSTSYNC_SERVICES_FILE"
	// KeyAppRoot is set by the Functions host to the app's folder.
	KeyAppRoot = "FUNCTIONS_APP_ROOT_PATH"
)

// DefaultServicesFile is where the packaged app keeps Services.csv,
// relative to its folder.
const DefaultServicesFile = "open-data/Services.csv"

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

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
	c.IngestBudget = 5 * time.Minute
	if v := get(KeyIngestBudget); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			bad(KeyIngestBudget, "%q is not a duration from 1s to 1h, such as 5m or 90s", v)
		} else {
			c.IngestBudget = d
		}
	}
	c.ServicesFile = get(KeyServicesFile)
	switch {
	case c.ServicesFile != "":
		if st, err := os.Stat(c.ServicesFile); err != nil || st.IsDir() {
			bad(KeyServicesFile, "%q is not a readable file (the FinOps toolkit's open-data Services.csv)", c.ServicesFile)
		}
	case get(KeyAppRoot) != "":
		if p := filepath.Join(get(KeyAppRoot), DefaultServicesFile); fileExists(p) {
			c.ServicesFile = p
		}
	}
	if c.ServicesFile == "" {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: not set and no %s in the app's folder: service name and category are left empty", KeyServicesFile, DefaultServicesFile))
	}
	if v := get(KeyToday); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			bad(KeyToday, "%q is not a YYYY-MM-DD date", v)
		}
		c.Today = t
	}
	loadOrchestration(c, get, bad)
	loadLegacyExports(c, get, bad)
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration:\n%w", errors.Join(errs...))
	}
	return c, nil
}

// loadOrchestration reads the settings of planning, coverage and the rate
// governor.
func loadOrchestration(c *Config, get func(string) string, bad func(string, string, ...any)) {
	days := get(KeyCloseDays)
	if days == "" {
		days = window.DefaultCloseDays
	}
	if !strings.EqualFold(days, "none") {
		cd, err := window.ParseCloseDays(days)
		if err != nil {
			bad(KeyCloseDays, "%v (or none)", err)
		}
		c.CloseDays = cd
	}
	c.RepullAfter = durationSetting(get, bad, KeyRepullAfter, 4*time.Hour)
	c.StaleAfter = durationSetting(get, bad, KeyStaleAfter, 36*time.Hour)
	c.Rates = DefaultRateLimits()
	for key, dst := range map[string]*[]store.Limit{KeyRateScope: &c.Rates.Scope, KeyRateTenant: &c.Rates.Tenant, KeyRateBillingAccount: &c.Rates.BillingAccount, KeyRateClient: &c.Rates.Client} {
		v := get(key)
		if v == "" {
			continue
		}
		ls, err := store.ParseLimits(v)
		if err != nil {
			bad(key, "%v (or none)", err)
			continue
		}
		*dst = ls
	}
	c.Rates.Slack = durationSetting(get, bad, KeyRateSlack, c.Rates.Slack)
}

// durationSetting reads a Go duration such as 90s or 4h; it must not be negative.
func durationSetting(get func(string) string, bad func(string, string, ...any), key string, def time.Duration) time.Duration {
	v := get(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		bad(key, "%q is not a duration such as 90s, 30m or 4h", v)
		return def
	}
	return d
}

// LoadTool is Load for the command line, which runs the pipeline in one
// process without the function app's storage account: the two storage
// settings are not required (they are left empty).
func LoadTool(getenv func(string) string) (*Config, error) {
	c, err := Load(func(k string) string {
		if (k == KeyBlobURL || k == KeyQueueURL) && strings.TrimSpace(getenv(k)) == "" {
			return "https://unused.invalid"
		}
		return getenv(k)
	})
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(getenv(KeyBlobURL)) == "" {
		c.BlobServiceURL = ""
	}
	if strings.TrimSpace(getenv(KeyQueueURL)) == "" {
		c.QueueServiceURL = ""
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
