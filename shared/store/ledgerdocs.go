package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// The ledger documents of runs, months and the rate governor are read and
// written the same way as windows: a point read returns the document with
// its ETag, a create fails with ErrConflict when the id exists, and a
// replace needs the ETag that was read (ErrPrecondition otherwise). The
// helpers below do that for any document kind, on Cosmos DB and in memory.

// kindOf reads the kind of a ledger document.
type kindOf struct {
	Kind string `json:"kind"`
}

// decodeLedger unmarshals b into v after checking its kind.
func decodeLedger(b []byte, id, kind string, v any) error {
	var k kindOf
	if err := json.Unmarshal(b, &k); err != nil {
		return fmt.Errorf("get %s %s: %w", kind, id, err)
	}
	if k.Kind != kind {
		return fmt.Errorf("get %s %s: document is of kind %q", kind, id, k.Kind)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("get %s %s: %w", kind, id, err)
	}
	return nil
}

// getLedger reads document id of partition pk into v and returns its ETag.
func (s *Cosmos) getLedger(ctx context.Context, pk, id, kind string, v any) (azcore.ETag, error) {
	resp, err := s.ledger.ReadItem(ctx, azcosmos.NewPartitionKeyString(pk), id, nil)
	if err != nil {
		return "", fmt.Errorf("get %s %s: %w", kind, id, mapError(err))
	}
	return resp.ETag, decodeLedger(resp.Value, id, kind, v)
}

// createLedger stores v as a new document and returns its ETag.
func (s *Cosmos) createLedger(ctx context.Context, pk, id, kind string, v any) (azcore.ETag, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("create %s %s: %w", kind, id, err)
	}
	resp, err := s.ledger.CreateItem(ctx, azcosmos.NewPartitionKeyString(pk), b, nil)
	if err != nil {
		return "", fmt.Errorf("create %s %s: %w", kind, id, mapError(err))
	}
	return resp.ETag, nil
}

// replaceLedger replaces document id if etag is current and returns the new ETag.
func (s *Cosmos) replaceLedger(ctx context.Context, pk, id, kind string, v any, etag azcore.ETag) (azcore.ETag, error) {
	if etag == "" {
		return "", fmt.Errorf("replace %s %s: no etag", kind, id)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("replace %s %s: %w", kind, id, err)
	}
	resp, err := s.ledger.ReplaceItem(ctx, azcosmos.NewPartitionKeyString(pk), id, b, &azcosmos.ItemOptions{IfMatchEtag: &etag})
	if err != nil {
		return "", fmt.Errorf("replace %s %s: %w", kind, id, mapError(err))
	}
	return resp.ETag, nil
}

// listLedger passes every document of kind in partition pk to each, with
// its ETag.
func (s *Cosmos) listLedger(ctx context.Context, pk, kind string, each func(b []byte, etag azcore.ETag) error) error {
	q := "SELECT * FROM c WHERE c.pk = @pk AND c.kind = @kind"
	_, err := s.query(ctx, s.ledger, pk, q, []azcosmos.QueryParameter{{Name: "@pk", Value: pk}, {Name: "@kind", Value: kind}}, func(b []byte) error {
		var e struct {
			ETag azcore.ETag `json:"_etag"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			return err
		}
		return each(b, e.ETag)
	})
	if err != nil {
		return fmt.Errorf("list %s documents of %q: %w", kind, pk, mapError(err))
	}
	return nil
}

func (m *Memory) getLedger(ctx context.Context, pk, id, kind string, v any) (azcore.ETag, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	it, ok := m.ledger[pk][id]
	m.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("get %s %s: %w", kind, id, ErrNotFound)
	}
	return it.etag, decodeLedger(it.doc, id, kind, v)
}

func (m *Memory) createLedger(ctx context.Context, pk, id, kind string, v any) (azcore.ETag, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ledger[pk][id]; ok {
		return "", fmt.Errorf("create %s %s: %w", kind, id, ErrConflict)
	}
	var etag azcore.ETag
	err := m.putLedger(pk, id, v, &etag)
	return etag, err
}

func (m *Memory) replaceLedger(ctx context.Context, pk, id, kind string, v any, etag azcore.ETag) (azcore.ETag, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if etag == "" {
		return "", fmt.Errorf("replace %s %s: no etag", kind, id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.ledger[pk][id]
	switch {
	case !ok:
		return "", fmt.Errorf("replace %s %s: %w", kind, id, ErrNotFound)
	case it.etag != etag:
		return "", fmt.Errorf("replace %s %s: %w", kind, id, ErrPrecondition)
	}
	var next azcore.ETag
	err := m.putLedger(pk, id, v, &next)
	return next, err
}

func (m *Memory) listLedger(ctx context.Context, pk, kind string, each func(b []byte, etag azcore.ETag) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	var docs []memItem
	for _, it := range m.ledger[pk] {
		var k kindOf
		if err := json.Unmarshal(it.doc, &k); err == nil && k.Kind == kind {
			docs = append(docs, it)
		}
	}
	m.mu.Unlock()
	for _, it := range docs {
		if err := each(it.doc, it.etag); err != nil {
			return fmt.Errorf("list %s documents of %q: %w", kind, pk, err)
		}
	}
	return nil
}

// ledgerRW is what the document kinds below need of a store; *Cosmos and
// *Memory implement it.
type ledgerRW interface {
	getLedger(ctx context.Context, pk, id, kind string, v any) (azcore.ETag, error)
	createLedger(ctx context.Context, pk, id, kind string, v any) (azcore.ETag, error)
	replaceLedger(ctx context.Context, pk, id, kind string, v any, etag azcore.ETag) (azcore.ETag, error)
	listLedger(ctx context.Context, pk, kind string, each func(b []byte, etag azcore.ETag) error) error
}

var (
	_ ledgerRW = (*Cosmos)(nil)
	_ ledgerRW = (*Memory)(nil)
)

// etagged is a ledger document that carries the ETag it was read or
// written with.
type etagged interface {
	etag() azcore.ETag
	setETag(azcore.ETag)
}

func (g *Governor) etag() azcore.ETag     { return g.ETag }
func (g *Governor) setETag(e azcore.ETag) { g.ETag = e }
func (m *Month) etag() azcore.ETag        { return m.ETag }
func (m *Month) setETag(e azcore.ETag)    { m.ETag = e }
func (r *Run) etag() azcore.ETag          { return r.ETag }
func (r *Run) setETag(e azcore.ETag)      { r.ETag = e }

// getDoc reads document id of kind from partition pk, with its ETag.
func getDoc[T any, P interface {
	*T
	etagged
}](ctx context.Context, rw ledgerRW, pk, id, kind string) (P, error) {
	d := P(new(T))
	etag, err := rw.getLedger(ctx, pk, id, kind, d)
	if err != nil {
		return nil, err
	}
	d.setETag(etag)
	return d, nil
}

// putDoc creates d (create) or replaces it with its ETag, and sets the
// new ETag.
func putDoc(ctx context.Context, rw ledgerRW, pk, id, kind string, d etagged, create bool) error {
	var (
		etag azcore.ETag
		err  error
	)
	if create {
		etag, err = rw.createLedger(ctx, pk, id, kind, d)
	} else {
		etag, err = rw.replaceLedger(ctx, pk, id, kind, d, d.etag())
	}
	if err != nil {
		return err
	}
	d.setETag(etag)
	return nil
}
