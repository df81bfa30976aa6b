package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
)

// TestInitProvisions runs init's provisioning twice against the emulators
// and reads back what it made: the containers' partition keys and indexing
// policies, the blob containers and the queues.
func TestInitProvisions(t *testing.T) {
	st := localstack.StartT(t, localstack.Options{Components: localstack.Components{Storage: true, Cosmos: true, Costsim: true}})
	// Managed identity from costsim's endpoint, as the local stack does.
	cred, err := st.Credential()
	if err != nil {
		t.Fatal(err)
	}
	o := initOptions{cosmosEndpoint: st.CosmosURL, database: "costsync-init-test", blobURL: st.BlobURL, queueURL: st.QueueURL, emulator: true}
	ctx := t.Context()
	for run := range 2 {
		var out bytes.Buffer
		if err := provision(ctx, o, cred, st.Transport(), &out); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		for _, want := range []string{"containers costs and ledger", "cost-reports, cost-manifests", "cost-windows, cost-parts"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run %d printed %q, want it to mention %q", run, out.String(), want)
			}
		}
	}

	client, err := azcosmos.NewClient(st.CosmosURL, cred, &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: st.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	for name, policy := range map[string]*azcosmos.IndexingPolicy{store.CostsContainer: store.CostsIndexingPolicy(), store.LedgerContainer: store.LedgerIndexingPolicy()} {
		c, err := client.NewContainer(o.database, name)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Read(ctx, nil)
		if err != nil {
			t.Fatalf("read container %s: %v", name, err)
		}
		p := resp.ContainerProperties
		if !slices.Equal(p.PartitionKeyDefinition.Paths, []string{"/pk"}) {
			t.Errorf("%s partition key %v, want /pk", name, p.PartitionKeyDefinition.Paths)
		}
		if p.IndexingPolicy == nil || fmt.Sprint(p.IndexingPolicy.IncludedPaths) != fmt.Sprint(policy.IncludedPaths) || fmt.Sprint(p.IndexingPolicy.ExcludedPaths) != fmt.Sprint(policy.ExcludedPaths) {
			t.Errorf("%s indexing policy %+v, want %+v", name, p.IndexingPolicy, policy)
		}
	}
	svc, err := azqueue.NewServiceClient(st.QueueURL, cred, &azqueue.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: st.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queue.All() {
		if _, err := svc.NewQueueClient(q).GetProperties(ctx, nil); err != nil {
			t.Errorf("queue %s: %v", q, err)
		}
	}
}

// TestInitFlags checks the command line: help, a missing endpoint, a URL
// that is not https.
func TestInitFlags(t *testing.T) {
	t.Setenv("COSTSYNC_COSMOS_ENDPOINT", "")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"init", "--help"}, 0, "DefaultAzureCredential"},
		{[]string{"init"}, 2, "-cosmos-endpoint is required"},
		{[]string{"init", "-cosmos-endpoint", "http://db.documents.azure.com/"}, 2, "not an https URL"},
		{[]string{"init", "-cosmos-endpoint", "https://db.documents.azure.com/", "-queue-url", "queues"}, 2, "-queue-url"},
		{[]string{"init", "-nope"}, 2, "flag provided but not defined"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
			t.Errorf("costsync %v: exit %d, output %q; want exit %d mentioning %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.want)
		}
	}
}
