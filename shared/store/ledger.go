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
	KindPart       = "part"
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
	// PartsGeneration is the generation whose ingestion PartsIn, Days,
	// Rows and Quarantined count; it lags Generation while a newer report
	// is requested but not yet landed.
	PartsGeneration int64 `json:"partsGeneration,omitempty"`
	// PartsIn are the indexes of the parts of PartsGeneration that are
	// stored. The window is finished once it holds every part: recording a
	// part is a conditional replace of this document, so however many
	// parts finish at once, exactly one write completes the set.
	PartsIn []int `json:"partsIn,omitempty"`
	// Rows counts the source records of PartsIn.
	Rows int64 `json:"rows"`
	// Totals are the exact billed totals per billing currency.
	Totals []CurrencyTotal `json:"totals"`
	// Days are the source rows and exact billed totals per day and currency
	// of the parts in PartsIn: once the window is complete, those of the
	// whole report, which the documents in Cosmos DB were checked against.
	Days []DayTotal `json:"days"`
	// Errors are the latest errors, oldest first, at most MaxWindowErrors.
	Errors      []string `json:"errors"`
	Quarantined int      `json:"quarantined"`
	// Poisoned counts the messages of the window that failed every
	// delivery and reached a poison queue.
	Poisoned  int       `json:"poisoned,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
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

// Part is the ledger document of one part of a window's report of one
// generation: how far its ingestion got. Its id is [PartID]; writers
// replace it with the ETag they read.
type Part struct {
	// ID, PK and Kind are set by the store.
	ID         string `json:"id"`
	PK         string `json:"pk"`
	Kind       string `json:"kind"`
	Scope      string `json:"scope"`
	WindowID   string `json:"windowId"`
	Generation int64  `json:"generation"`
	Index      int    `json:"index"`
	Blob       string `json:"blob"`
	// Line is the last physical line of the part whose records are all
	// stored and whose bad lines are quarantined: ingestion resumes after
	// it.
	Line int `json:"line"`
	// Sent is the Line from which a continuation message was sent last;
	// whoever raises it to Line sends the next one.
	Sent int `json:"sent,omitempty"`
	// Done is set once every record is stored and the part's ids are kept
	// for the sweep.
	Done      bool      `json:"done"`
	Rows      int64     `json:"rows"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`

	// ETag is the version read or written last; ReplacePart requires it.
	ETag azcore.ETag `json:"-"`
}
