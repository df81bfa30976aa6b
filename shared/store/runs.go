package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// KindRun is the kind of the ledger documents of on-demand runs.
const KindRun = "run"

// runsPK is the ledger partition of the run documents: runs span scopes,
// so they share one partition of their own (a run is one small document).
const runsPK = "~runs"

// Run is the ledger document of an on-demand ingestion or backfill: what
// was asked and the windows it was split into. Progress is not kept here:
// it is read from the windows' own documents.
type Run struct {
	// ID is the run id ("run-…"); the store sets PK and Kind.
	ID   string `json:"id"`
	PK   string `json:"pk"`
	Kind string `json:"kind"`
	// IdempotencyKey is the caller's key, when one was given: the same key
	// returns this run.
	IdempotencyKey string     `json:"idempotencyKey,omitempty"`
	Request        RunRequest `json:"request"`
	// Windows are the windows the run enqueued, in order.
	Windows []RunWindow `json:"windows"`
	// Enqueued is set once every window's message was sent, so that a
	// request repeated after a failure enqueues what was not.
	Enqueued  bool      `json:"enqueued"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`

	ETag azcore.ETag `json:"-"`
}

// RunRequest is what the caller asked for, after validation.
type RunRequest struct {
	Scopes  []string `json:"scopes"`
	Metrics []string `json:"metrics"`
	From    string   `json:"from"`
	To      string   `json:"to"`
}

// RunWindow is one window of a run.
type RunWindow struct {
	Scope    string `json:"scope"`
	Metric   string `json:"metric"`
	From     string `json:"from"`
	To       string `json:"to"`
	WindowID string `json:"windowId"`
}

func prepareRun(r *Run, now time.Time, create bool) error {
	if !strings.HasPrefix(r.ID, "run-") || strings.ContainsAny(r.ID, `/\?#`) {
		return fmt.Errorf("run id %q: want run-… without / \\ ? #", r.ID)
	}
	r.PK, r.Kind = runsPK, KindRun
	if create && r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	r.UpdatedAt = now
	return nil
}

// GetRun returns the run with id, or ErrNotFound.
func (s *Cosmos) GetRun(ctx context.Context, id string) (*Run, error) { return getRun(ctx, s, id) }

// CreateRun stores a new run and sets r.ETag, or returns ErrConflict when a
// run with its id exists.
func (s *Cosmos) CreateRun(ctx context.Context, r *Run) error { return createRun(ctx, s, r) }

// ReplaceRun replaces the run if r.ETag is current and sets the new ETag;
// otherwise it returns ErrPrecondition.
func (s *Cosmos) ReplaceRun(ctx context.Context, r *Run) error { return replaceRun(ctx, s, r) }

// GetRun is [Cosmos.GetRun] in memory.
func (m *Memory) GetRun(ctx context.Context, id string) (*Run, error) { return getRun(ctx, m, id) }

// CreateRun is [Cosmos.CreateRun] in memory.
func (m *Memory) CreateRun(ctx context.Context, r *Run) error { return createRun(ctx, m, r) }

// ReplaceRun is [Cosmos.ReplaceRun] in memory.
func (m *Memory) ReplaceRun(ctx context.Context, r *Run) error { return replaceRun(ctx, m, r) }

func getRun(ctx context.Context, rw ledgerRW, id string) (*Run, error) {
	return getDoc[Run](ctx, rw, runsPK, id, KindRun)
}

func createRun(ctx context.Context, rw ledgerRW, r *Run) error {
	if err := prepareRun(r, time.Now().UTC(), true); err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	return putDoc(ctx, rw, runsPK, r.ID, KindRun, r, true)
}

func replaceRun(ctx context.Context, rw ledgerRW, r *Run) error {
	if err := prepareRun(r, time.Now().UTC(), false); err != nil {
		return fmt.Errorf("replace run: %w", err)
	}
	return putDoc(ctx, rw, runsPK, r.ID, KindRun, r, false)
}
