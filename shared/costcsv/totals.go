package costcsv

import (
	"cmp"
	"slices"

	"github.com/shopspring/decimal"
)

// Totals sums accepted records exactly, per usage day and billing currency.
// The zero value is ready to use. A Totals is not safe for concurrent use.
type Totals struct {
	rows  int
	byKey map[dayCurrency]*DayTotal
}

type dayCurrency struct{ date, currency string }

// DayTotal is the row count and exact cost sums of one usage day in one
// billing currency.
type DayTotal struct {
	Date          string // YYYY-MM-DD
	Currency      string // billing currency; empty for a file without one
	Rows          int
	BilledCost    decimal.Decimal
	EffectiveCost decimal.Decimal
}

// Add counts rec and adds its costs.
func (t *Totals) Add(rec *Record) {
	if t.byKey == nil {
		t.byKey = map[dayCurrency]*DayTotal{}
	}
	k := dayCurrency{rec.Date, rec.BillingCurrency}
	d := t.byKey[k]
	if d == nil {
		d = &DayTotal{Date: rec.Date, Currency: rec.BillingCurrency}
		t.byKey[k] = d
	}
	d.Rows++
	d.BilledCost = d.BilledCost.Add(rec.BilledCost)
	d.EffectiveCost = d.EffectiveCost.Add(rec.EffectiveCost)
	t.rows++
}

// Rows returns the number of records added.
func (t *Totals) Rows() int { return t.rows }

// ByDayCurrency returns one total per usage day and currency, sorted by date
// then currency.
func (t *Totals) ByDayCurrency() []DayTotal {
	out := make([]DayTotal, 0, len(t.byKey))
	for _, d := range t.byKey {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DayTotal) int {
		return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.Currency, b.Currency))
	})
	return out
}
