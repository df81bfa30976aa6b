package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// TestPipelineEndToEnd runs the whole pipeline on the real local stack —
// Azurite over HTTPS with OAuth, the Cosmos emulator, costsim, devhost
// running the handler binary — and checks that the documents in Cosmos equal
// the lines costsim served: rows and exact totals per scope, day and
// currency. Then it plans again (the same documents, nothing doubled), and
// has costsim restate a day (the documents follow the new report exactly).
func TestPipelineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the local stack")
	}
	const days = 3
	o := Options{Scopes: DefaultScopes, Days: days}
	st := localstack.StartT(t, localstack.Options{
		Components:  localstack.Components{Storage: true, Cosmos: true, Costsim: true, Devhost: true},
		CostsimArgs: []string{"-seed", "7", "-rows-per-day", "60", "-blob-rows", "70", "-retry-after", "1", "-polls", "1"},
		Env:         Env(o),
	})
	ctx := context.Background()
	o.Stack = st
	p, err := StartPipeline(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	dates := window.LastDays(time.Now().UTC(), days)
	want := len(o.Scopes) * days

	round := func(name string) []Day {
		t.Helper()
		base, err := p.Baseline(ctx, o.Scopes)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.FirePlan(ctx); err != nil {
			t.Fatal(err)
		}
		ws, err := p.Wait(ctx, o.Scopes, want, base, 3*time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, w := range ws {
			if w.State != store.StateComplete {
				t.Errorf("%s: window %s %s is %s: %v", name, w.Scope, w.From, w.State, w.Errors)
			}
		}
		got, err := p.Compare(ctx, o.Scopes, "ActualCost", dates)
		if err != nil {
			t.Fatal(err)
		}
		currencies := map[string]bool{}
		for _, d := range got {
			currencies[d.Currency] = true
			if !d.Matches() {
				t.Errorf("%s: %s %s %s: cosmos %d rows %s, source %d rows %s", name, d.Scope, d.Date, d.Currency, d.Rows, d.BilledCost, d.SourceRows, d.SourceCost)
			}
			if d.SourceRows == 0 {
				t.Errorf("%s: %s %s has no source rows: the test would prove nothing", name, d.Scope, d.Date)
			}
		}
		if len(got) < want || !currencies["USD"] || !currencies["EUR"] {
			t.Errorf("%s: %d scope-days in %v, want %d in USD and EUR", name, len(got), currencies, want)
		}
		return got
	}

	first := round("first run")
	// The documents carry the FOCUS service name and category from the
	// FinOps toolkit's Services.csv, which the stack hands the handler.
	if n := countWhere(t, p, `c.serviceCategory = "Compute"`); n == 0 {
		t.Errorf("no document has the Compute service category: Services.csv was not loaded")
	}
	second := round("second run")
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Errorf("planning again changed the documents:\n%v\n%v", first, second)
	}

	// costsim restates one day: lines change, appear and disappear.
	day := dates[0]
	body := fmt.Sprintf(`{"scope":%q,"metric":"ActualCost","date":%q}`, o.Scopes[0], day)
	req, _ := http.NewRequest(http.MethodPost, st.CostsimURL+"/_sim/restate", strings.NewReader(body))
	resp, err := st.Transport().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("restate: %s", resp.Status)
	}
	third := round("after a restatement")
	if fmt.Sprint(third) == fmt.Sprint(second) {
		t.Errorf("the restated day did not change anything; the restatement test proves nothing")
	}
}

// countWhere counts the cost documents that match a Cosmos DB SQL condition,
// across partitions.
func countWhere(t *testing.T, p *Pipeline, cond string) int {
	t.Helper()
	client, err := azcosmos.NewClient(p.Stack.CosmosURL, p.Cred, &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: p.Stack.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewContainer(p.Store.Database(), store.CostsContainer)
	if err != nil {
		t.Fatal(err)
	}
	pager := c.NewQueryItemsPager("SELECT VALUE COUNT(1) FROM c WHERE "+cond, azcosmos.NewPartitionKey(), nil)
	n := 0
	for pager.More() {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			var v int
			if err := json.Unmarshal(it, &v); err != nil {
				t.Fatal(err)
			}
			n += v
		}
	}
	return n
}
