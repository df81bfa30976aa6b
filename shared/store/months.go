package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/shopspring/decimal"
)

// KindMonth is the kind of the ledger documents of closing months.
const KindMonth = "month"

// MonthState is where a month of one scope and metric stands in its close.
type MonthState string

// A month is open while it runs; closing from its end until its last
// re-pull (days 1–5 of the next month and once more later, by default) has
// been ingested; final after that.
const (
	MonthOpen    MonthState = "open"
	MonthClosing MonthState = "closing"
	MonthFinal   MonthState = "final"
)

// Month is the ledger document of one month of one scope and metric while
// it closes: the re-pulls planned, each one's result and how much it
// restated.
type Month struct {
	// ID is [MonthID] of Scope, Metric and Month; PK is [LedgerPK] of Scope.
	ID     string `json:"id"`
	PK     string `json:"pk"`
	Kind   string `json:"kind"`
	Scope  string `json:"scope"`
	Metric string `json:"metric"`
	// Month is YYYY-MM.
	Month string     `json:"month"`
	State MonthState `json:"state"`
	// Planned are the close days (YYYY-MM-DD of the next month) whose
	// re-pull has been enqueued, in order; LastPlannedAt is when the latest
	// re-pull was enqueued (a pull of a later generation answers it).
	Planned       []string  `json:"planned"`
	LastPlannedAt time.Time `json:"lastPlannedAt,omitzero"`
	// Pulls are the re-pulls that completed, oldest first.
	Pulls []MonthPull `json:"pulls"`
	// LastDays are the rows and exact totals per day and currency of the
	// latest pull: what the next pull's restatement is measured against.
	LastDays []DayTotal `json:"lastDays"`
	// FinalAt is when the month became final.
	FinalAt   time.Time `json:"finalAt,omitzero"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`

	ETag azcore.ETag `json:"-"`
}

// MonthPull is one completed re-pull of a month.
type MonthPull struct {
	Generation  int64           `json:"generation"`
	CompletedAt time.Time       `json:"completedAt"`
	Rows        int64           `json:"rows"`
	Totals      []CurrencyTotal `json:"totals"`
	// Restatement is what this pull changed against what was there before.
	Restatement Restatement `json:"restatement"`
}

// Restatement measures how much a re-pull changed a month: rows and exact
// totals before and after, per currency, and how many day-currency cells
// and rows differ.
type Restatement struct {
	RowsBefore int64 `json:"rowsBefore"`
	RowsAfter  int64 `json:"rowsAfter"`
	// RowsChanged is the sum over days and currencies of the absolute
	// difference in rows.
	RowsChanged int64 `json:"rowsChanged"`
	// DaysChanged counts the days whose rows or total changed in any currency.
	DaysChanged int           `json:"daysChanged"`
	Totals      []TotalChange `json:"totals"`
}

// TotalChange is the billed total of one currency before and after a re-pull.
type TotalChange struct {
	Currency string          `json:"currency"`
	Before   decimal.Decimal `json:"before"`
	After    decimal.Decimal `json:"after"`
	Delta    decimal.Decimal `json:"delta"`
}

// Changed tells whether the re-pull changed anything.
func (r Restatement) Changed() bool { return r.DaysChanged > 0 }

// Restate compares two sets of day totals of the same days.
func Restate(before, after []DayTotal) Restatement {
	type key struct{ date, currency string }
	b, a := map[key]DayTotal{}, map[key]DayTotal{}
	keys := map[key]bool{}
	for _, d := range before {
		k := key{d.Date, d.Currency}
		x := b[k]
		x.Rows += d.Rows
		x.BilledCost = x.BilledCost.Add(d.BilledCost)
		b[k], keys[k] = x, true
	}
	for _, d := range after {
		k := key{d.Date, d.Currency}
		x := a[k]
		x.Rows += d.Rows
		x.BilledCost = x.BilledCost.Add(d.BilledCost)
		a[k], keys[k] = x, true
	}
	var r Restatement
	changedDays := map[string]bool{}
	totals := map[string]*TotalChange{}
	for k := range keys {
		x, y := b[k], a[k]
		r.RowsBefore += x.Rows
		r.RowsAfter += y.Rows
		diff := y.Rows - x.Rows
		r.RowsChanged += max(diff, -diff)
		if diff != 0 || !x.BilledCost.Equal(y.BilledCost) {
			changedDays[k.date] = true
		}
		t := totals[k.currency]
		if t == nil {
			t = &TotalChange{Currency: k.currency}
			totals[k.currency] = t
		}
		t.Before = t.Before.Add(x.BilledCost)
		t.After = t.After.Add(y.BilledCost)
	}
	r.DaysChanged = len(changedDays)
	for _, t := range totals {
		t.Delta = t.After.Sub(t.Before)
		r.Totals = append(r.Totals, *t)
	}
	slices.SortFunc(r.Totals, func(x, y TotalChange) int { return cmp.Compare(x.Currency, y.Currency) })
	return r
}

// MonthID is the id of the ledger document of a month (YYYY-MM).
func MonthID(scope, metric, month string) string {
	return "month|" + escapeID(strings.ToLower(scope)) + "|" + escapeID(metric) + "|" + escapeID(month)
}

func prepareMonth(m *Month, now time.Time, create bool) error {
	if m.Scope == "" || m.Metric == "" || len(m.Month) != len("2006-01") {
		return fmt.Errorf("month needs scope, metric and month YYYY-MM (got %q, %q, %q)", m.Scope, m.Metric, m.Month)
	}
	m.Scope = strings.ToLower(m.Scope)
	m.ID = MonthID(m.Scope, m.Metric, m.Month)
	m.PK = LedgerPK(m.Scope)
	m.Kind = KindMonth
	if create && m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	m.UpdatedAt = now
	return nil
}

// GetMonth returns the month (YYYY-MM) of scope and metric, or ErrNotFound.
func (s *Cosmos) GetMonth(ctx context.Context, scope, metric, month string) (*Month, error) {
	return getMonth(ctx, s, scope, metric, month)
}

// CreateMonth stores a new month document and sets m.ETag, or returns
// ErrConflict when it exists.
func (s *Cosmos) CreateMonth(ctx context.Context, m *Month) error { return createMonth(ctx, s, m) }

// ReplaceMonth replaces the month document if m.ETag is current and sets
// the new ETag; otherwise it returns ErrPrecondition.
func (s *Cosmos) ReplaceMonth(ctx context.Context, m *Month) error { return replaceMonth(ctx, s, m) }

// ListMonths returns the month documents of scope, ordered by metric and month.
func (s *Cosmos) ListMonths(ctx context.Context, scope string) ([]Month, error) {
	return listMonths(ctx, s, scope)
}

// GetMonth is [Cosmos.GetMonth] in memory.
func (m *Memory) GetMonth(ctx context.Context, scope, metric, month string) (*Month, error) {
	return getMonth(ctx, m, scope, metric, month)
}

// CreateMonth is [Cosmos.CreateMonth] in memory.
func (m *Memory) CreateMonth(ctx context.Context, mo *Month) error { return createMonth(ctx, m, mo) }

// ReplaceMonth is [Cosmos.ReplaceMonth] in memory.
func (m *Memory) ReplaceMonth(ctx context.Context, mo *Month) error { return replaceMonth(ctx, m, mo) }

// ListMonths is [Cosmos.ListMonths] in memory.
func (m *Memory) ListMonths(ctx context.Context, scope string) ([]Month, error) {
	return listMonths(ctx, m, scope)
}

func getMonth(ctx context.Context, rw ledgerRW, scope, metric, month string) (*Month, error) {
	return getDoc[Month](ctx, rw, LedgerPK(scope), MonthID(scope, metric, month), KindMonth)
}

func createMonth(ctx context.Context, rw ledgerRW, m *Month) error {
	if err := prepareMonth(m, time.Now().UTC(), true); err != nil {
		return fmt.Errorf("create month: %w", err)
	}
	return putDoc(ctx, rw, m.PK, m.ID, KindMonth, m, true)
}

func replaceMonth(ctx context.Context, rw ledgerRW, m *Month) error {
	if err := prepareMonth(m, time.Now().UTC(), false); err != nil {
		return fmt.Errorf("replace month: %w", err)
	}
	return putDoc(ctx, rw, m.PK, m.ID, KindMonth, m, false)
}

func listMonths(ctx context.Context, rw ledgerRW, scope string) ([]Month, error) {
	var out []Month
	err := rw.listLedger(ctx, LedgerPK(scope), KindMonth, func(b []byte, etag azcore.ETag) error {
		var m Month
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		m.ETag = etag
		out = append(out, m)
		return nil
	})
	slices.SortFunc(out, func(a, b Month) int { return cmp.Or(cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Month, b.Month)) })
	return out, err
}
