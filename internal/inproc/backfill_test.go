package inproc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/handlers"
	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/status"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// freshToken fetches a token from costsim's identity endpoint for every
// request: costsim checks a token's expiry against its simulated clock,
// which runs hours ahead of the real one that the SDK's token cache uses.
type freshToken struct {
	st *localstack.Stack
}

func (f freshToken) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	u := f.st.IdentityEndpoint + "?api-version=2019-08-01&resource=" + url.QueryEscape("https://management.azure.com/")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("X-IDENTITY-HEADER", f.st.IdentityHeader)
	resp, err := f.st.Transport().Do(req)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		return azcore.AccessToken{}, fmt.Errorf("token: %s %v", resp.Status, err)
	}
	// Expired at once by the real clock: the SDK asks again next time.
	return azcore.AccessToken{Token: tr.AccessToken, ExpiresOn: time.Now()}, nil
}

// simCall calls a costsim /_sim endpoint.
func simCall(ctx context.Context, st *localstack.Stack, method, path, body string, out any) error {
	req, _ := http.NewRequestWithContext(ctx, method, st.CostsimURL+path, strings.NewReader(body))
	resp, err := st.Transport().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// backfillScopes are 20 scopes: ten subscriptions of the tenant (10 calls a
// minute between them), four EA billing accounts, three departments of one
// enrollment and three billing profiles of one MCA account (5 a minute per
// account).
func backfillScopes() []string {
	var out []string
	for i := range 10 {
		out = append(out, fmt.Sprintf("subscriptions/5a0c9b1e-%04d-4e21-8c55-0f3e2d1a9b77", i))
	}
	for i := range 4 {
		out = append(out, fmt.Sprintf("providers/Microsoft.Billing/billingAccounts/%d", 7100+i))
	}
	for i := range 3 {
		out = append(out, fmt.Sprintf("providers/Microsoft.Billing/billingAccounts/7200/departments/%d", 10+i))
	}
	for i := range 3 {
		out = append(out, fmt.Sprintf("providers/Microsoft.Billing/billingAccounts/5e98e158-1111-2222-3333-444455556666:a1b2c3d4-5555-6666-7777-888899990000_2019-05-31/billingProfiles/P%d", i))
	}
	return out
}

// TestBackfill20ScopesWithinQuota backfills 13 months of 20 scopes through
// IngestHttp with the documented Cost Details limits, on a simulated clock
// shared with costsim, which enforces the same limits. Every window must
// complete with exact totals, and costsim must never have had to refuse a
// request: the governor kept every limit. It also shows the pace: the
// per-scope 10 requests an hour make 14 months of one scope take a little
// over an hour.
func TestBackfill20ScopesWithinQuota(t *testing.T) {
	start := time.Date(2026, 6, 15, 8, 0, 0, 0, time.UTC)
	st := localstack.StartT(t, localstack.Options{
		Components:  localstack.Components{Costsim: true},
		CostsimArgs: []string{"-clock", start.Format(time.RFC3339), "-enforce-quota", "-seed", "5", "-rows-per-day", "2", "-retry-after", "30", "-polls", "1"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	scopes := backfillScopes()
	env := map[string]string{
		config.KeyCosmosEndpoint: "https://cosmos.invalid", config.KeyScopes: strings.Join(scopes, ";"),
		config.KeyCloseDays: "none",
	}
	cfg, err := config.LoadTool(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	clock := NewSimClock(start)
	clock.OnSet = func(ctx context.Context, at time.Time) error {
		return simCall(ctx, st, http.MethodPost, "/_sim/clock", fmt.Sprintf(`{"now":%q}`, at.Format(time.RFC3339Nano)), nil)
	}
	invocations, failures := 0, 0
	host, err := New(&Options{Clock: clock, OnInvocation: func(i Invocation) {
		invocations++
		if !i.OK {
			failures++
			t.Logf("%s on %s failed: %v", i.Function, i.Trigger, i.Logs)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	cost, err := costapi.New(freshToken{st}, &costapi.Options{Endpoint: st.CostsimURL, AllowedHosts: []string{strings.TrimPrefix(st.CostsimURL, "https://")}, Now: host.Now,
		ClientOptions: policy.ClientOptions{Transport: st.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	mem := store.NewMemory()
	host.Serve(handlers.New(handlers.Deps{Config: cfg, Cost: cost, Landing: host.Landing(t.TempDir()), Store: mem, Queue: host, Now: host.Now, Wall: host.Now}))

	from := window.Oldest(start)
	to := window.Day(start).AddDate(0, 0, -1)
	res, body, err := host.HTTP(ctx, "IngestHttp", invocation.HTTP{URL: "http://localhost/api/ingest", Method: "POST",
		Body: fmt.Sprintf(`{"from":%q,"to":%q}`, from.Format(window.DateLayout), to.Format(window.DateLayout))})
	if err != nil || res.StatusCode != 202 {
		t.Fatalf("IngestHttp: %d %s %v", res.StatusCode, body, err)
	}
	var ans struct {
		RunID   string `json:"runId"`
		Windows int    `json:"windows"`
	}
	_ = json.Unmarshal(body, &ans)
	if ans.Windows != 20*14 {
		t.Fatalf("%d windows, want 20 scopes × 14 months", ans.Windows)
	}
	if err := host.Run(ctx, nil); err != nil {
		t.Fatalf("run: %v", err)
	}
	elapsed := clock.Now().Sub(start)
	t.Logf("%d invocations, %s of simulated time", invocations, elapsed)

	res, body, err = host.HTTP(ctx, "RunStatus", invocation.HTTP{URL: "http://localhost/api/runs/" + ans.RunID, Method: "GET", Params: map[string]string{"id": ans.RunID}})
	var p status.Progress
	if err == nil {
		err = json.Unmarshal(body, &p)
	}
	if err != nil || p.State != status.RunComplete || p.Complete != 280 {
		t.Fatalf("run %s: %+v %v (errors %v)", ans.RunID, p.State, err, p.Errors)
	}
	var stats struct {
		Requests      map[string]int `json:"requests"`
		Throttled     int            `json:"throttled"`
		QuotaRejected int            `json:"quotaRejected"`
	}
	if err := simCall(ctx, st, http.MethodGet, "/_sim/stats", "", &stats); err != nil {
		t.Fatal(err)
	}
	if stats.QuotaRejected != 0 || stats.Throttled != 0 || stats.Requests["create"] != 280 || failures != 0 {
		t.Errorf("costsim stats %+v, %d failed invocations: want 280 report requests, none refused", stats, failures)
	}
	if elapsed < time.Hour || elapsed > 90*time.Minute {
		t.Errorf("the backfill took %s of simulated time; at 10 requests per scope an hour it needs a little over an hour", elapsed)
	}

	// Every day of every scope holds exactly what costsim served.
	days := window.Window{From: from.Format(window.DateLayout), To: to.Format(window.DateLayout)}.Days()
	for _, sc := range scopes {
		var truth struct {
			Days []struct {
				Date, Currency, BilledCost string
				Rows                       int64
			} `json:"days"`
		}
		q := url.Values{"scope": {sc}, "metric": {"ActualCost"}, "from": {days[0]}, "to": {days[len(days)-1]}}
		if err := simCall(ctx, st, http.MethodGet, "/_sim/truth?"+q.Encode(), "", &truth); err != nil {
			t.Fatal(err)
		}
		stored, err := mem.CountWindow(ctx, sc, "ActualCost", days)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]store.DayTotal{}
		for _, d := range stored {
			got[d.Date+" "+d.Currency] = d
		}
		var rows int64
		for _, d := range truth.Days {
			if d.Rows == 0 {
				continue
			}
			rows += d.Rows
			g := got[d.Date+" "+d.Currency]
			if g.Rows != d.Rows || !g.BilledCost.Equal(decimal.RequireFromString(d.BilledCost)) {
				t.Errorf("%s %s %s: stored %d rows %s, source %d rows %s", sc, d.Date, d.Currency, g.Rows, g.BilledCost, d.Rows, d.BilledCost)
			}
		}
		if rows < int64(len(days)) {
			t.Errorf("%s: the source has %d rows over %d days: the test would prove little", sc, rows, len(days))
		}
	}
}
