package store

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// action is what a CostWriter does with one document.
type action int

const (
	actionWrite action = iota // write the whole document
	actionSkip                // the same content is stored
	actionStale               // a newer generation stored the id
)

// decide chooses what to do with doc, given what is stored under its id
// (old, when stored is true):
//
//   - nothing stored, or different content of the same or an older
//     generation: write it whole;
//   - a newer generation stored it: leave it, an older report must never
//     overwrite a newer one;
//   - the same content: skip it, whatever generation wrote it. The stored
//     document keeps that generation, and the window, file and line it was
//     written with; the sweep keeps it because the new run reports its id.
func decide(old storedCost, stored bool, doc *Cost) action {
	switch {
	case !stored:
		return actionWrite
	case old.gen > doc.Generation:
		return actionStale
	case old.hash == KeyOf(doc.ContentHash):
		return actionSkip
	default:
		return actionWrite
	}
}

// group is the documents of one partition, in input order.
type group struct {
	pk   string
	docs []*Cost
}

// groupCosts validates docs and groups them by partition key, in the order
// each partition first appears.
func groupCosts(docs []Cost) ([]group, error) {
	index := map[string]int{}
	seen := map[string]bool{}
	var groups []group
	for i := range docs {
		d := &docs[i]
		if d.ID == "" || d.PK == "" {
			return nil, fmt.Errorf("cost %d (%s line %d): empty id or pk", i, d.File, d.Line)
		}
		if d.Generation < 0 || d.Generation > MaxGeneration {
			return nil, fmt.Errorf("cost %s (%s line %d): generation %d outside [0, 2^53]", d.ID, d.File, d.Line, d.Generation)
		}
		if want := CostPK(d.Scope, d.Metric, d.Date); d.PK != want {
			return nil, fmt.Errorf("cost %s (%s line %d): pk %q, want %q", d.ID, d.File, d.Line, d.PK, want)
		}
		key := d.PK + "\x00" + d.ID
		if seen[key] {
			return nil, fmt.Errorf("cost %s in %s: id given twice in one batch (%s line %d)", d.ID, d.PK, d.File, d.Line)
		}
		seen[key] = true
		g, ok := index[d.PK]
		if !ok {
			g = len(groups)
			index[d.PK] = g
			groups = append(groups, group{pk: d.PK})
		}
		groups[g].docs = append(groups[g].docs, d)
	}
	return groups, nil
}

// tally sums rows and exact billed cost per currency for one day.
type tally struct {
	date   string
	totals map[string]*DayTotal
}

func newTally(date string) *tally {
	return &tally{date: date, totals: map[string]*DayTotal{}}
}

func (t *tally) add(a *CostSummary) error {
	v, err := decimal.NewFromString(a.BilledCostExact)
	if err != nil {
		return fmt.Errorf("billedCostExact %q on %s: %w", a.BilledCostExact, t.date, err)
	}
	d := t.totals[a.BillingCurrency]
	if d == nil {
		d = &DayTotal{Date: t.date, Currency: a.BillingCurrency}
		t.totals[a.BillingCurrency] = d
	}
	d.Rows++
	d.BilledCost = d.BilledCost.Add(v)
	return nil
}

// result returns the totals by currency.
func (t *tally) result() []DayTotal {
	out := make([]DayTotal, 0, len(t.totals))
	for _, d := range t.totals {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DayTotal) int { return cmp.Compare(a.Currency, b.Currency) })
	return out
}

// uniqueDates returns dates sorted without duplicates.
func uniqueDates(dates []string) []string {
	out := slices.Clone(dates)
	slices.Sort(out)
	return slices.Compact(out)
}

// prepareWindow checks w and sets the fields the store owns.
func prepareWindow(w *Window, now time.Time, create bool) error {
	if w.Scope == "" || w.Metric == "" || w.From == "" || w.To == "" {
		return fmt.Errorf("window needs scope, metric, from and to (got %q, %q, %q, %q)", w.Scope, w.Metric, w.From, w.To)
	}
	w.Scope = strings.ToLower(w.Scope)
	if w.ID == "" {
		w.ID = WindowID(w.Scope, w.Metric, w.From, w.To)
	}
	w.PK = LedgerPK(w.Scope)
	w.Kind = KindWindow
	w.Errors = lastErrors(w.Errors)
	if create && w.CreatedAt.IsZero() {
		w.CreatedAt = now
	}
	if w.State == StateComplete && w.SuccessGeneration != w.Generation {
		// The writer's clock, when it set one, so that a success compares
		// with the generations it chose.
		w.SuccessGeneration, w.LastSuccessAt = w.Generation, cmp.Or(w.UpdatedAt, now)
	}
	w.UpdatedAt = now
	return nil
}

// prepareQuarantine checks q and sets the fields the store owns.
func prepareQuarantine(q *Quarantine) error {
	if q.Scope == "" || q.WindowID == "" || q.File == "" {
		return fmt.Errorf("quarantine needs scope, windowId and file (got %q, %q, %q)", q.Scope, q.WindowID, q.File)
	}
	q.Scope = strings.ToLower(q.Scope)
	q.ID = QuarantineID(q.WindowID, q.File, q.Line)
	q.PK = LedgerPK(q.Scope)
	q.Kind = KindQuarantine
	return nil
}

// sortWindows orders windows by scope, metric, from and to.
func sortWindows(ws []Window) {
	slices.SortFunc(ws, func(a, b Window) int {
		return cmp.Or(
			cmp.Compare(a.Scope, b.Scope),
			cmp.Compare(a.Metric, b.Metric),
			cmp.Compare(a.From, b.From),
			cmp.Compare(a.To, b.To),
		)
	})
}

// sortQuarantine orders entries by window, file and line.
func sortQuarantine(qs []Quarantine) {
	slices.SortFunc(qs, func(a, b Quarantine) int {
		return cmp.Or(
			cmp.Compare(a.WindowID, b.WindowID),
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
		)
	})
}
