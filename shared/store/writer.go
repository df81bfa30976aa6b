package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Limits of one write request. Cosmos DB accepts at most 100 operations and
// 2 MB in one transactional batch; a batch here stays well under both. A
// document larger than maxBatchBytes goes in a batch of its own.
const (
	maxBatchOps   = 100
	maxBatchBytes = 1 << 20
)

// CostSummary is what the store reads back of a stored cost document:
// enough to decide whether a line must be written, to sweep, count and
// verify a day.
type CostSummary struct {
	ID              string `json:"id"`
	ContentHash     string `json:"contentHash"`
	Generation      int64  `json:"generation"`
	BillingCurrency string `json:"billingCurrency"`
	BilledCostExact string `json:"billedCostExact"`
}

// Key is the fixed-size form of a document id or content hash: the 16 bytes
// that costcsv's 32 hex digits encode or, for any other string, the first
// 16 bytes of its SHA-256. Indexes and id sets hold Keys, not strings, so
// that a day of a million documents fits in tens of megabytes.
type Key [16]byte

// KeyOf returns the Key of an id or content hash.
func KeyOf(s string) Key {
	var k Key
	if len(s) == 2*len(k) {
		if _, err := hex.Decode(k[:], []byte(s)); err == nil {
			return k
		}
	}
	sum := sha256.Sum256([]byte(s))
	copy(k[:], sum[:])
	return k
}

// IDSet is a set of document ids.
type IDSet map[Key]struct{}

// Add adds id.
func (s IDSet) Add(id string) { s[KeyOf(id)] = struct{}{} }

// Has reports whether id is in the set.
func (s IDSet) Has(id string) bool {
	_, ok := s[KeyOf(id)]
	return ok
}

// encoded is a cost document and its JSON.
type encoded struct {
	doc  *Cost
	body []byte
}

// costBackend is what the cost operations need of a store: read a
// partition's summaries, upsert and delete documents of one partition.
// Cosmos and Memory implement it; the rules live once, in this file and in
// rules.go.
type costBackend interface {
	// listCosts calls each for every document of partition pk.
	listCosts(ctx context.Context, pk string, each func(*CostSummary) error) (float64, error)
	// upsertCosts writes docs, all of partition pk and at most maxBatchOps,
	// as one request where the store can.
	upsertCosts(ctx context.Context, pk string, docs []encoded) (float64, error)
	// deleteCosts deletes ids of partition pk and counts those it deleted;
	// an id already gone is not an error.
	deleteCosts(ctx context.Context, pk string, ids []string) (int, float64, error)
	// limit bounds the requests one call makes at once.
	limit() int
}

// CostWriter stores cost documents, writing only what changed. The first
// time it meets a partition it reads the id, content hash and generation of
// every document stored there (one paged query); then, for each document
// given, it
//
//   - writes it whole when its id is new or its content hash differs;
//   - skips it when the same content is stored, whatever the generation:
//     re-ingesting an unchanged report writes nothing, and an invocation
//     killed mid-part and run again rewrites nothing;
//   - skips it as stale when a newer generation stored the id: an older
//     report never overwrites a newer one.
//
// Writes go out as transactional batches of up to 100 documents of one
// partition, with bounded concurrency. Throttled requests (429) are retried
// by the SDK after the service's x-ms-retry-after-ms, and 503s by the store
// (see [CosmosOptions]); a wait longer than the SDK's cap comes back as an
// error that [RetryAfter] reads.
//
// A CostWriter keeps what it read and wrote in memory, about 40 bytes per
// document of the partitions it met; use one per invocation (or per part),
// not one per process. It is safe for concurrent use. Documents written by
// others after it read a partition are not seen: two writers of the same
// generation write the same content, which is harmless, and a newer
// generation stops an older one through the ledger before it writes.
type CostWriter struct {
	b     costBackend
	mu    sync.Mutex
	parts map[string]*partIndex
}

// partIndex is what a writer knows of one partition.
type partIndex struct {
	ready chan struct{} // closed once docs or err is set
	err   error
	docs  map[Key]storedCost
}

type storedCost struct {
	hash Key
	gen  int64
}

func newCostWriter(b costBackend) *CostWriter {
	return &CostWriter{b: b, parts: map[string]*partIndex{}}
}

// Write stores docs, which may span partitions, and counts what it did. An
// id given twice for one partition is an error: two lines must never
// collapse into one document. On error some documents may have been
// written; writing the same documents again is safe.
func (w *CostWriter) Write(ctx context.Context, docs []Cost) (WriteStats, error) {
	var (
		mu sync.Mutex
		st WriteStats
	)
	groups, err := groupCosts(docs)
	if err != nil {
		return st, fmt.Errorf("write costs: %w", err)
	}
	charge := func(rc float64) {
		mu.Lock()
		st.RequestCharge += rc
		mu.Unlock()
	}

	// What is stored, once per partition.
	indexes := make([]*partIndex, len(groups))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.b.limit())
	for i, gr := range groups {
		g.Go(func() error {
			idx, rc, err := w.index(gctx, gr.pk)
			charge(rc)
			indexes[i] = idx
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return st, err
	}

	// What to write, in batches of one partition.
	type batch struct {
		pk   string
		idx  *partIndex
		docs []encoded
	}
	var batches []batch
	w.mu.Lock()
	for i, gr := range groups {
		idx := indexes[i]
		cur := batch{pk: gr.pk, idx: idx}
		size := 0
		for _, d := range gr.docs {
			old, ok := idx.docs[KeyOf(d.ID)]
			switch decide(old, ok, d) {
			case actionSkip:
				st.Skipped++
				continue
			case actionStale:
				st.Stale++
				continue
			}
			body, err := json.Marshal(d)
			if err != nil {
				w.mu.Unlock()
				return st, fmt.Errorf("write cost %s (%s line %d): %w", d.ID, d.File, d.Line, err)
			}
			if len(cur.docs) == maxBatchOps || (len(cur.docs) > 0 && size+len(body) > maxBatchBytes) {
				batches = append(batches, cur)
				cur = batch{pk: gr.pk, idx: idx}
				size = 0
			}
			cur.docs = append(cur.docs, encoded{doc: d, body: body})
			size += len(body)
		}
		if len(cur.docs) > 0 {
			batches = append(batches, cur)
		}
	}
	w.mu.Unlock()

	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(w.b.limit())
	for _, b := range batches {
		g.Go(func() error {
			rc, err := w.b.upsertCosts(gctx, b.pk, b.docs)
			charge(rc)
			if err != nil {
				return fmt.Errorf("write %d costs in %s: %w", len(b.docs), b.pk, err)
			}
			w.mu.Lock()
			for _, e := range b.docs {
				b.idx.docs[KeyOf(e.doc.ID)] = storedCost{hash: KeyOf(e.doc.ContentHash), gen: e.doc.Generation}
			}
			w.mu.Unlock()
			mu.Lock()
			st.Written += len(b.docs)
			mu.Unlock()
			return nil
		})
	}
	return st, g.Wait()
}

// index returns what is stored in partition pk, reading it the first time.
// Concurrent callers for one partition share one read; a failed read is
// tried again by the next caller.
func (w *CostWriter) index(ctx context.Context, pk string) (*partIndex, float64, error) {
	w.mu.Lock()
	idx, ok := w.parts[pk]
	if ok {
		w.mu.Unlock()
		select {
		case <-idx.ready:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		if idx.err != nil {
			return nil, 0, idx.err
		}
		return idx, 0, nil
	}
	idx = &partIndex{ready: make(chan struct{})}
	w.parts[pk] = idx
	w.mu.Unlock()

	docs := map[Key]storedCost{}
	rc, err := w.b.listCosts(ctx, pk, func(c *CostSummary) error {
		docs[KeyOf(c.ID)] = storedCost{hash: KeyOf(c.ContentHash), gen: c.Generation}
		return nil
	})
	w.mu.Lock()
	if err != nil {
		idx.err = fmt.Errorf("read what is stored in %s: %w", pk, err)
		delete(w.parts, pk)
	} else {
		idx.docs = docs
	}
	w.mu.Unlock()
	close(idx.ready)
	return idx, rc, idx.err
}

// listDay returns the summaries of one day's documents.
func listDay(ctx context.Context, b costBackend, scope, metric, date string) ([]CostSummary, error) {
	pk := CostPK(scope, metric, date)
	var out []CostSummary
	if _, err := b.listCosts(ctx, pk, func(c *CostSummary) error {
		out = append(out, *c)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list %s: %w", pk, err)
	}
	return out, nil
}

// sweepDay deletes the documents of one day that a generation older than
// gen wrote and whose ids keep does not hold.
func sweepDay(ctx context.Context, b costBackend, scope, metric, date string, gen int64, keep IDSet) (int, error) {
	pk := CostPK(scope, metric, date)
	var stale []string
	if _, err := b.listCosts(ctx, pk, func(c *CostSummary) error {
		if c.Generation < gen && !keep.Has(c.ID) {
			stale = append(stale, c.ID)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("sweep %s: %w", pk, err)
	}
	var (
		mu      sync.Mutex
		deleted int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.limit())
	for lo := 0; lo < len(stale); lo += maxBatchOps {
		ids := stale[lo:min(lo+maxBatchOps, len(stale))]
		g.Go(func() error {
			n, _, err := b.deleteCosts(gctx, pk, ids)
			mu.Lock()
			deleted += n
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("sweep %s: %w", pk, err)
			}
			return nil
		})
	}
	err := g.Wait()
	return deleted, err
}

// countWindow sums rows and exact billed cost per day and currency.
func countWindow(ctx context.Context, b costBackend, scope, metric string, dates []string) ([]DayTotal, error) {
	days := uniqueDates(dates)
	tallies := make([]*tally, len(days))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.limit())
	for i, date := range days {
		g.Go(func() error {
			pk := CostPK(scope, metric, date)
			t := newTally(date)
			if _, err := b.listCosts(gctx, pk, func(c *CostSummary) error { return t.add(c) }); err != nil {
				return fmt.Errorf("count %s: %w", pk, err)
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
