package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/telemetry"
	"github.com/costsync/costsync/shared/window"
)

// The sources other than Cost Details (ARCHITECTURE.md, "Sources"): the
// Query API, Consumption usage details and Commerce usage aggregates. A
// cost-windows message with a "source" is theirs. Each invocation fetches
// pages within a budget, lands each page as a part (page_NNNNN) and either
// re-enqueues itself at the next link or, after the last page, writes the
// manifest; IngestManifest then reads the parts like any report's. Native
// exports arrive by blob trigger instead (ingestexport.go).

// SourceAPI is what the sources need of Cost Management, Consumption and
// Commerce; *costapi.Client implements it.
type SourceAPI interface {
	Query(ctx context.Context, scope costapi.Scope, def *costapi.QueryDefinition, next string, o *costapi.QueryOptions) (*costapi.QueryPage, error)
	UsageDetails(ctx context.Context, scope costapi.Scope, r costapi.UsageDetailsRequest, next string) (*costapi.UsageDetailsPage, error)
	UsageAggregates(ctx context.Context, scope costapi.Scope, r costapi.UsageAggregatesRequest, next string) (*costapi.UsageAggregatesPage, error)
}

// SourceLanding is what the sources need of our report storage;
// *landing.Store implements it.
type SourceLanding interface {
	PutPage(ctx context.Context, w window.Window, generation int64, index int, format string, r io.Reader) (landing.Part, error)
	ListPages(ctx context.Context, w window.Window, generation int64) ([]landing.Part, error)
	// OpenPartAt opens a part for random access (Parquet).
	OpenPartAt(ctx context.Context, p landing.Part) (io.ReaderAt, int64, error)
}

// SourceStore is what the sources need of Cosmos DB beyond Store;
// *store.Cosmos and *store.Memory implement it.
type SourceStore interface {
	UpsertAggregates(ctx context.Context, docs []store.Aggregate) (store.WriteStats, error)
	SweepAggregates(ctx context.Context, scope, queryType, query string, dates []string, keep int64) (int, error)
	SumAggregates(ctx context.Context, scope, queryType, query string, dates []string, value string) ([]store.AggregateTotal, error)
}

// Sources are the clients of the other sources, built once in main.
type Sources struct {
	API     SourceAPI
	Landing SourceLanding
	Store   SourceStore
}

// Steps of a source message.
const (
	stepStart = "start" // take a new generation, then fetch the first page
	stepPage  = "page"  // fetch the page at Next (the first when Next is empty)
)

// Budget of one invocation of a paged source: it re-enqueues itself at the
// next link after this many pages or this long, so that it never nears the
// function timeout.
const (
	pagesPerInvocation = 20
	pagesBudget        = 2 * time.Minute
)

// reportLag is how late Commerce reports usage: a window of usage days is
// queried by reported time up to this long after its last day.
const reportLag = 3 * 24 * time.Hour

// sourceMessage is a cost-windows message of another source. It decodes
// strictly.
type sourceMessage struct {
	Version int    `json:"v"`
	Source  string `json:"source"`
	// Window's Metric is ActualCost or AmortizedCost for usage details; the
	// query type (ActualCost, AmortizedCost, Usage) for the Query API; Usage
	// for usage aggregates.
	Window window.Window `json:"window"`
	Step   string        `json:"step"`
	// Granularity of usage aggregates: Daily (default) or Hourly.
	Granularity string `json:"granularity,omitempty"`
	// Dataset of a query; nil is costapi.DailyCostQuery's.
	Dataset    *costapi.QueryDataset `json:"dataset,omitempty"`
	Generation int64                 `json:"generation,omitempty"`
	Next       string                `json:"next,omitempty"`
	Page       int                   `json:"page,omitempty"`
	Retries    int                   `json:"retries,omitempty"`
	RunID      string                `json:"runId,omitempty"`
	// Trace is the W3C traceparent of the invocation that sent the message
	// (the window's trace); optional, so that older messages decode.
	Trace string `json:"trace,omitempty"`
}

// SourceRequest asks for a window from another source.
type SourceRequest struct {
	// Source is landing.SourceQuery, SourceUsageDetails or SourceUsageAggregates.
	Source string
	// Window as in sourceMessage.
	Window window.Window
	// Granularity of usage aggregates (Daily, Hourly).
	Granularity string
	// Dataset of a query; nil is the daily cost by resource group.
	Dataset *costapi.QueryDataset
	RunID   string
}

// NewSourceMessage returns the cost-windows message that ingests r, or why
// it is not valid.
func NewSourceMessage(r SourceRequest) (any, error) {
	m := sourceMessage{Version: messageVersion, Source: r.Source, Window: r.Window, Step: stepStart,
		Granularity: r.Granularity, Dataset: r.Dataset, RunID: r.RunID}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// LedgerWindow is the window under which a source request is recorded in
// the ledger and landed: usage details share Cost Details' windows (they
// replace them for pay-as-you-go scopes); usage aggregates and queries have
// their own ("UsageAggregates:Daily", "Query:ActualCost:{key}").
func LedgerWindow(r SourceRequest) (window.Window, error) {
	m := sourceMessage{Version: messageVersion, Source: r.Source, Window: r.Window, Step: stepStart, Granularity: r.Granularity, Dataset: r.Dataset}
	if err := m.validate(); err != nil {
		return window.Window{}, err
	}
	return m.ledgerWindow(), nil
}

// peekSource returns the "source" of a cost-windows message, "" for Cost
// Details (or a message that does not parse: the strict decoder says why).
func peekSource(msg string) string {
	text := strings.TrimSpace(msg)
	if strings.HasPrefix(text, `"`) {
		if s, err := invocation.String(json.RawMessage(text)); err == nil {
			text = s
		}
	}
	var p struct {
		Source string `json:"source"`
	}
	if json.Unmarshal([]byte(text), &p) != nil || p.Source == landing.SourceCostDetails {
		return ""
	}
	return p.Source
}

func (m *sourceMessage) validate() error {
	if m.Version != messageVersion {
		return fmt.Errorf("source message version %d, want %d", m.Version, messageVersion)
	}
	sc, err := costapi.ParseScope(m.Window.Scope)
	if err != nil {
		return err
	}
	if err := m.Window.Validate(); err != nil {
		return err
	}
	switch m.Source {
	case landing.SourceUsageDetails:
		if m.Window.Metric != "ActualCost" && m.Window.Metric != "AmortizedCost" {
			return fmt.Errorf("usage details window metric %q is not ActualCost or AmortizedCost", m.Window.Metric)
		}
	case landing.SourceUsageAggregates:
		if m.Window.Metric != "Usage" {
			return fmt.Errorf("usage aggregates window metric %q: want Usage", m.Window.Metric)
		}
		if sc.Kind != costapi.Subscription {
			return fmt.Errorf("usage aggregates exist for subscriptions only, not %s", sc.Kind)
		}
		switch m.Granularity {
		case "":
			m.Granularity = costapi.Daily
		case costapi.Daily, costapi.Hourly:
		default:
			return fmt.Errorf("usage aggregates granularity %q: want Daily or Hourly", m.Granularity)
		}
	case landing.SourceQuery:
		if err := m.queryDefinition().Validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("source %q is not %s, %s or %s", m.Source, landing.SourceQuery, landing.SourceUsageDetails, landing.SourceUsageAggregates)
	}
	switch m.Step {
	case stepStart:
	case stepPage:
		if m.Generation <= 0 {
			return errors.New("source message: a page step needs its generation")
		}
	default:
		return fmt.Errorf("source message step %q is not %s or %s", m.Step, stepStart, stepPage)
	}
	return nil
}

// queryDefinition is the query of a query message: its type, its days and
// its dataset.
func (m *sourceMessage) queryDefinition() *costapi.QueryDefinition {
	def := costapi.DailyCostQuery(m.Window.Metric, m.Window.From, m.Window.To)
	if m.Dataset != nil {
		def.Dataset = *m.Dataset
	}
	return def
}

// queryInfo identifies a query message's definition: the key hashes the
// type and the dataset (encoding/json writes map keys sorted, so the same
// dataset always gives the same key); the reconciled value is the first
// aggregation by alias.
func (m *sourceMessage) queryInfo() *landing.QueryInfo {
	def := m.queryDefinition()
	b, _ := json.Marshal(struct {
		Type    string               `json:"type"`
		Dataset costapi.QueryDataset `json:"dataset"`
	}{def.Type, def.Dataset})
	sum := sha256.Sum256(b)
	info := &landing.QueryInfo{Key: hex.EncodeToString(sum[:8]), Type: def.Type, Granularity: def.Dataset.Granularity, Value: "PreTaxCost"}
	first := ""
	for alias, a := range def.Dataset.Aggregation {
		if first == "" || alias < first {
			first, info.Value = alias, a.Name
		}
	}
	return info
}

func (m *sourceMessage) ledgerWindow() window.Window {
	w := m.Window
	switch m.Source {
	case landing.SourceUsageAggregates:
		w.Metric = "UsageAggregates:" + m.Granularity
	case landing.SourceQuery:
		info := m.queryInfo()
		w.Metric = "Query:" + info.Type + ":" + info.Key
	}
	return w
}

// processSource runs one invocation of a source message.
func (s *Server) processSource(ctx context.Context, c *call, q *invocation.Queue) (*outcome, error) {
	var m sourceMessage
	if err := invocation.DecodeJSON([]byte(q.Message), &m); err != nil {
		return nil, permanent(fmt.Errorf("source message: %w", err))
	}
	if err := m.validate(); err != nil {
		return nil, permanent(err)
	}
	if s.d.Sources == nil {
		return nil, permanent(fmt.Errorf("source %s: this app has no clients for it", m.Source))
	}
	scope, _ := costapi.ParseScope(m.Window.Scope)
	lw := m.ledgerWindow()
	c.tag("scope", scope.Path, "window", lw.From+".."+lw.To, "metric", lw.Metric, "source", m.Source)
	if m.RunID != "" {
		c.tag("run_id", m.RunID)
	}
	c.note("source", m.Source, "step", m.Step, "page", m.Page, "dequeue_count", q.DequeueCount)
	wd, err := s.loadWindow(ctx, lw)
	if err != nil {
		return nil, err
	}
	switch m.Step {
	case stepStart:
		gen := max(s.d.Now().UnixMilli(), wd.Generation+1)
		m.Step, m.Generation, m.Next, m.Page, m.Retries = stepPage, gen, "", 0, 0
		if err := s.updateWindow(ctx, wd, func(w *store.Window) {
			w.State, w.Generation, w.Attempts, w.OperationURL = store.StateRequested, gen, w.Attempts+1, ""
		}); err != nil {
			return nil, err
		}
	case stepPage:
		if wd.Generation > m.Generation {
			c.note("superseded_by", wd.Generation)
			return &outcome{}, nil
		}
	}
	start := time.Now()
	for fetched := 0; ; fetched++ {
		if fetched == pagesPerInvocation || time.Since(start) > pagesBudget {
			if err := s.send(ctx, queue.Windows, m, 0); err != nil {
				return nil, retryable(err)
			}
			c.requeue(0, "continues at the next page")
			c.note("next_page", m.Page)
			return &outcome{}, s.updateWindow(ctx, wd, func(w *store.Window) {
				if w.Generation == m.Generation {
					w.State = store.StatePolling
				}
			})
		}
		done, err := s.fetchPage(ctx, c, scope, lw, &m)
		if err != nil {
			return s.sourceError(ctx, c, wd, m, err)
		}
		m.Retries = 0
		if done {
			break
		}
	}
	parts, err := s.d.Sources.Landing.ListPages(ctx, lw, m.Generation)
	if err != nil {
		return nil, retryable(err)
	}
	man := &landing.Manifest{Version: landing.ManifestVersion, Source: m.Source, Window: lw, Generation: m.Generation, Parts: parts, LandedAt: s.d.Now().UTC(),
		RunID: m.RunID, Trace: telemetry.Traceparent(ctx)}
	if m.Source == landing.SourceQuery {
		man.Query = m.queryInfo()
	}
	name, err := s.d.Landing.PutManifest(ctx, man)
	if err != nil {
		return nil, retryable(err)
	}
	s.tel().Pagination(ctx, m.Source, m.Page)
	c.note("pagination_depth", m.Page, "parts", len(parts), "manifest", name)
	return &outcome{}, s.updateWindow(ctx, wd, func(w *store.Window) {
		if w.Generation == m.Generation && w.State != store.StateComplete {
			w.State, w.PartsTotal, w.PartsDone = store.StateLanded, len(parts), 0
		}
	})
}

// fetchPage fetches the page at m.Next (the first when empty), lands it as
// part m.Page and moves m to the next page; done reports the last page.
func (s *Server) fetchPage(ctx context.Context, c *call, scope costapi.Scope, lw window.Window, m *sourceMessage) (done bool, err error) {
	api := s.d.Sources.API
	var (
		buf    bytes.Buffer
		format = landing.FormatCSV
		next   string
		n      int
	)
	switch m.Source {
	case landing.SourceQuery:
		p, err := api.Query(ctx, scope, m.queryDefinition(), m.Next, nil)
		if err != nil {
			return false, err
		}
		buf.Write(p.Raw)
		// A query page is landed even when empty: it says which columns
		// the query had.
		format, next, n = landing.FormatJSON, p.NextLink, max(len(p.Rows), 1)
		c.note("qpu_consumed", p.QPUConsumed)
	case landing.SourceUsageDetails:
		p, err := api.UsageDetails(ctx, scope, costapi.UsageDetailsRequest{Metric: m.Window.Metric, From: m.Window.From, To: m.Window.To}, m.Next)
		if err != nil {
			return false, err
		}
		if err := p.WriteCSV(&buf); err != nil {
			return false, permanent(fmt.Errorf("usage details page %d as CSV: %w", m.Page, err))
		}
		next, n = p.NextLink, len(p.Records)
	case landing.SourceUsageAggregates:
		req, err := s.reportedRange(m)
		if err != nil {
			return false, err
		}
		p, err := api.UsageAggregates(ctx, scope, req, m.Next)
		if err != nil {
			return false, err
		}
		kept, other := usageInWindow(p.Records, m.Window)
		if other > 0 {
			c.note("other_days_records", other)
		}
		p.Records = kept
		if err := p.WriteCSV(&buf); err != nil {
			return false, permanent(fmt.Errorf("usage aggregates page %d as CSV: %w", m.Page, err))
		}
		next, n = p.NextLink, len(kept)
	}
	if next != "" && next == m.Next {
		return false, permanent(fmt.Errorf("%s page %d: the nextLink repeats the current one", m.Source, m.Page))
	}
	c.inv.AddPages(1)
	if n > 0 {
		c.inv.AddBytes(int64(buf.Len()))
		if _, err := s.d.Sources.Landing.PutPage(ctx, lw, m.Generation, m.Page, format, &buf); err != nil {
			return false, retryable(err)
		}
	}
	m.Page++
	m.Next = next
	return next == "", nil
}

// reportedRange is the reported-time range that holds a window's usage: from
// its first day to reportLag after its last, but not beyond now (midnight
// for Daily, the whole hour for Hourly).
func (s *Server) reportedRange(m *sourceMessage) (costapi.UsageAggregatesRequest, error) {
	from, _ := window.ParseDate(m.Window.From)
	to, _ := window.ParseDate(m.Window.To)
	now := s.d.Now().UTC()
	limit := now.Truncate(24 * time.Hour)
	if m.Granularity == costapi.Hourly {
		limit = now.Truncate(time.Hour)
	}
	end := to.AddDate(0, 0, 1).Add(reportLag)
	if end.After(limit) {
		end = limit
	}
	if !end.After(from) {
		return costapi.UsageAggregatesRequest{}, permanent(fmt.Errorf("usage of %s..%s is not reported yet", m.Window.From, m.Window.To))
	}
	return costapi.UsageAggregatesRequest{ReportedStart: from, ReportedEnd: end, Granularity: m.Granularity, ShowDetails: true}, nil
}

// usageInWindow keeps the records whose usage started on the window's
// days. The others were reported in the range but used on other days: their
// own windows fetch them, so they are not landed twice.
func usageInWindow(recs []costapi.UsageAggregate, w window.Window) (kept []costapi.UsageAggregate, other int) {
	for _, r := range recs {
		t, err := time.Parse(time.RFC3339, r.Properties.Text("usageStartTime"))
		if err != nil {
			kept = append(kept, r) // the parser quarantines it with a reason
			continue
		}
		if d := t.UTC().Format(window.DateLayout); d >= w.From && d <= w.To {
			kept = append(kept, r)
			continue
		}
		other++
	}
	return kept, other
}

// sourceError handles a failed page: throttling and transient errors wait
// in the queue at the same page; permanent ones are recorded.
func (s *Server) sourceError(ctx context.Context, c *call, wd *store.Window, m sourceMessage, err error) (*outcome, error) {
	e, ok := costapi.AsError(err)
	switch {
	case ok && !e.Retryable, !ok && !isRetryable(err):
		return s.fail(ctx, wd, err)
	}
	return s.waitInQueue(ctx, c, wd, &m, &m.Retries, err, nil)
}

// useUsageDetails answers a Cost Details 422 (an offer it does not serve,
// such as pay-as-you-go): the window is ingested from usage details.
func (s *Server) useUsageDetails(ctx context.Context, c *call, wd *store.Window, m windowMessage, cause error) (*outcome, error) {
	if s.d.Sources == nil {
		return s.fail(ctx, wd, cause)
	}
	next := sourceMessage{Version: messageVersion, Source: landing.SourceUsageDetails, Window: m.Window, Step: stepStart, RunID: m.RunID}
	if err := s.send(ctx, queue.Windows, next, 0); err != nil {
		return nil, retryable(err)
	}
	c.requeue(0, "cost details refuses the offer: usage details instead")
	return &outcome{}, s.updateWindow(ctx, wd, func(w *store.Window) {
		w.AddError(cause.Error() + "; ingesting from usage details instead")
	})
}
