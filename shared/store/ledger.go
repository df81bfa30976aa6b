package store

import (
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/shopspring/decimal"
)

// Kinds of ledger documents.
const (
	KindWindow     = "window"
	KindQuarantine = "quarantine"
)

// WindowState is the state of a window in its state machine.
type WindowState string

// The window states, in the order a window normally passes through them.
const (
	StateQueued    WindowState = "queued"
	StateRequested WindowState = "requested"
	StatePolling   WindowState = "polling"
	StateLanded    WindowState = "landed"
	StateIngesting WindowState = "ingesting"
	StateComplete  WindowState = "complete"
	StateFailed    WindowState = "failed"
)

// MaxWindowErrors is how many of the latest errors a window keeps.
const MaxWindowErrors = 10

// Window is the ledger document of one window: a scope, a metric and a range
// of usage days, and where its ingestion stands. Writers replace it with the
// ETag they read (see [Cosmos.ReplaceWindow]), so concurrent writers cannot
// lose each other's updates.
type Window struct {
	// ID is [WindowID] of Scope, Metric, From and To; CreateWindow fills it
	// in when empty.
	ID string `json:"id"`
	// PK is [LedgerPK] of Scope; the store sets it.
	PK     string `json:"pk"`
	Kind   string `json:"kind"`
	Scope  string `json:"scope"`
	Metric string `json:"metric"`
	// From and To are the first and last usage day, YYYY-MM-DD, inclusive.
	From         string      `json:"from"`
	To           string      `json:"to"`
	State        WindowState `json:"state"`
	OperationURL string      `json:"operationUrl,omitempty"`
	Attempts     int         `json:"attempts"`
	Throttles    int         `json:"throttles"`
	// Generation is the generation of the run that owns the window now; see
	// the package documentation for how generations must be chosen (at most
	// MaxGeneration).
	Generation int64 `json:"generation"`
	PartsTotal int   `json:"partsTotal"`
	PartsDone  int   `json:"partsDone"`
	Rows       int64 `json:"rows"`
	// Totals are the exact billed totals per billing currency.
	Totals []CurrencyTotal `json:"totals"`
	// Days are the rows and exact billed totals per day and currency.
	Days []DayTotal `json:"days"`
	// Errors are the latest errors, oldest first, at most MaxWindowErrors.
	Errors      []string  `json:"errors"`
	Quarantined int       `json:"quarantined"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	// SuccessGeneration and LastSuccessAt tell which generation completed
	// last and when: the store sets them whenever a window is written
	// complete with a generation it had not completed before (LastSuccessAt
	// is the UpdatedAt the writer set, by its clock, or the store's time).
	// Rows, Days and Totals belong to that generation until the next one
	// completes.
	SuccessGeneration int64     `json:"successGeneration,omitempty"`
	LastSuccessAt     time.Time `json:"lastSuccessAt,omitzero"`

	// ETag is the version of the document that was read or written last;
	// ReplaceWindow requires it to be current.
	ETag azcore.ETag `json:"-"`
}

// AddError appends msg to w.Errors, keeping the latest MaxWindowErrors.
func (w *Window) AddError(msg string) {
	w.Errors = append(w.Errors, msg)
	w.Errors = lastErrors(w.Errors)
}

// lastErrors returns the latest MaxWindowErrors of errs, in a new slice when
// it has to cut.
func lastErrors(errs []string) []string {
	if len(errs) <= MaxWindowErrors {
		return errs
	}
	return append([]string(nil), errs[len(errs)-MaxWindowErrors:]...)
}

// CurrencyTotal is an exact amount in one currency. The amount is stored as
// a JSON string with every digit.
type CurrencyTotal struct {
	Currency   string          `json:"currency"`
	BilledCost decimal.Decimal `json:"billedCost"`
}

// DayTotal is the number of rows and their exact billed total for one usage
// day in one billing currency.
type DayTotal struct {
	Date       string          `json:"date"`
	Currency   string          `json:"currency"`
	Rows       int64           `json:"rows"`
	BilledCost decimal.Decimal `json:"billedCost"`
}

// Quarantine is the ledger entry for a source line that could not be
// ingested. Its id is [QuarantineID] of window, file and line, so writing it
// again replaces it.
type Quarantine struct {
	// ID and PK are set by the store.
	ID       string `json:"id"`
	PK       string `json:"pk"`
	Kind     string `json:"kind"`
	Scope    string `json:"scope"`
	WindowID string `json:"windowId"`
	File     string `json:"file"`
	// Line is the 1-based physical line; Column names the offending column
	// where one is known.
	Line       int    `json:"line"`
	Column     string `json:"column,omitempty"`
	Reason     string `json:"reason"`
	Generation int64  `json:"generation"`
}
