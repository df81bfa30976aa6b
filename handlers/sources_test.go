package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// PutPage and ListPages make the test landing a SourceLanding.
func (l *fakeLanding) PutPage(ctx context.Context, w window.Window, gen int64, i int, format string, r io.Reader) (landing.Part, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return landing.Part{}, err
	}
	name := fmt.Sprintf("%s/page_%05d.%s", landing.Dir(w, gen), i, format)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.parts[name] = b
	return landing.Part{Blob: name, Bytes: int64(len(b)), Format: format}, nil
}

func (l *fakeLanding) ListPages(ctx context.Context, w window.Window, gen int64) ([]landing.Part, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []landing.Part
	prefix := landing.Dir(w, gen) + "/page_"
	for name, b := range l.parts {
		if strings.HasPrefix(name, prefix) {
			p := landing.Part{Blob: name, Bytes: int64(len(b)), Format: landing.FormatCSV}
			if strings.HasSuffix(name, ".json") {
				p.Format = landing.FormatJSON
			}
			out = append(out, p)
		}
	}
	sortParts(out)
	return out, nil
}

func (l *fakeLanding) OpenPartAt(ctx context.Context, p landing.Part) (io.ReaderAt, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.parts[p.Blob]
	if !ok {
		return nil, 0, landing.ErrPartMissing
	}
	return bytes.NewReader(b), int64(len(b)), nil
}

func sortParts(ps []landing.Part) {
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			if ps[j].Blob < ps[i].Blob {
				ps[i], ps[j] = ps[j], ps[i]
			}
		}
	}
}

// fakeSources serves numbered pages; a page's NextLink is
// https://arm.test/next?page=N. err fails call number errAt.
type fakeSources struct {
	mu          sync.Mutex
	query       [][]byte // raw pages
	usage       []*costapi.UsageDetailsPage
	aggregates  []*costapi.UsageAggregatesPage
	bodies      []string // query definitions received, as JSON
	aggRequests []costapi.UsageAggregatesRequest
	calls       int
	err         error // returned by call number errAt
	errAt       int
}

func pageIndex(next string) int {
	if next == "" {
		return 0
	}
	u, _ := url.Parse(next)
	n, _ := strconv.Atoi(u.Query().Get("page"))
	return n
}

func nextLink(i, n int) string {
	if i+1 >= n {
		return ""
	}
	return fmt.Sprintf("https://arm.test/next?page=%d", i+1)
}

func (f *fakeSources) fail() error {
	f.calls++
	if f.calls == f.errAt {
		return f.err
	}
	return nil
}

func (f *fakeSources) Query(ctx context.Context, scope costapi.Scope, def *costapi.QueryDefinition, next string, o *costapi.QueryOptions) (*costapi.QueryPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(def)
	f.bodies = append(f.bodies, string(b))
	i := pageIndex(next)
	raw := f.query[i]
	if link := nextLink(i, len(f.query)); link != "" {
		raw = bytes.Replace(raw, []byte(`"nextLink":null`), []byte(`"nextLink":"`+link+`"`), 1)
	}
	return costapi.DecodeQueryPage(raw)
}

func (f *fakeSources) UsageDetails(ctx context.Context, scope costapi.Scope, r costapi.UsageDetailsRequest, next string) (*costapi.UsageDetailsPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return nil, err
	}
	i := pageIndex(next)
	p := *f.usage[i]
	p.NextLink = nextLink(i, len(f.usage))
	return &p, nil
}

func (f *fakeSources) UsageAggregates(ctx context.Context, scope costapi.Scope, r costapi.UsageAggregatesRequest, next string) (*costapi.UsageAggregatesPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.aggRequests = append(f.aggRequests, r)
	i := pageIndex(next)
	p := *f.aggregates[i]
	p.NextLink = nextLink(i, len(f.aggregates))
	return &p, nil
}

// withSources gives the rig the other sources.
func (r *rig) withSources(f *fakeSources) *rig {
	r.srv.d.Sources = &Sources{API: f, Landing: r.land, Store: r.store}
	return r
}

// run delivers a cost-windows message and every message it enqueues, and
// returns the messages with their delays.
func (r *rig) run(t *testing.T, msg any) []sent {
	t.Helper()
	body, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var all []sent
	queue := [][]byte{body}
	for len(queue) > 0 {
		code, resp := r.post(t, "ProcessWindow", queueReq(queue[0], 1))
		if code != 200 {
			t.Fatalf("ProcessWindow: %d %v", code, resp.Logs)
		}
		queue = queue[1:]
		for _, s := range r.queue.take() {
			all = append(all, s)
			if s.delay == 0 {
				queue = append(queue, s.body)
			}
		}
	}
	return all
}

// ingestAll delivers every manifest landed so far to IngestManifest, and
// the cost-parts messages it sends to IngestPart.
func (r *rig) ingestAll(t *testing.T) {
	t.Helper()
	for name, man := range r.land.manifests {
		req := invocation.NewBlobRequest("manifest", invocation.BlobInfo{Content: man, URI: "https://a.blob.core.windows.net/cost-manifests/" + name, Tokens: map[string]string{"name": name}, ContentLength: int64(len(man))}, sys)
		if code, resp := r.post(t, "IngestManifest", req); code != 200 {
			t.Fatalf("IngestManifest %s: %d %v", name, code, resp.Logs)
		}
		r.deliverParts(t)
	}
}

// queryPage is a Query result page of rows (cost, resource group, day).
func queryPage(rows [][3]string) []byte {
	var b strings.Builder
	b.WriteString(`{"id":"x","properties":{"nextLink":null,"columns":[{"name":"Cost","type":"Number"},{"name":"ResourceGroup","type":"String"},{"name":"UsageDate","type":"Number"},{"name":"Currency","type":"String"}],"rows":[`)
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `[%s,%q,%s,"EUR"]`, r[0], r[1], r[2])
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// TestQueryTwelvePagesIngested: a Query result of 12 pages (25, with the
// invocation's page budget crossed) is landed page by page and ingested
// completely, each page requested with the same body.
func TestQueryTwelvePagesIngested(t *testing.T) {
	for _, pages := range []int{12, 25} {
		t.Run(fmt.Sprint(pages), func(t *testing.T) {
			f := &fakeSources{}
			want := map[string]decimal.Decimal{}
			for p := range pages {
				var rows [][3]string
				for i := range 5 {
					day := 1 + (p*5+i)%30
					cost := fmt.Sprintf("%d.%03d0000000000000000001", p+1, i)
					rows = append(rows, [3]string{cost, fmt.Sprintf("rg-%d-%d", p, i), fmt.Sprintf("202309%02d", day)})
					d := fmt.Sprintf("2023-09-%02d", day)
					want[d] = want[d].Add(decimal.RequireFromString(cost))
				}
				f.query = append(f.query, queryPage(rows))
			}
			r := newRig(t, nil).withSources(f)
			w := window.Window{Scope: testScope, Metric: "ActualCost", From: "2023-09-01", To: "2023-09-30"}
			msg, err := NewSourceMessage(SourceRequest{Source: landing.SourceQuery, Window: w})
			if err != nil {
				t.Fatal(err)
			}
			sentMsgs := r.run(t, msg)
			if wantMsgs := (pages - 1) / pagesPerInvocation; len(sentMsgs) != wantMsgs {
				t.Errorf("%d continuation messages, want %d", len(sentMsgs), wantMsgs)
			}
			if len(f.bodies) != pages {
				t.Fatalf("%d query calls, want %d", len(f.bodies), pages)
			}
			for i, b := range f.bodies {
				if b != f.bodies[0] {
					t.Fatalf("page %d was asked with another body:\n%s\nnot\n%s", i+1, b, f.bodies[0])
				}
			}
			r.ingestAll(t)
			lw, _ := LedgerWindow(SourceRequest{Source: landing.SourceQuery, Window: w})
			wd, err := r.store.GetWindow(context.Background(), testScope, store.WindowID(testScope, lw.Metric, lw.From, lw.To))
			if err != nil {
				t.Fatal(err)
			}
			if wd.State != store.StateComplete || wd.Rows != int64(pages*5) || wd.PartsTotal != pages {
				t.Fatalf("ledger: state %s rows %d parts %d errors %v", wd.State, wd.Rows, wd.PartsTotal, wd.Errors)
			}
			var man landing.Manifest
			for _, b := range r.land.manifests {
				_ = json.Unmarshal(b, &man)
			}
			var days []string
			for d := range want {
				days = append(days, d)
			}
			sums, err := r.store.SumAggregates(context.Background(), testScope, "ActualCost", man.Query.Key, days, "Cost")
			if err != nil {
				t.Fatal(err)
			}
			rows := int64(0)
			for _, s := range sums {
				rows += s.Rows
				if !s.Sum.Equal(want[s.Date]) {
					t.Errorf("%s: stored %s, want %s", s.Date, s.Sum, want[s.Date])
				}
			}
			if rows != int64(pages*5) {
				t.Errorf("stored %d aggregate rows, want %d", rows, pages*5)
			}
		})
	}
}

// legacyRecord is a usage detail of kind legacy for day with cost.
func legacyRecord(t *testing.T, day, cost, resource string) costapi.UsageDetail {
	t.Helper()
	var r costapi.UsageDetail
	js := fmt.Sprintf(`{"id":"/x/%[3]s","name":"%[3]s","kind":"legacy","tags":{"env":"prod"},"properties":{"date":"%[1]sT00:00:00.0000000Z","cost":%[2]s,"billingCurrency":"USD","quantity":1,"resourceId":"/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/sites/%[3]s","meterId":"m1","chargeType":"Usage","additionalInfo":"{\"a\":1}"}}`, day, cost, resource)
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUsageDetailsWhenCostDetailsAnswers422: a pay-as-you-go scope's window
// moves to usage details by itself, and its pages arrive whole.
func TestUsageDetailsWhenCostDetailsAnswers422(t *testing.T) {
	f := &fakeSources{usage: []*costapi.UsageDetailsPage{
		{Records: []costapi.UsageDetail{legacyRecord(t, "2023-09-21", "1.5E-05", "a"), legacyRecord(t, "2023-09-21", "2.25", "b")}},
		{}, // an empty page in the middle
		{Records: []costapi.UsageDetail{legacyRecord(t, "2023-09-21", "0.000000000000000000000003", "c")}},
	}}
	r := newRig(t, nil).withSources(f)
	r.cost.reqErr = &costapi.Error{Op: "request report", StatusCode: 422, Code: "422", Message: "Unsupported request. offer type: WebDirect for get detailed report request is not supported."}
	msg := json.RawMessage(`{"v":1,"window":{"scope":"` + testScope + `","metric":"ActualCost","from":"2023-09-21","to":"2023-09-21"},"step":"request","attempt":0}`)
	r.run(t, msg)
	if f.calls != 3 {
		t.Fatalf("%d usage details calls, want 3", f.calls)
	}
	r.ingestAll(t)
	wd, err := r.store.GetWindow(context.Background(), testScope, store.WindowID(testScope, "ActualCost", "2023-09-21", "2023-09-21"))
	if err != nil {
		t.Fatal(err)
	}
	want := decimal.RequireFromString("2.250015000000000000000003")
	if wd.State != store.StateComplete || wd.Rows != 3 || len(wd.Totals) != 1 || !wd.Totals[0].BilledCost.Equal(want) {
		t.Fatalf("ledger: state %s rows %d totals %+v errors %v", wd.State, wd.Rows, wd.Totals, wd.Errors)
	}
	if !strings.Contains(strings.Join(wd.Errors, " "), "usage details instead") {
		t.Errorf("the ledger does not say why the source changed: %v", wd.Errors)
	}
}

// usageRecord is a usage aggregate used at start with quantity.
func usageRecord(t *testing.T, start time.Time, hours int, qty, vm string) costapi.UsageAggregate {
	t.Helper()
	inst, _ := json.Marshal(map[string]any{"Microsoft.Resources": map[string]any{
		"resourceUri": "/subscriptions/" + strings.TrimPrefix(testScope, "subscriptions/") + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/" + vm,
		"location":    "eastus", "tags": map[string]string{"env": "prod"}}})
	js := fmt.Sprintf(`{"id":"x","name":"Daily_BRSDT","properties":{"usageStartTime":%q,"usageEndTime":%q,"meterId":"m1","meterName":"D2s v3","unit":"1 Hour","quantity":%s,"instanceData":%q}}`,
		start.Format(time.RFC3339), start.Add(time.Duration(hours)*time.Hour).Format(time.RFC3339), qty, inst)
	var r costapi.UsageAggregate
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUsageAggregatesByUsageTime: a window of usage days is asked by
// reported time (midnight to midnight, three days late at most, never in
// the future) and keeps only the usage of its days.
func TestUsageAggregatesByUsageTime(t *testing.T) {
	d20 := time.Date(2023, 9, 20, 0, 0, 0, 0, time.UTC)
	d21 := d20.AddDate(0, 0, 1)
	f := &fakeSources{aggregates: []*costapi.UsageAggregatesPage{
		{Records: []costapi.UsageAggregate{usageRecord(t, d20, 24, "24", "vm1"), usageRecord(t, d21, 24, "23.5", "vm1")}},
		{Records: []costapi.UsageAggregate{usageRecord(t, d21, 24, "0.0000000001", "vm2")}},
	}}
	r := newRig(t, nil).withSources(f)
	w := window.Window{Scope: testScope, Metric: "Usage", From: "2023-09-21", To: "2023-09-21"}
	msg, err := NewSourceMessage(SourceRequest{Source: landing.SourceUsageAggregates, Window: w})
	if err != nil {
		t.Fatal(err)
	}
	r.run(t, msg)
	req := f.aggRequests[0]
	// COSTSYNC_TODAY is 2023-09-22: reported up to today's midnight.
	if !req.ReportedStart.Equal(d21) || !req.ReportedEnd.Equal(d21.AddDate(0, 0, 1)) || req.Granularity != costapi.Daily || !req.ShowDetails {
		t.Errorf("request %+v", req)
	}
	r.ingestAll(t)
	lw, _ := LedgerWindow(SourceRequest{Source: landing.SourceUsageAggregates, Window: w})
	q, err := r.store.SumQuantities(context.Background(), testScope, lw.Metric, []string{"2023-09-20", "2023-09-21"})
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Date != "2023-09-21" || q[0].Rows != 2 || q[0].Quantity.String() != "23.5000000001" {
		t.Fatalf("stored quantities %+v, want 2 rows on 2023-09-21 totalling 23.5000000001", q)
	}

	if _, err := NewSourceMessage(SourceRequest{Source: landing.SourceUsageAggregates, Window: w, Granularity: "Weekly"}); err == nil {
		t.Error("granularity Weekly accepted")
	}
	bill := window.Window{Scope: "providers/Microsoft.Billing/billingAccounts/12345", Metric: "Usage", From: "2023-09-21", To: "2023-09-21"}
	if _, err := NewSourceMessage(SourceRequest{Source: landing.SourceUsageAggregates, Window: bill}); err == nil {
		t.Error("usage aggregates accepted for a billing account")
	}
}

// TestSourcePageThrottled: a throttled page waits in the queue as long as
// the service asks, at the same page of the same generation; the pages
// before it are not fetched again.
func TestSourcePageThrottled(t *testing.T) {
	f := &fakeSources{
		query: [][]byte{queryPage([][3]string{{"1", "a", "20230901"}}), queryPage([][3]string{{"2", "b", "20230902"}})},
		errAt: 2, err: &costapi.Error{Op: "query", StatusCode: 429, Retryable: true, Throttled: true, RetryAfter: 42 * time.Second},
	}
	r := newRig(t, nil).withSources(f)
	w := window.Window{Scope: testScope, Metric: "ActualCost", From: "2023-09-01", To: "2023-09-30"}
	msg, _ := NewSourceMessage(SourceRequest{Source: landing.SourceQuery, Window: w})
	body, _ := json.Marshal(msg)
	if code, resp := r.post(t, "ProcessWindow", queueReq(body, 1)); code != 200 {
		t.Fatalf("a throttled page must wait in the queue: %d %v", code, resp.Logs)
	}
	q := r.queue.take()
	if len(q) != 1 || q[0].delay != 42*time.Second {
		t.Fatalf("queue %+v, want one message delayed 42s", q)
	}
	var m sourceMessage
	if err := json.Unmarshal(q[0].body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Step != stepPage || m.Page != 1 || m.Next != "https://arm.test/next?page=1" || m.Generation <= 0 {
		t.Fatalf("waiting message %+v, want page 1 at its nextLink with the generation", m)
	}
	if len(r.land.manifests) != 0 {
		t.Fatal("a manifest was written before the last page")
	}
	if code, _ := r.post(t, "ProcessWindow", queueReq(q[0].body, 2)); code != 200 {
		t.Fatal(code)
	}
	if f.calls != 3 || len(r.land.manifests) != 1 {
		t.Fatalf("calls %d (want 3: page 0, page 1 throttled, page 1), manifests %d", f.calls, len(r.land.manifests))
	}
	var man landing.Manifest
	for _, b := range r.land.manifests {
		_ = json.Unmarshal(b, &man)
	}
	if man.Generation != m.Generation || len(man.Parts) != 2 {
		t.Fatalf("manifest generation %d parts %d, want %d and 2", man.Generation, len(man.Parts), m.Generation)
	}
	lw, _ := LedgerWindow(SourceRequest{Source: landing.SourceQuery, Window: w})
	wd, _ := r.store.GetWindow(context.Background(), testScope, store.WindowID(testScope, lw.Metric, lw.From, lw.To))
	if wd.Throttles != 1 {
		t.Errorf("throttles %d, want 1", wd.Throttles)
	}
}

type fakeTotals []costapi.DayTotal

func (f fakeTotals) QueryTotals(ctx context.Context, scope costapi.Scope, metric, from, to string) ([]costapi.DayTotal, error) {
	return f, nil
}

// TestVerifyAgainstQuery: stored documents next to the Query totals of the
// same days, with the differences.
func TestVerifyAgainstQuery(t *testing.T) {
	st := store.NewMemory()
	docs := []store.Cost{}
	for i, c := range []string{"1.25", "2.5"} {
		d := store.Cost{ID: fmt.Sprint(i), PK: store.CostPK(testScope, "ActualCost", "2023-09-21"), Scope: testScope, Metric: "ActualCost", Date: "2023-09-21", BillingCurrency: "EUR", BilledCostExact: c, ContentHash: c}
		docs = append(docs, d)
	}
	if _, err := st.UpsertCosts(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	q := fakeTotals{{Date: "2023-09-21", Currency: "EUR", Cost: decimal.RequireFromString("3.7500000001")}, {Date: "2023-09-22", Currency: "EUR", Cost: decimal.RequireFromString("1")}}
	got, err := Verify(context.Background(), q, st, window.Window{Scope: testScope, Metric: "ActualCost", From: "2023-09-21", To: "2023-09-22"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].StoredRows != 2 || got[0].Difference().String() != "-0.0000000001" || !got[1].Stored.IsZero() || got[1].Difference().String() != "-1" {
		t.Fatalf("verify = %+v", got)
	}
}

// TestUsageAggregatesHourlyRange: Hourly asks up to the last whole hour,
// and usage not reported yet is refused rather than landed as an empty day.
func TestUsageAggregatesHourlyRange(t *testing.T) {
	f := &fakeSources{aggregates: []*costapi.UsageAggregatesPage{{}}}
	r := newRig(t, nil).withSources(f)
	now := time.Date(2023, 9, 22, 13, 47, 12, 0, time.UTC)
	r.srv.d.Now = func() time.Time { return now }
	w := window.Window{Scope: testScope, Metric: "Usage", From: "2023-09-21", To: "2023-09-21"}
	msg, _ := NewSourceMessage(SourceRequest{Source: landing.SourceUsageAggregates, Window: w, Granularity: costapi.Hourly})
	r.run(t, msg)
	req := f.aggRequests[0]
	if want := time.Date(2023, 9, 22, 13, 0, 0, 0, time.UTC); !req.ReportedEnd.Equal(want) || req.Granularity != costapi.Hourly {
		t.Fatalf("hourly request %+v, want the end at %s", req, want)
	}
	if err := req.Validate(); err != nil {
		t.Fatalf("the request breaks the API's rules: %v", err)
	}
	lw, _ := LedgerWindow(SourceRequest{Source: landing.SourceUsageAggregates, Window: w, Granularity: costapi.Hourly})
	if lw.Metric != "UsageAggregates:Hourly" {
		t.Errorf("ledger metric %q", lw.Metric)
	}

	future := window.Window{Scope: testScope, Metric: "Usage", From: "2023-09-23", To: "2023-09-23"}
	msg, _ = NewSourceMessage(SourceRequest{Source: landing.SourceUsageAggregates, Window: future})
	body, _ := json.Marshal(msg)
	code, resp := r.post(t, "ProcessWindow", queueReq(body, 1))
	if code != 200 || !strings.Contains(strings.Join(resp.Logs, " "), "not reported yet") {
		t.Fatalf("a window in the future: %d %v", code, resp.Logs)
	}
}
