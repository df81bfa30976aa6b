package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The metrics (README.md, "Telemetry", lists them with their alerts).
// Prometheus-style backends show them with underscores and a unit suffix,
// e.g. costsync_api_request_duration_seconds.
const (
	MetricAPIDuration     = "costsync.api.request.duration"
	MetricThrottled       = "costsync.api.throttled"
	MetricThrottleWait    = "costsync.api.throttle.wait"
	MetricGovernorWait    = "costsync.governor.wait"
	MetricTokenDuration   = "costsync.token.duration"
	MetricPaginationDepth = "costsync.pagination.depth"
	MetricRowsParsed      = "costsync.rows.parsed"
	MetricParseRate       = "costsync.rows.parse_rate"
	MetricDocuments       = "costsync.documents"
	MetricQuarantined     = "costsync.quarantined"
	MetricWindows         = "costsync.windows"
	MetricWindowAge       = "costsync.window.age"
	MetricPoisoned        = "costsync.poisoned"
	MetricRestatements    = "costsync.month.restatements"
	MetricInvocations     = "costsync.invocation.duration"
)

// Attribute keys of the metrics.
const (
	AttrAPI      = "api"
	AttrStatus   = "http.response.status_code"
	AttrError    = "error.type"
	AttrScope    = "scope"
	AttrMetric   = "metric"
	AttrSource   = "source"
	AttrOutcome  = "outcome"
	AttrFunction = "function"
	AttrQueue    = "queue"
	AttrLate     = "after_day_7"
)

// Outcomes of documents (MetricDocuments).
const (
	DocWritten   = "written"
	DocUnchanged = "unchanged"
	DocStale     = "stale"
	DocDeleted   = "deleted"
)

// Outcomes of windows (MetricWindows).
const (
	WindowComplete = "complete"
	WindowFailed   = "failed"
)

// APICosmos is the api attribute of Cosmos DB's requests to wait.
const APICosmos = "cosmos"

type instruments struct {
	apiDuration   metric.Float64Histogram
	throttled     metric.Int64Counter
	throttleWait  metric.Float64Counter
	governorWait  metric.Float64Counter
	tokenDuration metric.Float64Histogram
	pages         metric.Int64Histogram
	rows          metric.Int64Counter
	parseRate     metric.Float64Histogram
	documents     metric.Int64Counter
	quarantined   metric.Int64Counter
	windows       metric.Int64Counter
	poisoned      metric.Int64Counter
	restatements  metric.Int64Counter
	invocations   metric.Float64Histogram
}

// latency buckets, in seconds: from a fast point read to a long download.
var latency = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// newInstruments creates the instruments on m. The SDK never fails to
// create a well-named instrument; a failure would leave a no-op one.
func newInstruments(m metric.Meter, a *ages) instruments {
	var in instruments
	in.apiDuration, _ = m.Float64Histogram(MetricAPIDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of each HTTP request to Cost Management, Consumption, Commerce or a report download, by api and status (0: no answer)"),
		metric.WithExplicitBucketBoundaries(latency...))
	in.throttled, _ = m.Int64Counter(MetricThrottled, metric.WithUnit("{request}"),
		metric.WithDescription("Requests the service throttled (HTTP 429; api cosmos: Cosmos DB asked to wait longer than the SDK retries)"))
	in.throttleWait, _ = m.Float64Counter(MetricThrottleWait, metric.WithUnit("s"),
		metric.WithDescription("Total wait the throttled requests imposed (the largest retry-after header of each 429)"))
	in.governorWait, _ = m.Float64Counter(MetricGovernorWait, metric.WithUnit("s"),
		metric.WithDescription("Total delay the rate governor put on report requests to keep the Cost Details quotas"))
	in.tokenDuration, _ = m.Float64Histogram(MetricTokenDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of access token acquisitions (managed identity), by outcome"),
		metric.WithExplicitBucketBoundaries(latency...))
	in.pages, _ = m.Int64Histogram(MetricPaginationDepth, metric.WithUnit("{page}"),
		metric.WithDescription("Pages a paged source (query, usage details, usage aggregates) took for one window"),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
	in.rows, _ = m.Int64Counter(MetricRowsParsed, metric.WithUnit("{row}"),
		metric.WithDescription("Cost lines parsed by ingestion"))
	in.parseRate, _ = m.Float64Histogram(MetricParseRate, metric.WithUnit("{row}/s"),
		metric.WithDescription("Rows parsed per second by one ingestion invocation (parse and write)"),
		metric.WithExplicitBucketBoundaries(10, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000))
	in.documents, _ = m.Int64Counter(MetricDocuments, metric.WithUnit("{document}"),
		metric.WithDescription("Cost documents written, skipped as unchanged, skipped as stale (a newer report wrote them) and deleted by sweeps"))
	in.quarantined, _ = m.Int64Counter(MetricQuarantined, metric.WithUnit("{line}"),
		metric.WithDescription("Source lines that could not be ingested and were quarantined in the ledger"))
	in.windows, _ = m.Int64Counter(MetricWindows, metric.WithUnit("{window}"),
		metric.WithDescription("Windows that completed (reconciled) or failed (permanently, or poisoned)"))
	in.poisoned, _ = m.Int64Counter(MetricPoisoned, metric.WithUnit("{message}"),
		metric.WithDescription("Messages that failed every delivery and reached a poison queue"))
	in.restatements, _ = m.Int64Counter(MetricRestatements, metric.WithUnit("{pull}"),
		metric.WithDescription("Completed re-pulls of a closing month that changed its data; after_day_7 when completed after day 7 of the next month"))
	in.invocations, _ = m.Float64Histogram(MetricInvocations, metric.WithUnit("s"),
		metric.WithDescription("Function invocations by function and outcome (done, re-enqueued with delay, permanent failure, retry), and their duration"),
		metric.WithExplicitBucketBoundaries(latency...))
	age, _ := m.Float64ObservableGauge(MetricWindowAge, metric.WithUnit("s"),
		metric.WithDescription("Age of the newest successful window of a scope and metric that this instance knows (freshness; the minimum over instances is the truth)"))
	_, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		a.each(func(scope, metricName string, d time.Duration) {
			o.ObserveFloat64(age, d.Seconds(), metric.WithAttributes(attribute.String(AttrScope, scope), attribute.String(AttrMetric, metricName)))
		})
		return nil
	}, age)
	return in
}

func attrs(kv ...attribute.KeyValue) metric.MeasurementOption { return metric.WithAttributes(kv...) }

// GovernorWait records a delay the rate governor put on a report request.
func (t *Telemetry) GovernorWait(ctx context.Context, scope string, d time.Duration) {
	t.m.governorWait.Add(ctx, d.Seconds(), attrs(attribute.String(AttrScope, scope)))
}

// Throttled records a request the service throttled and the wait it asked
// for, outside an API call (Cosmos DB asking to wait, api APICosmos).
func (t *Telemetry) Throttled(ctx context.Context, api string, wait time.Duration) {
	t.m.throttled.Add(ctx, 1, attrs(attribute.String(AttrAPI, api)))
	t.m.throttleWait.Add(ctx, wait.Seconds(), attrs(attribute.String(AttrAPI, api)))
	if inv := From(ctx); inv != nil {
		inv.throttled.Add(1)
		inv.throttleWait.Add(int64(wait))
	}
}

// Pagination records how many pages a paged source took for a window.
func (t *Telemetry) Pagination(ctx context.Context, source string, pages int) {
	t.m.pages.Record(ctx, int64(pages), attrs(attribute.String(AttrSource, source)))
}

// RowsParsed records rows parsed by ingestion in elapsed; the invocation
// counts them for its summary.
func (t *Telemetry) RowsParsed(ctx context.Context, scope, source string, rows int, elapsed time.Duration) {
	t.m.rows.Add(ctx, int64(rows), attrs(attribute.String(AttrScope, scope), attribute.String(AttrSource, source)))
	if rows > 0 && elapsed > 0 {
		t.m.parseRate.Record(ctx, float64(rows)/elapsed.Seconds(), attrs(attribute.String(AttrSource, source)))
	}
	if inv := From(ctx); inv != nil {
		inv.rows.Add(int64(rows))
	}
}

// Documents records n cost documents of a scope with an outcome (Doc*),
// zero included, so that a backend sees the series.
func (t *Telemetry) Documents(ctx context.Context, scope, outcome string, n int) {
	t.m.documents.Add(ctx, int64(n), attrs(attribute.String(AttrScope, scope), attribute.String(AttrOutcome, outcome)))
}

// Quarantined records n quarantined lines of a scope, zero included.
func (t *Telemetry) Quarantined(ctx context.Context, scope string, n int) {
	t.m.quarantined.Add(ctx, int64(n), attrs(attribute.String(AttrScope, scope)))
}

// Window records a window that completed or failed (Window*). A completed
// window's success is age old: it becomes the scope's freshness.
func (t *Telemetry) Window(ctx context.Context, scope, metricName, outcome string, age time.Duration) {
	t.m.windows.Add(ctx, 1, attrs(attribute.String(AttrScope, scope), attribute.String(AttrMetric, metricName), attribute.String(AttrOutcome, outcome)))
	if outcome == WindowComplete {
		t.ages.set(scope, metricName, age)
	}
}

// LastSuccess tells the window age gauge the latest success of a scope
// and metric, age old, as read from the ledger.
func (t *Telemetry) LastSuccess(scope, metricName string, age time.Duration) {
	t.ages.set(scope, metricName, age)
}

// Poisoned records a message that reached a poison queue.
func (t *Telemetry) Poisoned(ctx context.Context, queue string) {
	t.m.poisoned.Add(ctx, 1, attrs(attribute.String(AttrQueue, queue)))
}

// Restated records a completed re-pull of a closing month that changed
// its data; late when it completed after day 7 of the next month.
func (t *Telemetry) Restated(ctx context.Context, scope, metricName string, late bool) {
	t.m.restatements.Add(ctx, 1, attrs(attribute.String(AttrScope, scope), attribute.String(AttrMetric, metricName), attribute.Bool(AttrLate, late)))
}
