package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"golang.org/x/sync/errgroup"
)

// CosmosOptions configures [NewCosmos]; nil means the defaults.
type CosmosOptions struct {
	// Database is the database name; the default is "costsync".
	Database string
	// ClientOptions are passed to azcosmos. When Retry.MaxRetries and
	// Retry.MaxRetryDelay are zero, NewCosmos sets them to 9 and 30 s: the
	// SDK then retries a throttled (429) or unavailable (503) request up to
	// 9 times, waiting as long as the service's x-ms-retry-after-ms says,
	// and returns the 429 at once when the service asks for a longer wait,
	// so the caller can re-enqueue instead of holding the invocation. The
	// store adds no retry loop of its own; the caller's context deadline
	// bounds the whole call.
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
	// idsPerLookup bounds the ids in one "ARRAY_CONTAINS(@ids, c.id)" query,
	// well within the query size limits for ids of about 64 characters.
	idsPerLookup = 500
	// pageSize is the page size asked for on queries.
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

// UpsertCosts stores docs, which may span partitions, and counts what it did.
//
// It first reads id, contentHash and generation of the documents that
// already exist, with one query per partition and up to 500 ids, then for
// each document writes it whole, patches its generation, or skips it (see
// WriteStats and the rules below). Look-ups and writes run with bounded
// concurrency; the SDK retries throttled requests (see CosmosOptions).
//
// Rules: a new document or changed content is written whole (upsert); the
// same content with the same generation is skipped, which makes a retried or
// resumed run nearly free; the same content with another generation gets a
// patch of generation, windowId, file and line, so that the sweep of the new
// generation keeps it. A patch costs about as many request units as a
// replace (Cosmos DB rewrites the document) but sends a few bytes instead of
// the document. A document deleted between the look-up and its patch is
// written whole. An id given twice for one partition is an error: two lines
// must never collapse into one document.
//
// On error some documents may have been written; calling again with the
// same documents is safe.
func (s *Cosmos) UpsertCosts(ctx context.Context, docs []Cost) (WriteStats, error) {
	var (
		mu sync.Mutex
		st WriteStats
	)
	groups, err := groupCosts(docs)
	if err != nil {
		return st, fmt.Errorf("upsert costs: %w", err)
	}
	charge := func(c float32) {
		mu.Lock()
		st.RequestCharge += float64(c)
		mu.Unlock()
	}

	// Phase 1: what exists, per partition and chunk of ids.
	existing := make([]map[string]*stored, len(groups))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency)
	for i, gr := range groups {
		existing[i] = map[string]*stored{}
		for lo := 0; lo < len(gr.docs); lo += idsPerLookup {
			chunk := gr.docs[lo:min(lo+idsPerLookup, len(gr.docs))]
			found := existing[i]
			g.Go(func() error {
				ids := make([]string, len(chunk))
				for j, d := range chunk {
					ids[j] = d.ID
				}
				res, rc, err := s.lookup(gctx, gr.pk, ids)
				charge(rc)
				if err != nil {
					return fmt.Errorf("upsert costs: look up %d ids in %s: %w", len(ids), gr.pk, mapError(err))
				}
				mu.Lock()
				defer mu.Unlock()
				for _, r := range res {
					found[r.ID] = r
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return st, err
	}

	// Phase 2: write, patch or skip each document.
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency)
	skipped := 0
	for i, gr := range groups {
		for _, d := range gr.docs {
			act := decide(existing[i][d.ID], d)
			if act == actionSkip {
				skipped++
				continue
			}
			g.Go(func() error {
				res, err := s.writeCost(gctx, d, act)
				mu.Lock()
				defer mu.Unlock()
				st.Add(res)
				if err != nil {
					return fmt.Errorf("upsert cost %s in %s (%s line %d): %w", d.ID, d.PK, d.File, d.Line, mapError(err))
				}
				return nil
			})
		}
	}
	err = g.Wait()
	st.Skipped += skipped
	return st, err
}

// lookup returns id, contentHash and generation of the documents among ids
// that exist in partition pk.
func (s *Cosmos) lookup(ctx context.Context, pk string, ids []string) ([]*stored, float32, error) {
	const q = "SELECT c.id, c.contentHash, c.generation FROM c WHERE c.pk = @pk AND ARRAY_CONTAINS(@ids, c.id)"
	var out []*stored
	rc, err := s.query(ctx, s.costs, pk, q, []azcosmos.QueryParameter{
		{Name: "@pk", Value: pk},
		{Name: "@ids", Value: ids},
	}, func(b []byte) error {
		r := &stored{}
		if err := json.Unmarshal(b, r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, rc, err
}

// writeCost performs act for d and reports it in the returned stats.
func (s *Cosmos) writeCost(ctx context.Context, d *Cost, act action) (WriteStats, error) {
	var st WriteStats
	pk := azcosmos.NewPartitionKeyString(d.PK)
	if act == actionPatch {
		var ops azcosmos.PatchOperations
		ops.AppendSet("/generation", d.Generation)
		ops.AppendSet("/windowId", d.WindowID)
		ops.AppendSet("/file", d.File)
		ops.AppendSet("/line", d.Line)
		resp, err := s.costs.PatchItem(ctx, pk, d.ID, ops, nil)
		st.RequestCharge += float64(resp.RequestCharge)
		if err == nil {
			st.Patched++
			return st, nil
		}
		if !isStatus(err, http.StatusNotFound) {
			return st, err
		}
		// Swept since the look-up: write it whole.
	}
	b, err := json.Marshal(d)
	if err != nil {
		return st, err
	}
	resp, err := s.costs.UpsertItem(ctx, pk, b, nil)
	st.RequestCharge += float64(resp.RequestCharge)
	if err != nil {
		return st, err
	}
	st.Written++
	return st, nil
}

// SweepWindow deletes the cost documents of the given days of scope and
// metric whose generation is not keep, and returns how many it deleted.
// Each day is one single-partition query and a delete per document, with
// bounded concurrency. A document already gone counts as deleted by whoever
// deleted it, not by this call.
//
// Newer generations are deleted too: keep must be the newest generation of
// those days, which the caller checks in the ledger before it sweeps.
func (s *Cosmos) SweepWindow(ctx context.Context, scope, metric string, dates []string, keep int64) (int, error) {
	const q = "SELECT c.id FROM c WHERE c.pk = @pk AND c.generation != @keep"
	var (
		mu      sync.Mutex
		deleted int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency)
	for _, date := range uniqueDates(dates) {
		pk := CostPK(scope, metric, date)
		var ids []string
		_, err := s.query(gctx, s.costs, pk, q, []azcosmos.QueryParameter{
			{Name: "@pk", Value: pk},
			{Name: "@keep", Value: keep},
		}, func(b []byte) error {
			var r stored
			if err := json.Unmarshal(b, &r); err != nil {
				return err
			}
			ids = append(ids, r.ID)
			return nil
		})
		if err != nil {
			if werr := g.Wait(); werr != nil {
				return deleted, werr
			}
			return deleted, fmt.Errorf("sweep %s: %w", pk, mapError(err))
		}
		for _, id := range ids {
			g.Go(func() error {
				_, err := s.costs.DeleteItem(gctx, azcosmos.NewPartitionKeyString(pk), id, nil)
				if isStatus(err, http.StatusNotFound) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("sweep %s: delete %s: %w", pk, id, mapError(err))
				}
				mu.Lock()
				deleted++
				mu.Unlock()
				return nil
			})
		}
	}
	err := g.Wait()
	return deleted, err
}

// CountWindow returns the rows and exact billed totals of the given days of
// scope and metric, per day and billing currency, ordered by day and
// currency. It reads billingCurrency and billedCostExact of every document
// and sums them in decimal arithmetic: Cosmos DB numbers are float64 and no
// SUM in SQL would be exact. Days without documents are left out.
func (s *Cosmos) CountWindow(ctx context.Context, scope, metric string, dates []string) ([]DayTotal, error) {
	const q = "SELECT c.billingCurrency, c.billedCostExact FROM c WHERE c.pk = @pk"
	days := uniqueDates(dates)
	tallies := make([]*tally, len(days))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency)
	for i, date := range days {
		g.Go(func() error {
			pk := CostPK(scope, metric, date)
			t := newTally(date)
			_, err := s.query(gctx, s.costs, pk, q, []azcosmos.QueryParameter{{Name: "@pk", Value: pk}}, func(b []byte) error {
				var a amount
				if err := json.Unmarshal(b, &a); err != nil {
					return err
				}
				return t.add(a)
			})
			if err != nil {
				return fmt.Errorf("count %s: %w", pk, mapError(err))
			}
			tallies[i] = t
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []DayTotal
	for _, t := range tallies {
		out = append(out, t.result()...)
	}
	return out, nil
}

// GetWindow returns the window id of scope with its ETag, or ErrNotFound.
func (s *Cosmos) GetWindow(ctx context.Context, scope, id string) (*Window, error) {
	resp, err := s.ledger.ReadItem(ctx, azcosmos.NewPartitionKeyString(LedgerPK(scope)), id, nil)
	if err != nil {
		return nil, fmt.Errorf("get window %s: %w", id, mapError(err))
	}
	w := &Window{}
	if err := json.Unmarshal(resp.Value, w); err != nil {
		return nil, fmt.Errorf("get window %s: %w", id, err)
	}
	if w.Kind != KindWindow {
		return nil, fmt.Errorf("get window %s: document is of kind %q", id, w.Kind)
	}
	w.ETag = resp.ETag
	return w, nil
}

// CreateWindow stores a new window and sets w.ETag; it returns ErrConflict
// when the window exists. It sets ID (when empty), PK, Kind, CreatedAt (when
// zero) and UpdatedAt, lower-cases Scope and keeps the latest errors.
func (s *Cosmos) CreateWindow(ctx context.Context, w *Window) error {
	if err := prepareWindow(w, time.Now().UTC(), true); err != nil {
		return fmt.Errorf("create window: %w", err)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("create window %s: %w", w.ID, err)
	}
	resp, err := s.ledger.CreateItem(ctx, azcosmos.NewPartitionKeyString(w.PK), b, nil)
	if err != nil {
		return fmt.Errorf("create window %s: %w", w.ID, mapError(err))
	}
	w.ETag = resp.ETag
	return nil
}

// ReplaceWindow replaces the window on the condition that w.ETag is still
// its current version, and sets the new w.ETag. When someone else wrote it
// first it returns ErrPrecondition: read it again, reapply the change and
// retry. It sets UpdatedAt.
func (s *Cosmos) ReplaceWindow(ctx context.Context, w *Window) error {
	if w.ETag == "" {
		return fmt.Errorf("replace window %s: no etag", w.ID)
	}
	if err := prepareWindow(w, time.Now().UTC(), false); err != nil {
		return fmt.Errorf("replace window: %w", err)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("replace window %s: %w", w.ID, err)
	}
	etag := w.ETag
	resp, err := s.ledger.ReplaceItem(ctx, azcosmos.NewPartitionKeyString(w.PK), w.ID, b, &azcosmos.ItemOptions{IfMatchEtag: &etag})
	if err != nil {
		return fmt.Errorf("replace window %s: %w", w.ID, mapError(err))
	}
	w.ETag = resp.ETag
	return nil
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
	_, err := s.query(ctx, s.ledger, pk, q, params, func(b []byte) error {
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
// each item to each, and returns the request charge.
func (s *Cosmos) query(ctx context.Context, c *azcosmos.ContainerClient, pk, q string, params []azcosmos.QueryParameter, each func([]byte) error) (float32, error) {
	key := azcosmos.NewPartitionKey()
	if pk != "" {
		key = azcosmos.NewPartitionKeyString(pk)
	}
	pager := c.NewQueryItemsPager(q, key, &azcosmos.QueryOptions{QueryParameters: params, PageSizeHint: pageSize})
	var rc float32
	for pager.More() {
		page, err := pager.NextPage(ctx)
		rc += page.RequestCharge
		if err != nil {
			return rc, err
		}
		for _, item := range page.Items {
			if err := each(item); err != nil {
				return rc, fmt.Errorf("decode query result: %w", err)
			}
		}
	}
	return rc, nil
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
	_, err := s.query(ctx, s.ledger, pk, q, params, func(b []byte) error {
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
