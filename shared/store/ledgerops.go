package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// ledgerBackend is what the ledger operations need of a store: point reads
// and conditional writes of one document. Errors wrap ErrNotFound,
// ErrConflict and ErrPrecondition. Cosmos and Memory implement it.
type ledgerBackend interface {
	readLedger(ctx context.Context, pk, id string) ([]byte, azcore.ETag, error)
	createLedger(ctx context.Context, pk string, doc []byte) (azcore.ETag, error)
	// replaceLedger replaces document id if its ETag is still etag.
	replaceLedger(ctx context.Context, pk, id string, doc []byte, etag azcore.ETag) (azcore.ETag, error)
}

// getLedger reads document id of partition pk into v, checks its kind and
// returns its ETag.
func getLedger(ctx context.Context, b ledgerBackend, pk, id, kind string, v any) (azcore.ETag, error) {
	raw, etag, err := b.readLedger(ctx, pk, id)
	if err != nil {
		return "", fmt.Errorf("get %s %s: %w", kind, id, err)
	}
	var k struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", fmt.Errorf("get %s %s: %w", kind, id, err)
	}
	if k.Kind != kind {
		return "", fmt.Errorf("get %s %s: document is of kind %q", kind, id, k.Kind)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return "", fmt.Errorf("get %s %s: %w", kind, id, err)
	}
	return etag, nil
}

// putLedger creates v (etag empty) or replaces it on the condition that
// etag is current, and returns the new ETag.
func putLedger(ctx context.Context, b ledgerBackend, pk, id, kind string, v any, etag azcore.ETag) (azcore.ETag, error) {
	doc, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("write %s %s: %w", kind, id, err)
	}
	if etag == "" {
		etag, err = b.createLedger(ctx, pk, doc)
		if err != nil {
			return "", fmt.Errorf("create %s %s: %w", kind, id, err)
		}
		return etag, nil
	}
	etag, err = b.replaceLedger(ctx, pk, id, doc, etag)
	if err != nil {
		return "", fmt.Errorf("replace %s %s: %w", kind, id, err)
	}
	return etag, nil
}

func getWindow(ctx context.Context, b ledgerBackend, scope, id string) (*Window, error) {
	w := &Window{}
	etag, err := getLedger(ctx, b, LedgerPK(scope), id, KindWindow, w)
	if err != nil {
		return nil, err
	}
	w.ETag = etag
	return w, nil
}

func createWindow(ctx context.Context, b ledgerBackend, w *Window) error {
	if err := prepareWindow(w, time.Now().UTC(), true); err != nil {
		return fmt.Errorf("create window: %w", err)
	}
	etag, err := putLedger(ctx, b, w.PK, w.ID, KindWindow, w, "")
	if err != nil {
		return err
	}
	w.ETag = etag
	return nil
}

func replaceWindow(ctx context.Context, b ledgerBackend, w *Window) error {
	if w.ETag == "" {
		return fmt.Errorf("replace window %s: no etag", w.ID)
	}
	if err := prepareWindow(w, time.Now().UTC(), false); err != nil {
		return fmt.Errorf("replace window: %w", err)
	}
	etag, err := putLedger(ctx, b, w.PK, w.ID, KindWindow, w, w.ETag)
	if err != nil {
		return err
	}
	w.ETag = etag
	return nil
}

func getPart(ctx context.Context, b ledgerBackend, scope, id string) (*Part, error) {
	p := &Part{}
	etag, err := getLedger(ctx, b, LedgerPK(scope), id, KindPart, p)
	if err != nil {
		return nil, err
	}
	p.ETag = etag
	return p, nil
}

// putPart creates p (no ETag) or replaces it (its ETag current).
func putPart(ctx context.Context, b ledgerBackend, p *Part) error {
	if p.Scope == "" || p.WindowID == "" || p.Generation <= 0 || p.Index < 0 {
		return fmt.Errorf("put part: needs scope, windowId, a generation and an index (got %q, %q, %d, %d)", p.Scope, p.WindowID, p.Generation, p.Index)
	}
	now := time.Now().UTC()
	p.ID = PartID(p.WindowID, p.Generation, p.Index)
	p.PK = LedgerPK(p.Scope)
	p.Scope = p.PK
	p.Kind = KindPart
	if p.ETag == "" && p.CreatedAt.IsZero() {
		p.CreatedAt = now
	}
	p.UpdatedAt = now
	etag, err := putLedger(ctx, b, p.PK, p.ID, KindPart, p, p.ETag)
	if err != nil {
		return err
	}
	p.ETag = etag
	return nil
}
