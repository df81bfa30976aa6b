package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// The ledger documents of runs, months and the rate governor are read and
// written the same way as windows and parts (ledgerops.go): a point read
// returns the document with its ETag, a create fails with ErrConflict when
// the id exists, and a replace needs the ETag that was read
// (ErrPrecondition otherwise). The helpers below add listing by kind and
// typed documents that carry their ETag.

// kindOf reads the kind of a ledger document.
type kindOf struct {
	Kind string `json:"kind"`
}

// listLedger passes every document of kind in partition pk to each, with
// its ETag.
func (s *Cosmos) listLedger(ctx context.Context, pk, kind string, each func(b []byte, etag azcore.ETag) error) error {
	q := "SELECT * FROM c WHERE c.pk = @pk AND c.kind = @kind"
	_, err := s.query(ctx, s.ledger, pk, q, []azcosmos.QueryParameter{{Name: "@pk", Value: pk}, {Name: "@kind", Value: kind}}, 0, func(b []byte) error {
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
	ledgerBackend
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
	etag, err := getLedger(ctx, rw, pk, id, kind, d)
	if err != nil {
		return nil, err
	}
	d.setETag(etag)
	return d, nil
}

// putDoc creates d (create) or replaces it on the condition of its ETag,
// and sets the new ETag.
func putDoc(ctx context.Context, rw ledgerRW, pk, id, kind string, d etagged, create bool) error {
	etag := d.etag()
	switch {
	case create:
		etag = ""
	case etag == "":
		return fmt.Errorf("replace %s %s: no etag", kind, id)
	}
	etag, err := putLedger(ctx, rw, pk, id, kind, d, etag)
	if err != nil {
		return err
	}
	d.setETag(etag)
	return nil
}
