package handlers

import (
	"context"
	"time"

	"github.com/costsync/costsync/shared/store"
)

// Ledger is what planning, runs, status and the rate governor need of the
// ledger, beyond the windows.
type Ledger interface {
	ListWindows(ctx context.Context, scope string) ([]store.Window, error)
	GetMonth(ctx context.Context, scope, metric, month string) (*store.Month, error)
	CreateMonth(ctx context.Context, m *store.Month) error
	ReplaceMonth(ctx context.Context, m *store.Month) error
	ListMonths(ctx context.Context, scope string) ([]store.Month, error)
	GetRun(ctx context.Context, id string) (*store.Run, error)
	CreateRun(ctx context.Context, r *store.Run) error
	ReplaceRun(ctx context.Context, r *store.Run) error
	Acquire(ctx context.Context, buckets []store.Bucket, ticket string, now time.Time, o *store.AcquireOptions) (store.Grant, error)
}
