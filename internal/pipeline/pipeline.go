// Package pipeline drives the whole costsync pipeline on the local stack: it
// starts and provisions the components, fires the PlanWindows timer, waits
// for the windows of a run and compares Cosmos with costsim's ground truth.
// `make run` (cmd/localrun), `make chaos` (cmd/chaos) and the end-to-end
// tests use it.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// DefaultScopes are the simulated scopes of a local run: an EA subscription,
// an EA billing account and an MCA billing profile (three CSV layouts, two
// currencies).
var DefaultScopes = []string{
	"subscriptions/6a1f3c2e-9b7d-4e21-8c55-0f3e2d1a9b77",
	"providers/Microsoft.Billing/billingAccounts/8611537",
	"providers/Microsoft.Billing/billingAccounts/5e98e158-1111-2222-3333-444455556666:a1b2c3d4-5555-6666-7777-888899990000_2019-05-31/billingProfiles/AB12-CD34-EF5-GH6",
}

// Options configures one local run.
type Options struct {
	Scopes      []string
	Days        int           // trailing days to ingest
	CostsimArgs []string      // e.g. -rows-per-day, -faults
	Timeout     time.Duration // for the pipeline to finish
	Progress    io.Writer
	// StackDir is the local stack's state directory ("" = temporary).
	StackDir string
	// Env holds settings added to (and winning over) Env's, e.g.
	// COSTSYNC_INGEST_BUDGET.
	Env map[string]string
	// Stack, when set, is used instead of starting one (tests).
	Stack *localstack.Stack
}

// Day is one scope's ingested day in one currency, next to the source.
type Day struct {
	Scope, Date, Currency string
	Rows                  int64
	BilledCost            decimal.Decimal
	SourceRows            int64
	SourceCost            decimal.Decimal
}

// Matches tells whether the documents equal the source.
func (d Day) Matches() bool { return d.Rows == d.SourceRows && d.BilledCost.Equal(d.SourceCost) }

// Summary is what a run ingested.
type Summary struct {
	Windows, Complete, Failed int
	Days                      []Day
	Errors                    []string
	Elapsed                   time.Duration
}

// Env returns the settings of a local run for the handler.
func Env(o Options) map[string]string {
	env := map[string]string{
		"COSTSYNC_SCOPES":        strings.Join(o.Scopes, ";"),
		"COSTSYNC_METRICS":       "ActualCost",
		"COSTSYNC_TRAILING_DAYS": fmt.Sprint(o.Days),
		// The daily timer; a local run fires it on demand, several times a
		// run, and plans the trailing days only.
		"COSTSYNC_PLAN_SCHEDULE": "0 0 6 * * *",
		"COSTSYNC_REPULL_AFTER":  "0s",
		"COSTSYNC_CLOSE_DAYS":    "none",
	}
	for k, v := range ScaledRates(LocalTimeScale, 2500*time.Millisecond) {
		env[k] = v
	}
	for k, v := range o.Env {
		env[k] = v
	}
	return env
}

// LocalTimeScale is how much faster than real time the Cost Details quotas
// run on the local stack: a minute of quota lasts a second.
const LocalTimeScale = 60

// ScaledRates are the rate governor's settings with the documented Cost
// Details limits' periods divided by scale; costsim enforces the same
// limits with -enforce-quota -quota-scale scale. The slack must cover the
// queue polling interval (devhost's maxPollingInterval, 2 s by default),
// which does not scale.
func ScaledRates(scale int, slack time.Duration) map[string]string {
	per := func(d time.Duration) string { return (d / time.Duration(scale)).String() }
	return map[string]string{
		"COSTSYNC_RATE_SCOPE":           fmt.Sprintf("2/%s,10/%s,50/%s", per(time.Minute), per(time.Hour), per(24*time.Hour)),
		"COSTSYNC_RATE_TENANT":          "10/" + per(time.Minute),
		"COSTSYNC_RATE_BILLING_ACCOUNT": "5/" + per(time.Minute),
		"COSTSYNC_RATE_CLIENT":          "30/" + per(time.Minute),
		"COSTSYNC_RATE_SLACK":           slack.String(),
	}
}

// Pipeline is a running local stack with clients on it.
type Pipeline struct {
	Stack  *localstack.Stack
	Store  *store.Cosmos
	Cred   azcore.TokenCredential
	client policy.ClientOptions
	log    io.Writer
}

// StartPipeline starts the stack (unless given) and provisions it: Cosmos
// database and containers, blob containers, queues. Provisioning is an
// explicit step here, as `costsync init` is in Azure.
func StartPipeline(ctx context.Context, o Options) (*Pipeline, error) {
	st := o.Stack
	if st == nil {
		var err error
		st, err = localstack.Start(ctx, localstack.Options{
			Dir:         o.StackDir,
			Components:  localstack.Components{Storage: true, Cosmos: true, Costsim: true, Devhost: true},
			CostsimArgs: o.CostsimArgs,
			Env:         Env(o),
			Log:         o.Progress,
		})
		if err != nil {
			return nil, err
		}
	}
	p := &Pipeline{Stack: st, log: o.Progress}
	if err := p.provision(ctx); err != nil {
		if o.Stack == nil {
			st.Close()
		}
		return nil, err
	}
	return p, nil
}

func (p *Pipeline) provision(ctx context.Context) error {
	cred, err := p.Stack.Credential()
	if err != nil {
		return err
	}
	p.Cred = cred
	p.client = policy.ClientOptions{Transport: p.Stack.Transport()}
	db, err := store.NewCosmos(p.Stack.CosmosURL, cred, &store.CosmosOptions{EmulatorCompat: true, ClientOptions: &azcosmos.ClientOptions{ClientOptions: p.client}})
	if err != nil {
		return err
	}
	if err := db.Provision(ctx); err != nil {
		return fmt.Errorf("provision cosmos: %w", err)
	}
	p.Store = db
	blobs, err := azblob.NewClient(p.Stack.BlobURL, cred, &azblob.ClientOptions{ClientOptions: p.client})
	if err != nil {
		return err
	}
	if err := landing.New(blobs).Provision(ctx); err != nil {
		return err
	}
	q, err := queue.New(p.Stack.QueueURL, cred, &azqueue.ClientOptions{ClientOptions: p.client})
	if err != nil {
		return err
	}
	return q.Create(ctx, queue.All()...)
}

// FirePlan runs the PlanWindows timer now, through devhost's admin API, as
// `POST /admin/functions/PlanWindows` does on the real host.
func (p *Pipeline) FirePlan(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.Stack.DevhostURL+"/admin/functions/PlanWindows", strings.NewReader(`{"input":""}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fire PlanWindows: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("fire PlanWindows: devhost answered %s", resp.Status)
	}
	return nil
}

// Baseline records the generation of every window the ledger holds for
// scopes, so that [Pipeline.Wait] can tell the windows of the next run from
// those a previous run finished: a new run always takes a larger generation.
type Baseline map[string]int64

// Baseline snapshots the ledger's windows of scopes; take it before firing.
func (p *Pipeline) Baseline(ctx context.Context, scopes []string) (Baseline, error) {
	ws, err := p.windows(ctx, scopes)
	if err != nil {
		return nil, err
	}
	b := Baseline{}
	for _, w := range ws {
		b[w.ID] = w.Generation
	}
	return b, nil
}

func (p *Pipeline) windows(ctx context.Context, scopes []string) ([]store.Window, error) {
	var all []store.Window
	for _, s := range scopes {
		ws, err := p.Store.ListWindows(ctx, s)
		if err != nil {
			return nil, err
		}
		all = append(all, ws...)
	}
	return all, nil
}

// Wait waits until want windows that a run newer than base owns are complete
// or failed, printing progress. It returns those windows.
func (p *Pipeline) Wait(ctx context.Context, scopes []string, want int, base Baseline, timeout time.Duration) ([]store.Window, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	failures := 0
	for {
		all, err := p.windows(ctx, scopes)
		if err != nil {
			// A busy emulator can time out a read: give up only when it
			// keeps failing.
			if failures++; failures >= 10 || ctx.Err() != nil {
				return nil, err
			}
			time.Sleep(time.Second)
			continue
		}
		failures = 0
		var finished []store.Window
		done, failed := 0, 0
		for _, w := range all {
			if g, ok := base[w.ID]; ok && w.Generation <= g {
				continue
			}
			switch w.State {
			case store.StateComplete:
				done++
			case store.StateFailed:
				failed++
			default:
				continue
			}
			finished = append(finished, w)
		}
		line := fmt.Sprintf("windows: %d/%d complete, %d failed", done, want, failed)
		if line != last && p.log != nil {
			fmt.Fprintln(p.log, line)
			last = line
		}
		if done+failed >= want {
			return finished, nil
		}
		select {
		case <-ctx.Done():
			return finished, fmt.Errorf("pipeline did not finish in %s (%s)", timeout, line)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// truthDay is one day of costsim's ground truth (GET /_sim/truth).
type truthDay struct {
	Date, Currency, BilledCost string
	Rows                       int64
	UsageRows                  int64  `json:"usageRows"`
	UsageQuantity              string `json:"usageQuantity"`
}

// truth asks costsim for the ground truth of a scope's days.
func (p *Pipeline) truth(ctx context.Context, scope, metric, from, to string) ([]truthDay, error) {
	q := url.Values{"scope": {scope}, "metric": {metric}, "from": {from}, "to": {to}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Stack.CostsimURL+"/_sim/truth?"+q.Encode(), nil)
	resp, err := p.Stack.Transport().Do(req)
	if err != nil {
		return nil, fmt.Errorf("costsim truth: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("costsim truth: %s: %s", resp.Status, b)
	}
	var t struct {
		Days []truthDay `json:"days"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {
		return nil, fmt.Errorf("costsim truth: %w", err)
	}
	return t.Days, nil
}

// Truth asks costsim for the ground truth of a scope's days: rows and exact
// billed cost per day and currency. Days without rows are left out.
func (p *Pipeline) Truth(ctx context.Context, scope, metric, from, to string) ([]store.DayTotal, error) {
	days, err := p.truth(ctx, scope, metric, from, to)
	if err != nil {
		return nil, err
	}
	var out []store.DayTotal
	for _, d := range days {
		if d.Rows == 0 {
			continue
		}
		v, err := decimal.NewFromString(d.BilledCost)
		if err != nil {
			return nil, fmt.Errorf("costsim truth: %w", err)
		}
		out = append(out, store.DayTotal{Date: d.Date, Currency: d.Currency, Rows: d.Rows, BilledCost: v})
	}
	return out, nil
}

// Compare counts the documents in Cosmos per scope, day and currency and
// sets them next to costsim's ground truth.
func (p *Pipeline) Compare(ctx context.Context, scopes []string, metric string, days []string) ([]Day, error) {
	var out []Day
	for _, s := range scopes {
		stored, err := p.Store.CountWindow(ctx, s, metric, days)
		if err != nil {
			return nil, err
		}
		truth, err := p.Truth(ctx, s, metric, days[0], days[len(days)-1])
		if err != nil {
			return nil, err
		}
		byKey := map[string]*Day{}
		var keys []string
		get := func(date, cur string) *Day {
			k := date + " " + cur
			if d, ok := byKey[k]; ok {
				return d
			}
			d := &Day{Scope: s, Date: date, Currency: cur}
			byKey[k] = d
			keys = append(keys, k)
			return d
		}
		for _, t := range stored {
			if t.Rows == 0 {
				continue
			}
			d := get(t.Date, t.Currency)
			d.Rows, d.BilledCost = t.Rows, t.BilledCost
		}
		for _, t := range truth {
			d := get(t.Date, t.Currency)
			d.SourceRows, d.SourceCost = t.Rows, t.BilledCost
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, *byKey[k])
		}
	}
	return out, nil
}

// Run is the whole local job: start and provision the stack, fire the
// timer, wait for every window, and compare Cosmos with the source.
func Run(ctx context.Context, o Options) (*Summary, error) {
	start := time.Now()
	if len(o.Scopes) == 0 {
		o.Scopes = DefaultScopes
	}
	if o.Days == 0 {
		o.Days = 7
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	p, err := StartPipeline(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.Stack == nil {
		defer p.Stack.Close()
	}
	base, err := p.Baseline(ctx, o.Scopes)
	if err != nil {
		return nil, err
	}
	if err := p.FirePlan(ctx); err != nil {
		return nil, err
	}
	want := len(o.Scopes) * o.Days
	ws, err := p.Wait(ctx, o.Scopes, want, base, o.Timeout)
	sum := &Summary{Windows: want}
	for _, w := range ws {
		switch w.State {
		case store.StateComplete:
			sum.Complete++
		case store.StateFailed:
			sum.Failed++
			sum.Errors = append(sum.Errors, fmt.Sprintf("%s %s: %s", w.Scope, w.From, strings.Join(w.Errors, "; ")))
		}
	}
	if err != nil {
		return sum, err
	}
	sum.Days, err = p.Compare(ctx, o.Scopes, "ActualCost", window.LastDays(time.Now().UTC(), o.Days))
	sum.Elapsed = time.Since(start)
	if err != nil {
		return sum, err
	}
	if sum.Failed > 0 {
		return sum, errors.New("some windows failed")
	}
	return sum, nil
}
