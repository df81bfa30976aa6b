package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/costsync/costsync/shared/landing"
)

// storageAccount is the ARM id costsim's exports deliver to: the local
// stack's Azurite account, registered with costsim before the first run.
const storageAccount = "/subscriptions/6a1f3c2e-9b7d-4e21-8c55-0f3e2d1a9b77/resourceGroups/costsync/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"

// exportRun defines an export of the month's ActualCost in the given
// format and runs it: costsim writes the run into Azurite's cost-exports
// container, its manifest last, and the IngestExport trigger takes it from
// there. The export's month window replaces the Cost Details documents.
func exportRun(name, format, compression string) func(ctx context.Context, r *run) result {
	return func(ctx context.Context, r *run) result {
		w := r.month
		w.Scope, w.Metric = eaScope, "ActualCost"
		if err := r.registerStorage(ctx); err != nil {
			return result{err: err}
		}
		export := "costsync-" + name
		def := fmt.Sprintf(`{"identity":{"type":"SystemAssigned"},"location":"westeurope","properties":{"format":%q,"compressionMode":%q,
			"dataOverwriteBehavior":"OverwritePreviousReport","partitionData":true,
			"definition":{"type":"ActualCost","timeframe":"TheLastMonth","dataSet":{"granularity":"Daily","configuration":{"dataVersion":"2023-05-01"}}},
			"deliveryInfo":{"destination":{"type":"AzureBlob","resourceId":%q,"container":%q,"rootFolderPath":"costsync-reconcile"}}}}`,
			format, compression, storageAccount, landing.ExportsContainer)
		base := "/" + eaScope + "/providers/Microsoft.CostManagement/exports/" + export
		if err := r.arm(ctx, http.MethodPut, base+"?api-version=2025-03-01", def); err != nil {
			return result{err: err}
		}
		start := func() error {
			return r.arm(ctx, http.MethodPost, base+"/run?api-version=2025-03-01", fmt.Sprintf(`{"timePeriod":{"from":"%sT00:00:00Z","to":"%sT00:00:00Z"}}`, w.From, w.To))
		}
		if _, err := r.ingestBy(ctx, start, w); err != nil {
			return result{err: err}
		}
		return r.compareLines(ctx, eaScope)
	}
}

// registerStorage tells costsim where the export destination account is.
func (r *run) registerStorage(ctx context.Context) error {
	body := fmt.Sprintf(`{"resourceId":%q,"blobServiceUri":%q}`, storageAccount, r.p.Stack.BlobURL)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.p.Stack.CostsimURL+"/_sim/storage", bytes.NewReader([]byte(body)))
	resp, err := r.p.Stack.Transport().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("register storage with costsim: %s %s", resp.Status, b)
	}
	return nil
}

// arm calls costsim's Resource Manager with the stack's managed identity.
func (r *run) arm(ctx context.Context, method, path, body string) error {
	tok, err := r.p.Cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, method, r.p.Stack.CostsimURL+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.p.Stack.Transport().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
	}
	return nil
}
