package config

import (
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

func TestOverlappingScopes(t *testing.T) {
	m := valid()
	m[KeyScopes] = "providers/Microsoft.Billing/billingAccounts/12345,providers/Microsoft.Billing/billingAccounts/12345/departments/7"
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "counted twice") {
		t.Errorf("overlap: %v", err)
	}
	m[KeyScopes] = "subscriptions/00000000-0000-0000-0000-000000000001,SUBSCRIPTIONS/00000000-0000-0000-0000-000000000001"
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate: %v", err)
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
