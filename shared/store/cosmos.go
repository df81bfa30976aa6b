package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// CosmosOptions configures [NewCosmos]; nil means the defaults.
type CosmosOptions struct {
	// Database is the database name; the default is "costsync".
	Database string
	// ClientOptions are passed to azcosmos. When Retry.MaxRetries and
	// Retry.MaxRetryDelay are zero, NewCosmos sets them to 9 and 30 s: the
	// SDK then retries a throttled (429) request up to 9 times, waiting as
	// long as the service's x-ms-retry-after-ms says, and returns the 429
	// at once when the service asks for a longer wait, so the caller can
	// re-enqueue instead of holding the invocation ([RetryAfter] reads the
	// wait). The SDK does not retry a 503 of an account with one write
	// region, so the store does, a few times, after the service's
	// x-ms-retry-after-ms (or a short backoff when it gives none). The
	// caller's context deadline bounds the whole call.
	ClientOptions *azcosmos.ClientOptions
	// EmulatorCompat installs the work-arounds for @vercel/cosmosdb-server
	// (local stack and tests only).
	EmulatorCompat bool
	// Concurrency bounds the requests one call makes at once; the default
	// is 16.
	Concurrency int
}

// Default retry settings for the Cosmos DB client.
const (
	defaultMaxRetries    = 9
	defaultMaxRetryDelay = 30 * time.Second
	defaultConcurrency   = 16
	// scanPageSize is the page size asked for when a partition is read:
	// summaries are about 150 bytes, far below the 4 MB page limit.
	scanPageSize = 10000
	// pageSize is the page size asked for on ledger queries.
	pageSize = 1000
)

// Cosmos is the store backed by Azure Cosmos DB (NoSQL API). It is safe for
// concurrent use; build it once.
type Cosmos struct {
	client      *azcosmos.Client
	database    string
	costs       *azcosmos.ContainerClient
	ledger      *azcosmos.ContainerClient
	concurrency int
}

// NewCosmos returns a store for the account at endpoint, authenticated with
// cred (managed identity in production). It makes no network calls.
func NewCosmos(endpoint string, cred azcore.TokenCredential, o *CosmosOptions) (*Cosmos, error) {
	var opts CosmosOptions
	if o != nil {
		opts = *o
	}
	if opts.Database == "" {
		opts.Database = DefaultDatabase
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = defaultConcurrency
	}
	var co azcosmos.ClientOptions
	if opts.ClientOptions != nil {
		co = *opts.ClientOptions
	}
	if co.Retry.MaxRetries == 0 && co.Retry.MaxRetryDelay == 0 {
		co.Retry.MaxRetries = defaultMaxRetries
		co.Retry.MaxRetryDelay = defaultMaxRetryDelay
	}
	if opts.EmulatorCompat {
		co.PerRetryPolicies = append(append([]policy.Policy(nil), co.PerRetryPolicies...), emulatorCompat{})
	}
	client, err := azcosmos.NewClient(endpoint, cred, &co)
	if err != nil {
		return nil, fmt.Errorf("new cosmos client for %s: %w", endpoint, err)
	}
	costs, err := client.NewContainer(opts.Database, CostsContainer)
	if err != nil {
		return nil, fmt.Errorf("new cosmos container client: %w", err)
	}
	ledger, err := client.NewContainer(opts.Database, LedgerContainer)
	if err != nil {
		return nil, fmt.Errorf("new cosmos container client: %w", err)
	}
	return &Cosmos{
		client:      client,
		database:    opts.Database,
		costs:       costs,
		ledger:      ledger,
		concurrency: opts.Concurrency,
	}, nil
}

// Provision creates the database and both containers with their partition
// keys and indexing policies. Existing ones are left as they are. It needs
// control-plane rights (a key, or Cosmos DB Operator): data-plane RBAC
// cannot create databases or containers, so functions never call it.
func (s *Cosmos) Provision(ctx context.Context) error {
	_, err := s.client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: s.database}, nil)
	if err != nil && !errors.Is(mapError(err), ErrConflict) {
		return fmt.Errorf("create database %s: %w", s.database, err)
	}
	db, err := s.client.NewDatabase(s.database)
	if err != nil {
		return fmt.Errorf("create database %s: %w", s.database, err)
	}
	for _, c := range []azcosmos.ContainerProperties{
		{
			ID:                     CostsContainer,
			PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}},
			IndexingPolicy:         CostsIndexingPolicy(),
		},
		{
			ID:                     LedgerContainer,
			PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}},
			IndexingPolicy:         LedgerIndexingPolicy(),
		},
	} {
		_, err := db.CreateContainer(ctx, c, nil)
		if err != nil && !errors.Is(mapError(err), ErrConflict) {
			return fmt.Errorf("create container %s/%s: %w", s.database, c.ID, err)
		}
	}
	return nil
}

// NewCostWriter returns a writer of cost documents; see [CostWriter].
func (s *Cosmos) NewCostWriter() *CostWriter { return newCostWriter(s) }

// UpsertCosts stores docs with a new [CostWriter]: it reads each partition
// the documents fall in once, then writes what is new or changed.
func (s *Cosmos) UpsertCosts(ctx context.Context, docs []Cost) (WriteStats, error) {
	return s.NewCostWriter().Write(ctx, docs)
}

// ListDay returns the summaries of the documents of one day of scope and
// metric, in no particular order.
func (s *Cosmos) ListDay(ctx context.Context, scope, metric, date string) ([]CostSummary, error) {
	return listDay(ctx, s, scope, metric, date)
}

// SweepDay deletes the cost documents of one day of scope and metric that a
// generation older than gen wrote and whose ids keep does not hold, and
// returns how many it deleted: once every part of generation gen is in,
// keep is the set of ids its report has for that day. Documents of gen and
// of newer generations are left alone. It reads the day once (one paged
// query) and deletes in transactional batches of up to 100, with bounded
// concurrency; a document already gone is not counted.
func (s *Cosmos) SweepDay(ctx context.Context, scope, metric, date string, gen int64, keep IDSet) (int, error) {
	return sweepDay(ctx, s, scope, metric, date, gen, keep)
}

// CountWindow returns the rows and exact billed totals of the given days of
// scope and metric, per day and billing currency, ordered by day and
// currency. It reads billingCurrency and billedCostExact of every document
// and sums them in decimal arithmetic: Cosmos DB numbers are float64 and no
// SUM in SQL would be exact. Days without documents are left out.
func (s *Cosmos) CountWindow(ctx context.Context, scope, metric string, dates []string) ([]DayTotal, error) {
	return countWindow(ctx, s, scope, metric, dates)
}

func (s *Cosmos) limit() int { return s.concurrency }

// summaryQuery reads the summaries of one partition. Every query of the
// costs container has this shape, so its indexing policy needs only /pk/?
// (see CostsIndexingPolicy). The WHERE clause repeats the partition key
// because the emulator ignores the partition key option.
const summaryQuery = "SELECT c.id, c.contentHash, c.generation, c.billingCurrency, c.billedCostExact FROM c WHERE c.pk = @pk"

func (s *Cosmos) listCosts(ctx context.Context, pk string, each func(*CostSummary) error) (float64, error) {
	var c CostSummary
	rc, err := s.query(ctx, s.costs, pk, summaryQuery, []azcosmos.QueryParameter{{Name: "@pk", Value: pk}}, scanPageSize, func(b []byte) error {
		c = CostSummary{}
		if err := json.Unmarshal(b, &c); err != nil {
			return err
		}
		return each(&c)
	})
	return rc, mapError(err)
}

// upsertCosts writes docs in one transactional batch. Every operation's
// status is checked: the emulator answers 200 for a batch whose operations
// failed.
func (s *Cosmos) upsertCosts(ctx context.Context, pk string, docs []encoded) (float64, error) {
	key := azcosmos.NewPartitionKeyString(pk)
	var rc float64
	err := retryUnavailable(ctx, func() error {
		b := s.costs.NewTransactionalBatch(key)
		for _, d := range docs {
			b.UpsertItem(d.body, nil)
		}
		resp, err := s.costs.ExecuteTransactionalBatch(ctx, b, nil)
		rc += float64(resp.RequestCharge)
		if err != nil {
			return err
		}
		for i, r := range resp.OperationResults {
			if r.StatusCode >= 300 && i < len(docs) {
				d := docs[i].doc
				return fmt.Errorf("cost %s (%s line %d): batch operation answered %d", d.ID, d.File, d.Line, r.StatusCode)
			}
		}
		if len(resp.OperationResults) != len(docs) {
			return fmt.Errorf("batch of %d answered %d results", len(docs), len(resp.OperationResults))
		}
		return nil
	})
	return rc, mapError(err)
}

// deleteCosts deletes ids in one transactional batch; when the batch fails
// (an id was already deleted: a batch is all or nothing) it deletes them one
// by one and ignores those already gone.
func (s *Cosmos) deleteCosts(ctx context.Context, pk string, ids []string) (int, float64, error) {
	key := azcosmos.NewPartitionKeyString(pk)
	var rc float64
	ok := false
	err := retryUnavailable(ctx, func() error {
		b := s.costs.NewTransactionalBatch(key)
		for _, id := range ids {
			b.DeleteItem(id, nil)
		}
		resp, err := s.costs.ExecuteTransactionalBatch(ctx, b, nil)
		rc += float64(resp.RequestCharge)
		if err != nil {
			return err
		}
		ok = resp.Success && len(resp.OperationResults) == len(ids)
		for _, r := range resp.OperationResults {
			ok = ok && r.StatusCode < 300
		}
		return nil
	})
	if err != nil {
		return 0, rc, mapError(err)
	}
	if ok {
		return len(ids), rc, nil
	}
	deleted := 0
	for _, id := range ids {
		err := retryUnavailable(ctx, func() error {
			resp, err := s.costs.DeleteItem(ctx, key, id, nil)
			rc += float64(resp.RequestCharge)
			return err
		})
		switch {
		case err == nil:
			deleted++
		case !isStatus(err, http.StatusNotFound):
			return deleted, rc, fmt.Errorf("delete %s: %w", id, mapError(err))
		}
	}
	return deleted, rc, nil
}

// GetWindow returns the window id of scope with its ETag, or ErrNotFound.
func (s *Cosmos) GetWindow(ctx context.Context, scope, id string) (*Window, error) {
	return getWindow(ctx, s, scope, id)
}

// CreateWindow stores a new window and sets w.ETag; it returns ErrConflict
// when the window exists. It sets ID (when empty), PK, Kind, CreatedAt (when
// zero) and UpdatedAt, lower-cases Scope and keeps the latest errors.
func (s *Cosmos) CreateWindow(ctx context.Context, w *Window) error {
	return createWindow(ctx, s, w)
}

// ReplaceWindow replaces the window on the condition that w.ETag is still
// its current version, and sets the new w.ETag. When someone else wrote it
// first it returns ErrPrecondition: read it again, reapply the change and
// retry. It sets UpdatedAt.
func (s *Cosmos) ReplaceWindow(ctx context.Context, w *Window) error {
	return replaceWindow(ctx, s, w)
}

// GetPart returns the part checkpoint id of scope with its ETag, or
// ErrNotFound.
func (s *Cosmos) GetPart(ctx context.Context, scope, id string) (*Part, error) {
	return getPart(ctx, s, scope, id)
}

// PutPart creates the part checkpoint p when p.ETag is empty (ErrConflict
// when it exists), else replaces it on the condition that p.ETag is current
// (ErrPrecondition when someone else wrote it first), and sets p.ETag. It
// sets ID, PK, Kind, CreatedAt and UpdatedAt and lower-cases Scope.
func (s *Cosmos) PutPart(ctx context.Context, p *Part) error {
	return putPart(ctx, s, p)
}

func (s *Cosmos) readLedger(ctx context.Context, pk, id string) ([]byte, azcore.ETag, error) {
	resp, err := s.ledger.ReadItem(ctx, azcosmos.NewPartitionKeyString(pk), id, nil)
	if err != nil {
		return nil, "", mapError(err)
	}
	return resp.Value, resp.ETag, nil
}

func (s *Cosmos) createLedger(ctx context.Context, pk string, doc []byte) (azcore.ETag, error) {
	resp, err := s.ledger.CreateItem(ctx, azcosmos.NewPartitionKeyString(pk), doc, nil)
	if err != nil {
		return "", mapError(err)
	}
	return resp.ETag, nil
}

func (s *Cosmos) replaceLedger(ctx context.Context, pk, id string, doc []byte, etag azcore.ETag) (azcore.ETag, error) {
	resp, err := s.ledger.ReplaceItem(ctx, azcosmos.NewPartitionKeyString(pk), id, doc, &azcosmos.ItemOptions{IfMatchEtag: &etag})
	if err != nil {
		return "", mapError(err)
	}
	return resp.ETag, nil
}

// PutQuarantine creates or replaces the quarantine entry of q's line. It
// sets q's ID, PK and Kind on the copy it writes.
func (s *Cosmos) PutQuarantine(ctx context.Context, q Quarantine) error {
	if err := prepareQuarantine(&q); err != nil {
		return fmt.Errorf("put quarantine: %w", err)
	}
	b, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("put quarantine %s: %w", q.ID, err)
	}
	if _, err := s.ledger.UpsertItem(ctx, azcosmos.NewPartitionKeyString(q.PK), b, nil); err != nil {
		return fmt.Errorf("put quarantine %s: %w", q.ID, mapError(err))
	}
	return nil
}

// ListWindows returns every window of scope, or of every scope when scope is
// empty (a cross-partition query), ordered by scope, metric, from and to,
// each with its ETag.
func (s *Cosmos) ListWindows(ctx context.Context, scope string) ([]Window, error) {
	var (
		q      = "SELECT * FROM c WHERE c.kind = @kind"
		params = []azcosmos.QueryParameter{{Name: "@kind", Value: KindWindow}}
		pk     string
	)
	if scope != "" {
		pk = LedgerPK(scope)
		q += " AND c.pk = @pk"
		params = append(params, azcosmos.QueryParameter{Name: "@pk", Value: pk})
	}
	var out []Window
	_, err := s.query(ctx, s.ledger, pk, q, params, pageSize, func(b []byte) error {
		var doc struct {
			Window
			ETag azcore.ETag `json:"_etag"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return err
		}
		doc.Window.ETag = doc.ETag
		out = append(out, doc.Window)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list windows of %q: %w", scope, mapError(err))
	}
	sortWindows(out)
	return out, nil
}

// query runs q in partition pk (every partition when pk is empty), passes
// each item to each, and returns the request charge. A page answered 503 is
// asked again from the last continuation (see retryUnavailable), so each
// sees every item once.
func (s *Cosmos) query(ctx context.Context, c *azcosmos.ContainerClient, pk, q string, params []azcosmos.QueryParameter, pageHint int32, each func([]byte) error) (float64, error) {
	key := azcosmos.NewPartitionKey()
	if pk != "" {
		key = azcosmos.NewPartitionKeyString(pk)
	}
	var (
		rc   float64
		cont *string
	)
	err := retryUnavailable(ctx, func() error {
		pager := c.NewQueryItemsPager(q, key, &azcosmos.QueryOptions{QueryParameters: params, PageSizeHint: pageHint, ContinuationToken: cont})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			rc += float64(page.RequestCharge)
			if err != nil {
				return err
			}
			for _, item := range page.Items {
				if err := each(item); err != nil {
					return fmt.Errorf("decode query result: %w", err)
				}
			}
			if page.ContinuationToken == nil || *page.ContinuationToken == "" {
				return nil
			}
			cont = page.ContinuationToken
		}
		return nil
	})
	return rc, err
}

// Bounds of the store's own retries of 503 Service Unavailable.
const (
	unavailableRetries = 4
	maxUnavailableWait = 10 * time.Second
)

// retryUnavailable runs op, and again after a wait when Cosmos DB answers
// 503, at most unavailableRetries more times. The wait is the service's
// x-ms-retry-after-ms when it sends one (at most 10 s), else 0.5, 1, 2, 4 s.
// The SDK retries 429s itself but not the 503s of a single write region;
// every operation retried here is idempotent (upserts, deletes, reads).
func retryUnavailable(ctx context.Context, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || attempt == unavailableRetries || !isStatus(err, http.StatusServiceUnavailable) {
			return err
		}
		wait, ok := RetryAfter(err)
		if !ok || wait <= 0 {
			wait = time.Duration(1<<attempt) * 500 * time.Millisecond
		}
		t := time.NewTimer(min(wait, maxUnavailableWait))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while waiting to retry after: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// RetryAfter reports how long Cosmos DB asked the caller to wait, when err
// is a throttle (429) or an unavailable service (503) that the SDK and the
// store gave up retrying: the caller should come back after that delay (a
// queue message with a visibility delay) instead of failing. It reads
// x-ms-retry-after-ms, then Retry-After in seconds; a 429 or 503 without
// either reports 0 and true.
func RetryAfter(err error) (time.Duration, bool) {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || (re.StatusCode != http.StatusTooManyRequests && re.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	if re.RawResponse == nil {
		return 0, true
	}
	h := re.RawResponse.Header
	if v, err := strconv.ParseFloat(h.Get("x-ms-retry-after-ms"), 64); err == nil && v >= 0 {
		return time.Duration(v * float64(time.Millisecond)), true
	}
	if v, err := strconv.Atoi(h.Get("Retry-After")); err == nil && v >= 0 {
		return time.Duration(v) * time.Second, true
	}
	return 0, true
}

// isStatus reports whether err is a Cosmos response with the given status.
func isStatus(err error, status int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

// ListQuarantine returns the quarantine entries of scope, of one window when
// windowID is not empty, ordered by window, file and line.
func (s *Cosmos) ListQuarantine(ctx context.Context, scope, windowID string) ([]Quarantine, error) {
	pk := LedgerPK(scope)
	q := "SELECT * FROM c WHERE c.pk = @pk AND c.kind = @kind"
	params := []azcosmos.QueryParameter{{Name: "@pk", Value: pk}, {Name: "@kind", Value: KindQuarantine}}
	if windowID != "" {
		q += " AND c.windowId = @window"
		params = append(params, azcosmos.QueryParameter{Name: "@window", Value: windowID})
	}
	var out []Quarantine
	_, err := s.query(ctx, s.ledger, pk, q, params, pageSize, func(b []byte) error {
		var e Quarantine
		if err := json.Unmarshal(b, &e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list quarantine of %q: %w", scope, mapError(err))
	}
	sortQuarantine(out)
	return out, nil
}

// Database returns the name of the store's database.
func (s *Cosmos) Database() string { return s.database }
