package config

import (
	"strings"
	"testing"
	"time"

	"github.com/costsync/costsync/shared/store"
)

func orchEnv(extra map[string]string) func(string) string {
	env := map[string]string{
		KeyBlobURL: "https://a.blob.core.windows.net", KeyQueueURL: "https://a.queue.core.windows.net",
		KeyCosmosEndpoint: "https://c.documents.azure.com", KeyScopes: "subscriptions/1caaa5a3-2b66-438e-8ab4-bce37d518c5d",
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

func TestOrchestrationDefaults(t *testing.T) {
	c, err := Load(orchEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.CloseDays.String() != "1-5,19" || c.RepullAfter != 4*time.Hour || c.StaleAfter != 36*time.Hour {
		t.Errorf("close days %v, repull %s, stale %s", c.CloseDays, c.RepullAfter, c.StaleAfter)
	}
	r := c.Rates
	if store.FormatLimits(r.Scope) != "2/1m,10/1h,50/1d" || store.FormatLimits(r.Tenant) != "10/1m" ||
		store.FormatLimits(r.BillingAccount) != "5/1m" || store.FormatLimits(r.Client) != "30/1m" || r.Slack != 5*time.Second {
		t.Errorf("rates %+v", r)
	}
}

func TestOrchestrationSettings(t *testing.T) {
	c, err := Load(orchEnv(map[string]string{KeyCloseDays: "none", KeyRepullAfter: "0s", KeyRateScope: "2/1s, 10/1m", KeyRateClient: "none", KeyRateSlack: "250ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CloseDays) != 0 || c.RepullAfter != 0 || store.FormatLimits(c.Rates.Scope) != "2/1s,10/1m" || c.Rates.Client != nil || c.Rates.Slack != 250*time.Millisecond {
		t.Errorf("config %+v", c)
	}
	_, err = Load(orchEnv(map[string]string{KeyCloseDays: "0-3", KeyRepullAfter: "-1h", KeyStaleAfter: "a day", KeyRateScope: "2 per minute", KeyRateTenant: "0/1m", KeyRateSlack: "x"}))
	for _, key := range []string{KeyCloseDays, KeyRepullAfter, KeyStaleAfter, KeyRateScope, KeyRateTenant, KeyRateSlack} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func TestLoadTool(t *testing.T) {
	c, err := LoadTool(orchEnv(map[string]string{KeyBlobURL: "", KeyQueueURL: ""}))
	if err != nil {
		t.Fatalf("LoadTool without the storage account: %v", err)
	}
	if c.BlobServiceURL != "" || c.QueueServiceURL != "" {
		t.Errorf("storage URLs %q %q, want empty", c.BlobServiceURL, c.QueueServiceURL)
	}
	if _, err := LoadTool(orchEnv(map[string]string{KeyBlobURL: "", KeyCosmosEndpoint: ""})); err == nil || !strings.Contains(err.Error(), KeyCosmosEndpoint) {
		t.Errorf("LoadTool without Cosmos DB: %v", err)
	}
}
