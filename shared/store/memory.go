package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Memory is an in-memory store with the same behaviour as [Cosmos]: the
// same keys, skip rules, ETags and errors. Documents are kept as JSON, so
// what survives a round trip through Cosmos DB is what survives here. It is
// safe for concurrent use. Its request charges are zero.
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

// UpsertCosts stores docs under the same rules as [Cosmos.UpsertCosts].
func (m *Memory) UpsertCosts(ctx context.Context, docs []Cost) (WriteStats, error) {
	var st WriteStats
	if err := ctx.Err(); err != nil {
		return st, err
	}
	groups, err := groupCosts(docs)
	if err != nil {
		return st, fmt.Errorf("upsert costs: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range groups {
		part := m.costs[g.pk]
		if part == nil {
			part = map[string][]byte{}
			m.costs[g.pk] = part
		}
		for _, d := range g.docs {
			var cur *stored
			if b, ok := part[d.ID]; ok {
				cur = &stored{}
				if err := json.Unmarshal(b, cur); err != nil {
					return st, fmt.Errorf("upsert cost %s: %w", d.ID, err)
				}
			}
			switch decide(cur, d) {
			case actionSkip:
				st.Skipped++
				continue
			case actionPatch:
				var full Cost
				if err := json.Unmarshal(part[d.ID], &full); err != nil {
					return st, fmt.Errorf("upsert cost %s: %w", d.ID, err)
				}
				full.Generation, full.WindowID, full.File, full.Line = d.Generation, d.WindowID, d.File, d.Line
				d = &full
				st.Patched++
			default:
				st.Written++
			}
			b, err := json.Marshal(d)
			if err != nil {
				return st, fmt.Errorf("upsert cost %s: %w", d.ID, err)
			}
			part[d.ID] = b
		}
	}
	return st, nil
}

// SweepWindow deletes the cost documents of the given days whose generation
// is not keep, and returns how many it deleted. As with [Cosmos.SweepWindow],
// keep must be the newest generation of those days.
func (m *Memory) SweepWindow(ctx context.Context, scope, metric string, dates []string, keep int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, date := range uniqueDates(dates) {
		part := m.costs[CostPK(scope, metric, date)]
		for id, b := range part {
			var cur stored
			if err := json.Unmarshal(b, &cur); err != nil {
				return n, fmt.Errorf("sweep %s: %w", id, err)
			}
			if cur.Generation != keep {
				delete(part, id)
				n++
			}
		}
	}
	return n, nil
}

// CountWindow returns the rows and exact billed totals of the given days,
// per day and billing currency, summed from the stored documents.
func (m *Memory) CountWindow(ctx context.Context, scope, metric string, dates []string) ([]DayTotal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []DayTotal
	for _, date := range uniqueDates(dates) {
		t := newTally(date)
		for _, b := range m.costs[CostPK(scope, metric, date)] {
			var a amount
			if err := json.Unmarshal(b, &a); err != nil {
				return nil, fmt.Errorf("count %s: %w", date, err)
			}
			if err := t.add(a); err != nil {
				return nil, fmt.Errorf("count window: %w", err)
			}
		}
		out = append(out, t.result()...)
	}
	return out, nil
}

// GetWindow returns the window id of scope, or ErrNotFound.
func (m *Memory) GetWindow(ctx context.Context, scope, id string) (*Window, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.ledger[LedgerPK(scope)][id]
	if !ok {
		return nil, fmt.Errorf("get window %s: %w", id, ErrNotFound)
	}
	w := &Window{}
	if err := json.Unmarshal(it.doc, w); err != nil || w.Kind != KindWindow {
		return nil, fmt.Errorf("get window %s: not a window document (%v)", id, err)
	}
	w.ETag = it.etag
	return w, nil
}

// CreateWindow stores a new window and sets w.ETag, or returns ErrConflict.
func (m *Memory) CreateWindow(ctx context.Context, w *Window) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := prepareWindow(w, time.Now().UTC(), true); err != nil {
		return fmt.Errorf("create window: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ledger[w.PK][w.ID]; ok {
		return fmt.Errorf("create window %s: %w", w.ID, ErrConflict)
	}
	return m.putLedger(w.PK, w.ID, w, &w.ETag)
}

// ReplaceWindow replaces the window if w.ETag is still current and sets the
// new w.ETag; otherwise it returns ErrPrecondition.
func (m *Memory) ReplaceWindow(ctx context.Context, w *Window) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.ETag == "" {
		return fmt.Errorf("replace window %s: no etag", w.ID)
	}
	if err := prepareWindow(w, time.Now().UTC(), false); err != nil {
		return fmt.Errorf("replace window: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.ledger[w.PK][w.ID]
	if !ok {
		return fmt.Errorf("replace window %s: %w", w.ID, ErrNotFound)
	}
	if it.etag != w.ETag {
		return fmt.Errorf("replace window %s: %w", w.ID, ErrPrecondition)
	}
	return m.putLedger(w.PK, w.ID, w, &w.ETag)
}

// PutQuarantine creates or replaces the quarantine entry of q's line.
func (m *Memory) PutQuarantine(ctx context.Context, q Quarantine) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := prepareQuarantine(&q); err != nil {
		return fmt.Errorf("put quarantine: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var etag azcore.ETag
	return m.putLedger(q.PK, q.ID, q, &etag)
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

// putLedger stores v under a fresh ETag and reports it; m.mu must be held.
func (m *Memory) putLedger(pk, id string, v any, etag *azcore.ETag) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("put %s: %w", id, err)
	}
	m.seq++
	it := memItem{doc: b, etag: azcore.ETag(`"` + strconv.FormatUint(m.seq, 10) + `"`)}
	part := m.ledger[pk]
	if part == nil {
		part = map[string]memItem{}
		m.ledger[pk] = part
	}
	part[id] = it
	*etag = it.etag
	return nil
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
