package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Memory is an in-memory store with the same behaviour as [Cosmos]: the
// same keys, write rules, ETags and errors, through the same code (writer.go
// and ledgerops.go) over a map instead of Cosmos DB. Documents are kept as
// JSON, so what survives a round trip through Cosmos DB is what survives
// here. It is safe for concurrent use. Its request charges are zero.
type Memory struct {
	mu     sync.Mutex
	costs  map[string]map[string][]byte // pk → id → document
	ledger map[string]map[string]memItem
	seq    uint64
}

type memItem struct {
	doc  []byte
	etag azcore.ETag
}

// NewMemory returns an empty store; Provision is not needed.
func NewMemory() *Memory {
	return &Memory{
		costs:  map[string]map[string][]byte{},
		ledger: map[string]map[string]memItem{},
	}
}

// Provision does nothing: the memory store needs no containers.
func (m *Memory) Provision(ctx context.Context) error { return ctx.Err() }

// NewCostWriter returns a writer of cost documents; see [CostWriter].
func (m *Memory) NewCostWriter() *CostWriter { return newCostWriter(m) }

// UpsertCosts stores docs with a new [CostWriter], as [Cosmos.UpsertCosts].
func (m *Memory) UpsertCosts(ctx context.Context, docs []Cost) (WriteStats, error) {
	return m.NewCostWriter().Write(ctx, docs)
}

// ListDay returns the summaries of one day's documents, as [Cosmos.ListDay].
func (m *Memory) ListDay(ctx context.Context, scope, metric, date string) ([]CostSummary, error) {
	return listDay(ctx, m, scope, metric, date)
}

// SweepDay deletes what [Cosmos.SweepDay] deletes.
func (m *Memory) SweepDay(ctx context.Context, scope, metric, date string, gen int64, keep IDSet) (int, error) {
	return sweepDay(ctx, m, scope, metric, date, gen, keep)
}

// CountWindow returns the rows and exact billed totals of the given days,
// per day and billing currency, summed from the stored documents.
func (m *Memory) CountWindow(ctx context.Context, scope, metric string, dates []string) ([]DayTotal, error) {
	return countWindow(ctx, m, scope, metric, dates)
}

func (m *Memory) limit() int { return 4 }

func (m *Memory) listCosts(ctx context.Context, pk string, each func(*CostSummary) error) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	docs := make([][]byte, 0, len(m.costs[pk]))
	for _, b := range m.costs[pk] {
		docs = append(docs, b)
	}
	m.mu.Unlock()
	for _, b := range docs {
		var c CostSummary
		if err := json.Unmarshal(b, &c); err != nil {
			return 0, fmt.Errorf("decode stored cost: %w", err)
		}
		if err := each(&c); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

func (m *Memory) upsertCosts(ctx context.Context, pk string, docs []encoded) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	part := m.costs[pk]
	if part == nil {
		part = map[string][]byte{}
		m.costs[pk] = part
	}
	for _, d := range docs {
		part[d.doc.ID] = d.body
	}
	return 0, nil
}

func (m *Memory) deleteCosts(ctx context.Context, pk string, ids []string) (int, float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := m.costs[pk][id]; ok {
			delete(m.costs[pk], id)
			n++
		}
	}
	return n, 0, nil
}

// GetWindow returns the window id of scope, or ErrNotFound.
func (m *Memory) GetWindow(ctx context.Context, scope, id string) (*Window, error) {
	return getWindow(ctx, m, scope, id)
}

// CreateWindow stores a new window and sets w.ETag, or returns ErrConflict.
func (m *Memory) CreateWindow(ctx context.Context, w *Window) error {
	return createWindow(ctx, m, w)
}

// ReplaceWindow replaces the window if w.ETag is still current and sets the
// new w.ETag; otherwise it returns ErrPrecondition.
func (m *Memory) ReplaceWindow(ctx context.Context, w *Window) error {
	return replaceWindow(ctx, m, w)
}

// GetPart returns the part checkpoint id of scope, or ErrNotFound.
func (m *Memory) GetPart(ctx context.Context, scope, id string) (*Part, error) {
	return getPart(ctx, m, scope, id)
}

// PutPart creates or conditionally replaces p, as [Cosmos.PutPart].
func (m *Memory) PutPart(ctx context.Context, p *Part) error {
	return putPart(ctx, m, p)
}

func (m *Memory) readLedger(ctx context.Context, pk, id string) ([]byte, azcore.ETag, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.ledger[pk][id]
	if !ok {
		return nil, "", ErrNotFound
	}
	return it.doc, it.etag, nil
}

func (m *Memory) createLedger(ctx context.Context, pk string, doc []byte) (azcore.ETag, error) {
	id, err := docID(doc)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ledger[pk][id]; ok {
		return "", ErrConflict
	}
	return m.putLedgerLocked(pk, id, doc), nil
}

func (m *Memory) replaceLedger(ctx context.Context, pk, id string, doc []byte, etag azcore.ETag) (azcore.ETag, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.ledger[pk][id]
	switch {
	case !ok:
		return "", ErrNotFound
	case it.etag != etag:
		return "", ErrPrecondition
	}
	return m.putLedgerLocked(pk, id, doc), nil
}

// putLedgerLocked stores doc under a fresh ETag; m.mu must be held.
func (m *Memory) putLedgerLocked(pk, id string, doc []byte) azcore.ETag {
	m.seq++
	it := memItem{doc: doc, etag: azcore.ETag(`"` + strconv.FormatUint(m.seq, 10) + `"`)}
	part := m.ledger[pk]
	if part == nil {
		part = map[string]memItem{}
		m.ledger[pk] = part
	}
	part[id] = it
	return it.etag
}

func docID(doc []byte) (string, error) {
	var d struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(doc, &d); err != nil || d.ID == "" {
		return "", fmt.Errorf("ledger document without id: %v", err)
	}
	return d.ID, nil
}

// PutQuarantine creates or replaces the quarantine entry of q's line.
func (m *Memory) PutQuarantine(ctx context.Context, q Quarantine) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := prepareQuarantine(&q); err != nil {
		return fmt.Errorf("put quarantine: %w", err)
	}
	b, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("put quarantine %s: %w", q.ID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putLedgerLocked(q.PK, q.ID, b)
	return nil
}

// ListWindows returns every window of scope, or of every scope when scope
// is empty, ordered by scope, metric, from and to.
func (m *Memory) ListWindows(ctx context.Context, scope string) ([]Window, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Window
	for pk, part := range m.ledger {
		if scope != "" && pk != LedgerPK(scope) {
			continue
		}
		for id, it := range part {
			var w Window
			if err := json.Unmarshal(it.doc, &w); err != nil {
				return nil, fmt.Errorf("list windows: %s: %w", id, err)
			}
			if w.Kind != KindWindow {
				continue
			}
			w.ETag = it.etag
			out = append(out, w)
		}
	}
	sortWindows(out)
	return out, nil
}

// ListQuarantine returns the quarantine entries of scope, of one window when
// windowID is not empty, ordered by window, file and line.
func (m *Memory) ListQuarantine(ctx context.Context, scope, windowID string) ([]Quarantine, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Quarantine
	for id, it := range m.ledger[LedgerPK(scope)] {
		var q Quarantine
		if err := json.Unmarshal(it.doc, &q); err != nil {
			return nil, fmt.Errorf("list quarantine: %s: %w", id, err)
		}
		if q.Kind != KindQuarantine || (windowID != "" && q.WindowID != windowID) {
			continue
		}
		out = append(out, q)
	}
	sortQuarantine(out)
	return out, nil
}
