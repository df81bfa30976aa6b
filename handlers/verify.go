package handlers

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// QueryTotaler is what Verify needs of Cost Management; *costapi.Client
// implements it.
type QueryTotaler interface {
	QueryTotals(ctx context.Context, scope costapi.Scope, metric, from, to string) ([]costapi.DayTotal, error)
}

// WindowCounter is what Verify needs of the store.
type WindowCounter interface {
	CountWindow(ctx context.Context, scope, metric string, dates []string) ([]store.DayTotal, error)
}

// VerifiedDay is one day and currency of a window: the exact total of the
// stored documents next to the Query API's total.
type VerifiedDay struct {
	Date, Currency string
	StoredRows     int64
	Stored         decimal.Decimal
	Query          decimal.Decimal
}

// Difference is Stored − Query.
func (d VerifiedDay) Difference() decimal.Decimal { return d.Stored.Sub(d.Query) }

// Verify compares the cost documents of window w (scope, metric, days) with
// the Query API's daily totals for the same scope, metric and days, per day
// and currency (`costsync verify`). Query rounds its numbers, so the caller
// decides which difference is acceptable; a day or currency only one side
// has shows with zero on the other.
func Verify(ctx context.Context, q QueryTotaler, st WindowCounter, w window.Window) ([]VerifiedDay, error) {
	scope, err := costapi.ParseScope(w.Scope)
	if err != nil {
		return nil, err
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	stored, err := st.CountWindow(ctx, w.Scope, w.Metric, w.Days())
	if err != nil {
		return nil, fmt.Errorf("verify %s %s..%s: count stored documents: %w", w.Scope, w.From, w.To, err)
	}
	totals, err := q.QueryTotals(ctx, scope, w.Metric, w.From, w.To)
	if err != nil {
		return nil, fmt.Errorf("verify %s %s..%s: query totals: %w", w.Scope, w.From, w.To, err)
	}
	byKey := map[[2]string]*VerifiedDay{}
	get := func(date, cur string) *VerifiedDay {
		k := [2]string{date, cur}
		if d := byKey[k]; d != nil {
			return d
		}
		d := &VerifiedDay{Date: date, Currency: cur}
		byKey[k] = d
		return d
	}
	for _, s := range stored {
		if s.Rows == 0 {
			continue
		}
		d := get(s.Date, s.Currency)
		d.StoredRows, d.Stored = s.Rows, s.BilledCost
	}
	for _, t := range totals {
		get(t.Date, t.Currency).Query = t.Cost
	}
	out := make([]VerifiedDay, 0, len(byKey))
	for _, d := range byKey {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b VerifiedDay) int {
		return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.Currency, b.Currency))
	})
	return out, nil
}
