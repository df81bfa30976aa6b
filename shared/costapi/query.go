package costapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// The Query API (cost-apis.md §2): POST {scope}/providers/Microsoft.CostManagement/query
// with a QueryDefinition; the result's properties.nextLink is POSTed again
// with the same body until it is null. The spec does not mark the operation
// pageable, so SDKs stop at the first page: this client does not.

// QueryDefinition is the body of a query.
type QueryDefinition struct {
	// Type is ActualCost, AmortizedCost or Usage.
	Type string `json:"type"`
	// Timeframe is Custom (with TimePeriod), MonthToDate, TheLastMonth, ...
	Timeframe  string           `json:"timeframe"`
	TimePeriod *QueryTimePeriod `json:"timePeriod,omitempty"`
	Dataset    QueryDataset     `json:"dataset"`
}

// QueryTimePeriod is an inclusive range of date-times.
type QueryTimePeriod struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// QueryDataset says what to aggregate, how and over what.
type QueryDataset struct {
	// Granularity is Daily or Monthly; empty aggregates the whole period.
	Granularity string `json:"granularity,omitempty"`
	// Aggregation maps an alias to a column and function, e.g.
	// {"totalCost": {Name: "PreTaxCost", Function: "Sum"}}; at most two.
	Aggregation map[string]QueryAggregation `json:"aggregation,omitempty"`
	// Grouping has at most two clauses.
	Grouping []QueryGrouping `json:"grouping,omitempty"`
	Filter   *QueryFilter    `json:"filter,omitempty"`
}

// QueryAggregation is one aggregated column.
type QueryAggregation struct {
	Name     string `json:"name"`
	Function string `json:"function"`
}

// QueryGrouping groups by a dimension (Type "Dimension", e.g. ResourceGroup,
// MeterCategory) or a tag (Type "TagKey", Name the tag).
type QueryGrouping struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// QueryFilter is one filter expression: exactly one of And (two or more),
// Or (two or more), Dimensions or Tags.
type QueryFilter struct {
	And        []QueryFilter    `json:"and,omitempty"`
	Or         []QueryFilter    `json:"or,omitempty"`
	Dimensions *QueryComparison `json:"dimensions,omitempty"`
	Tags       *QueryComparison `json:"tags,omitempty"`
}

// QueryComparison compares a dimension or tag with values (Operator "In").
type QueryComparison struct {
	Name     string   `json:"name"`
	Operator string   `json:"operator"`
	Values   []string `json:"values"`
}

// Validate applies the spec's rules, so that a bad definition is refused
// with a clear message before any call.
func (d *QueryDefinition) Validate() error {
	switch strings.ToLower(d.Type) {
	case "actualcost", "amortizedcost", "usage":
	default:
		return fmt.Errorf("query type %q: want ActualCost, AmortizedCost or Usage", d.Type)
	}
	if strings.EqualFold(d.Timeframe, "Custom") && d.TimePeriod == nil {
		return fmt.Errorf("query timeframe Custom needs a timePeriod")
	}
	switch strings.ToLower(d.Dataset.Granularity) {
	case "", "none", "daily", "monthly":
	default:
		return fmt.Errorf("query granularity %q: want Daily or Monthly", d.Dataset.Granularity)
	}
	if len(d.Dataset.Aggregation) > 2 {
		return fmt.Errorf("query has %d aggregations: at most 2", len(d.Dataset.Aggregation))
	}
	if len(d.Dataset.Grouping) > 2 {
		return fmt.Errorf("query has %d groupings: at most 2", len(d.Dataset.Grouping))
	}
	return validateFilter(d.Dataset.Filter)
}

func validateFilter(f *QueryFilter) error {
	if f == nil {
		return nil
	}
	n := 0
	for _, set := range []bool{len(f.And) > 0, len(f.Or) > 0, f.Dimensions != nil, f.Tags != nil} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return fmt.Errorf("query filter: each expression needs exactly one of and, or, dimensions, tags")
	case len(f.And) == 1 || len(f.Or) == 1:
		return fmt.Errorf("query filter: and/or need at least 2 expressions")
	}
	for _, sub := range append(slices.Clone(f.And), f.Or...) {
		if err := validateFilter(&sub); err != nil {
			return err
		}
	}
	return nil
}

// DailyCostQuery is the query costsync uses for totals: type metric, the
// days from..to (YYYY-MM-DD, inclusive), Daily, the sum of Cost (billing
// currency), grouped by ResourceGroup.
func DailyCostQuery(metric, from, to string) *QueryDefinition {
	return &QueryDefinition{
		Type:       metric,
		Timeframe:  "Custom",
		TimePeriod: &QueryTimePeriod{From: from + "T00:00:00Z", To: to + "T23:59:59Z"},
		Dataset: QueryDataset{
			Granularity: "Daily",
			Aggregation: map[string]QueryAggregation{"totalCost": {Name: "Cost", Function: "Sum"}},
			Grouping:    []QueryGrouping{{Type: "Dimension", Name: "ResourceGroup"}},
		},
	}
}

// QueryColumn is one result column; Type is Number, String or Datetime.
type QueryColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// QueryPage is one page of a query result.
type QueryPage struct {
	Columns []QueryColumn
	// Rows are the values as sent: numbers as json.Number (every digit),
	// strings, nulls.
	Rows [][]any
	// NextLink is where the next page is POSTed; empty on the last page.
	NextLink string
	// Raw is the page as the service sent it, for landing.
	Raw []byte
	// QPUConsumed and QPURemaining are the query-processing-unit headers
	// (x-ms-ratelimit-microsoft.costmanagement-qpu-consumed, -remaining).
	QPUConsumed  string
	QPURemaining string
}

// QueryOptions tunes a query call; nil means defaults.
type QueryOptions struct {
	// Top asks for at most this many rows per page ($top); 0 leaves the
	// service's page size.
	Top int
}

// Query runs def at scope and returns one page: the first when next is
// empty, else the page at next (a NextLink), to which the same body is
// POSTed again.
func (c *Client) Query(ctx context.Context, scope Scope, def *QueryDefinition, next string, o *QueryOptions) (*QueryPage, error) {
	if err := def.Validate(); err != nil {
		return nil, &Error{Op: "query", Scope: scope, Message: err.Error()}
	}
	body, err := json.Marshal(def)
	if err != nil {
		return nil, err
	}
	link := next
	if link == "" {
		q := url.Values{"api-version": {APIVersion}}
		if o != nil && o.Top > 0 {
			q.Set("$top", strconv.Itoa(o.Top))
		}
		link = c.armURL(scope, "/providers/Microsoft.CostManagement/query", q)
	}
	resp, b, err := c.call(ctx, "query", scope, http.MethodPost, link, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNoContent {
		return &QueryPage{Raw: []byte(`{"properties":{"nextLink":null,"columns":[],"rows":[]}}`)}, nil
	}
	page, err := DecodeQueryPage(b)
	if err != nil {
		return nil, &Error{Op: "query", Scope: scope, Err: err}
	}
	page.QPUConsumed = resp.Header.Get("x-ms-ratelimit-microsoft.costmanagement-qpu-consumed")
	page.QPURemaining = resp.Header.Get("x-ms-ratelimit-microsoft.costmanagement-qpu-remaining")
	if page.NextLink != "" {
		if err := c.checkLink("query", page.NextLink, false); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// DecodeQueryPage reads a QueryResult body (as the service sent it, or as
// landed). Numbers keep every digit.
func DecodeQueryPage(b []byte) (*QueryPage, error) {
	var res struct {
		Properties struct {
			NextLink *string       `json:"nextLink"`
			Columns  []QueryColumn `json:"columns"`
			Rows     [][]any       `json:"rows"`
		} `json:"properties"`
	}
	if err := decodeExact(b, &res); err != nil {
		return nil, fmt.Errorf("decode query result: %w", err)
	}
	p := &QueryPage{Columns: res.Properties.Columns, Rows: res.Properties.Rows, Raw: b}
	if res.Properties.NextLink != nil {
		p.NextLink = *res.Properties.NextLink
	}
	for i, r := range p.Rows {
		if len(r) != len(p.Columns) {
			return nil, fmt.Errorf("decode query result: row %d has %d values for %d columns", i+1, len(r), len(p.Columns))
		}
	}
	return p, nil
}

// QueryRow is one result row, typed.
type QueryRow struct {
	// Date is the row's day (UsageDate) or month start (BillingMonth) as
	// YYYY-MM-DD; empty without granularity.
	Date     string
	Currency string
	// Values are the Number columns, exact.
	Values map[string]decimal.Decimal
	// Dimensions are the other columns (groups), as text.
	Dimensions map[string]string
}

// TypedRows turns the page's rows into QueryRows: a numeric UsageDate
// (20240131) or a BillingMonth date-time becomes a date; numbers become
// exact decimals. A value of the wrong type is an error naming its row and
// column.
func (p *QueryPage) TypedRows() ([]QueryRow, error) {
	out := make([]QueryRow, 0, len(p.Rows))
	for i, r := range p.Rows {
		row := QueryRow{Values: map[string]decimal.Decimal{}, Dimensions: map[string]string{}}
		for j, col := range p.Columns {
			v := r[j]
			bad := func(format string, args ...any) error {
				return fmt.Errorf("query row %d column %s: %s", i+1, col.Name, fmt.Sprintf(format, args...))
			}
			switch {
			case strings.EqualFold(col.Name, "UsageDate"):
				d, err := usageDate(v)
				if err != nil {
					return nil, bad("%v", err)
				}
				row.Date = d
			case strings.EqualFold(col.Name, "BillingMonth"):
				s, _ := v.(string)
				t, err := parseDateTime(s)
				if err != nil {
					return nil, bad("billing month %v: %v", v, err)
				}
				row.Date = t.Format(time.DateOnly)
			case strings.EqualFold(col.Name, "Currency"):
				s, _ := v.(string)
				row.Currency = s
			case strings.EqualFold(col.Type, "Number"):
				n, ok := v.(json.Number)
				if !ok {
					if v == nil {
						continue
					}
					return nil, bad("%v is not a number", v)
				}
				d, err := decimal.NewFromString(n.String())
				if err != nil {
					return nil, bad("%v", err)
				}
				row.Values[col.Name] = d
			default:
				switch s := v.(type) {
				case nil:
					row.Dimensions[col.Name] = ""
				case string:
					row.Dimensions[col.Name] = s
				default:
					row.Dimensions[col.Name] = fmt.Sprint(s)
				}
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// usageDate reads a UsageDate: a number yyyyMMdd (20240131), or its text.
func usageDate(v any) (string, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return "", fmt.Errorf("usage date %v is not a number", v)
	}
	t, err := time.Parse("20060102", s)
	if err != nil {
		return "", fmt.Errorf("usage date %q is not yyyyMMdd", s)
	}
	return t.Format(time.DateOnly), nil
}

// parseDateTime reads the service's date-times, with or without a zone.
func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date-time", s)
}

// QueryAll runs def to its last page and returns every row with the pages'
// count. Pages whose link repeats end the loop with an error rather than
// looping forever.
func (c *Client) QueryAll(ctx context.Context, scope Scope, def *QueryDefinition, o *QueryOptions) ([]QueryRow, int, error) {
	var rows []QueryRow
	seen := map[string]bool{}
	next, pages := "", 0
	for {
		p, err := c.Query(ctx, scope, def, next, o)
		if err != nil {
			return nil, pages, err
		}
		pages++
		r, err := p.TypedRows()
		if err != nil {
			return nil, pages, &Error{Op: "query", Scope: scope, Err: err}
		}
		rows = append(rows, r...)
		if p.NextLink == "" {
			return rows, pages, nil
		}
		if seen[p.NextLink] {
			return nil, pages, &Error{Op: "query", Scope: scope, Message: fmt.Sprintf("nextLink of page %d repeats an earlier one", pages)}
		}
		seen[p.NextLink] = true
		next = p.NextLink
	}
}

// DayTotal is a day's total cost in one currency, as Query computes it.
type DayTotal struct {
	Date     string
	Currency string
	Cost     decimal.Decimal
}

// QueryTotals returns the cost of scope per day and billing currency over
// from..to (YYYY-MM-DD, inclusive) for metric (ActualCost, AmortizedCost),
// summed over every page of a Daily query (DailyCostQuery), ordered by day
// and currency. `costsync verify` compares it with the documents a window
// stored. Query's numbers are the service's: it rounds them, so a caller
// comparing with exact Cost Details totals should allow for that.
func (c *Client) QueryTotals(ctx context.Context, scope Scope, metric, from, to string) ([]DayTotal, error) {
	rows, _, err := c.QueryAll(ctx, scope, DailyCostQuery(metric, from, to), nil)
	if err != nil {
		return nil, err
	}
	return SumQueryRows(rows, "Cost"), nil
}

// SumQueryRows sums the value column of rows per day and currency, ordered
// by day and currency.
func SumQueryRows(rows []QueryRow, column string) []DayTotal {
	sums := map[[2]string]decimal.Decimal{}
	for _, r := range rows {
		k := [2]string{r.Date, r.Currency}
		sums[k] = sums[k].Add(r.Values[column])
	}
	out := make([]DayTotal, 0, len(sums))
	for k, v := range sums {
		out = append(out, DayTotal{Date: k[0], Currency: k[1], Cost: v})
	}
	slices.SortFunc(out, func(a, b DayTotal) int {
		return strings.Compare(a.Date+" "+a.Currency, b.Date+" "+b.Currency)
	})
	return out
}
