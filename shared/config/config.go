// Package config loads and validates costsync's settings once, at start-up,
// from the environment (the Functions host passes app settings as
// environment variables). Every problem is reported at once, each naming the
// setting that causes it. Loading makes no network calls.
package config

import (
	"errors"
	"fmt"
	"net/url"
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
	// IngestBudget is how long one IngestManifest or IngestPart invocation
	// ingests before it checkpoints and hands the rest of its part to a
	// cost-parts message. It must leave room under functionTimeout.
	IngestBudget time.Duration
	// Today overrides the current date (tests); zero means the clock.
	Today time.Time
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
	KeyIngestBudget   = "COSTSYNC_INGEST_BUDGET"
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
	if cl, ok := costapi.Clouds[strings.ToLower(cloud)]; ok {
		c.Cloud = cl
	} else {
		bad(KeyCloud, "%q is not one of public, china, usgov", cloud)
	}
	for _, h := range splitList(get(KeyAllowedHosts)) {
		if strings.ContainsAny(h, "/?#@") {
			bad(KeyAllowedHosts, "%q is not a host[:port]", h)
			continue
		}
		c.AllowedHosts = append(c.AllowedHosts, h)
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
	if err := checkOverlap(c.Scopes); err != nil {
		bad(KeyScopes, "%v", err)
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
	if v := get(KeyToday); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			bad(KeyToday, "%q is not a YYYY-MM-DD date", v)
		}
		c.Today = t
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

// checkOverlap refuses configured scopes of which one contains another (a
// billing account and one of its departments, say): both would report the
// same costs and chargeback would count them twice. Subscriptions cannot be
// placed under billing scopes without a network call, so a subscription next
// to an EA or MCA billing scope is refused only by the Cost Management issue's
// later check; here the path-containment rule applies.
func checkOverlap(scopes []costapi.Scope) error {
	var errs []error
	for i, a := range scopes {
		for j, b := range scopes {
			if i == j {
				continue
			}
			ak, bk := a.Key(), b.Key()
			if ak == bk && i < j {
				errs = append(errs, fmt.Errorf("scope %q is configured twice", a.Path))
			} else if ak != bk && strings.HasPrefix(bk, ak+"/") {
				errs = append(errs, fmt.Errorf("scope %q contains %q: its costs would be counted twice; configure one of them", a.Path, b.Path))
			}
		}
	}
	return errors.Join(errs...)
}
