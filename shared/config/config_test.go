package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func valid() map[string]string {
	return map[string]string{
		KeyBlobURL:        "https://acct.blob.core.windows.net",
		KeyQueueURL:       "https://acct.queue.core.windows.net",
		KeyCosmosEndpoint: "https://db.documents.azure.com:443/",
		KeyScopes:         "subscriptions/00000000-0000-0000-0000-000000000001; providers/Microsoft.Billing/billingAccounts/12345",
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != "8080" || c.CosmosDatabase != "costsync" || c.TrailingDays != 3 || len(c.Scopes) != 2 || c.Metrics[0] != "ActualCost" || c.Cloud.Name != "public" {
		t.Errorf("defaults: %+v", c)
	}
}

// Every problem is reported at once, each naming its setting.
func TestLoadReportsEveryProblem(t *testing.T) {
	m := valid()
	m[KeyBlobURL] = "http://insecure"
	delete(m, KeyQueueURL)
	m[KeyScopes] = "subscriptions/x/resourceGroups/rg"
	m[KeyMetrics] = "Usage"
	m[KeyTrailingDays] = "0"
	m[KeyCloud] = "mars"
	m[KeyToday] = "22/11/2026"
	_, err := Load(env(m))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, key := range []string{KeyBlobURL, KeyQueueURL, KeyScopes, KeyMetrics, KeyTrailingDays, KeyCloud, KeyToday, "resource group"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
}

// Scopes whose costs would be counted twice are refused, each pair named;
// what the paths cannot rule out is a warning.
func TestOverlappingScopes(t *testing.T) {
	const ea = "providers/Microsoft.Billing/billingAccounts/12345"
	for _, tc := range []struct {
		scopes, err, warning string
	}{
		{ea + "," + ea + "/departments/7", "counted twice", ""},
		{"subscriptions/00000000-0000-0000-0000-000000000001,SUBSCRIPTIONS/00000000-0000-0000-0000-000000000001", "configured twice", ""},
		{ea + ";providers/Microsoft.Billing/enrollmentAccounts/3", "does not name its enrollment", ""},
		{"subscriptions/00000000-0000-0000-0000-000000000001;" + ea, "", "is refused when its report shows a line of the subscription"},
		{ea + "/departments/7;" + ea + "/departments/8", "", ""},
	} {
		m := valid()
		m[KeyScopes] = tc.scopes
		c, err := Load(env(m))
		var scopeWarnings []string
		if c != nil {
			for _, w := range c.Warnings {
				if strings.HasPrefix(w, KeyScopes) {
					scopeWarnings = append(scopeWarnings, w)
				}
			}
		}
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), KeyScopes) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.scopes, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.scopes, err)
		case tc.warning == "" && len(scopeWarnings) != 0:
			t.Errorf("%s: warnings %v", tc.scopes, scopeWarnings)
		case tc.warning != "" && (len(scopeWarnings) != 1 || !strings.Contains(scopeWarnings[0], tc.warning)):
			t.Errorf("%s: warnings %v, want %q", tc.scopes, scopeWarnings, tc.warning)
		}
	}
}

// The cloud comes from one table; an ARM endpoint elsewhere (the local
// simulator) must be on the allow-list.
func TestCloudAndEndpoint(t *testing.T) {
	for _, tc := range []struct {
		cloud, endpoint, allowed, err string
	}{
		{"China", "", "", ""},
		{"usgov", "https://management.usgovcloudapi.net", "", ""},
		{"public", "https://127.0.0.1:8443", "127.0.0.1:8443", ""},
		{"public", "https://127.0.0.1:8443", "", KeyAllowedHosts},
		{"china", "https://management.azure.com", "", "china cloud's ARM host"},
		{"moon", "", "", "china, public, usgov"},
	} {
		m := valid()
		m[KeyCloud], m[KeyARMEndpoint], m[KeyAllowedHosts] = tc.cloud, tc.endpoint, tc.allowed
		c, err := Load(env(m))
		if tc.err == "" {
			if err != nil || !strings.EqualFold(c.Cloud.Name, tc.cloud) {
				t.Errorf("%+v: %v", tc, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: %v, want %q", tc, err, tc.err)
		}
	}
}

func TestIngestBudget(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
		err   bool
	}{
		{"", 5 * time.Minute, false},
		{"90s", 90 * time.Second, false},
		{"1s", time.Second, false},
		{"500ms", 0, true},
		{"2h", 0, true},
		{"five minutes", 0, true},
	} {
		m := valid()
		m[KeyIngestBudget] = tc.value
		c, err := Load(env(m))
		switch {
		case tc.err && (err == nil || !strings.Contains(err.Error(), KeyIngestBudget)):
			t.Errorf("%s=%q: error %v, want one naming the setting", KeyIngestBudget, tc.value, err)
		case !tc.err && err != nil:
			t.Errorf("%s=%q: %v", KeyIngestBudget, tc.value, err)
		case !tc.err && c.IngestBudget != tc.want:
			t.Errorf("%s=%q: budget %s, want %s", KeyIngestBudget, tc.value, c.IngestBudget, tc.want)
		}
	}
}

// Services.csv: a named file must exist; unnamed, the app folder's copy is
// used when there is one, else start-up warns that service fields stay
// empty.
func TestServicesFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "open-data"), 0o755); err != nil {
		t.Fatal(err)
	}
	packaged := filepath.Join(dir, filepath.FromSlash(DefaultServicesFile))
	if err := os.WriteFile(packaged, []byte("ConsumedService,ResourceType,ServiceName,ServiceCategory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	warns := func(c *Config) bool {
		for _, w := range c.Warnings {
			if strings.Contains(w, KeyServicesFile) {
				return true
			}
		}
		return false
	}
	m := valid()
	c, err := Load(env(m))
	if err != nil || c.ServicesFile != "" || !warns(c) {
		t.Errorf("no file anywhere: %q %v, warned %v", c.ServicesFile, err, c != nil && warns(c))
	}
	m[KeyAppRoot] = dir
	if c, err = Load(env(m)); err != nil || c.ServicesFile != packaged || warns(c) {
		t.Errorf("the app folder's copy: %q %v", c.ServicesFile, err)
	}
	m[KeyServicesFile] = filepath.Join(dir, "missing.csv")
	if _, err = Load(env(m)); err == nil || !strings.Contains(err.Error(), KeyServicesFile) {
		t.Errorf("a missing named file: %v", err)
	}
}
