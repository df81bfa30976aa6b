// Package store keeps costsync's copy of the cost data and its ledger in
// Cosmos DB, with an in-memory fake that behaves the same way.
//
// Two containers live in one database (default "costsync"):
//
//   - costs, partitioned by /pk = "{scope}|{metric}|{date}": one [Cost]
//     document per source line. A day of one scope and metric is the unit a
//     restatement replaces, so a sweep is a handful of single-partition
//     queries.
//   - ledger, partitioned by /pk = "{scope}": the [Window] state documents
//     and [Quarantine] entries, told apart by their "kind" field.
//
// Scopes are ARM ids and compared case-insensitively: every key the store
// builds lower-cases the scope. Ids never contain the characters Cosmos DB
// refuses in an id ('/', '\', '?', '#'): [WindowID] and [QuarantineID]
// escape them.
//
// Generations: every cost document carries the generation of the run that
// last changed its content. A run writes only new ids and changed content (a
// [CostWriter] reads what is stored first), so re-ingesting an unchanged
// report writes nothing and an unchanged line keeps the generation that
// wrote it. Once every part of a run is in, [Cosmos.SweepDay] deletes, day
// by day, the documents an older generation wrote whose ids the run did not
// report. Documents of a newer generation are never overwritten nor swept by
// an older one. Two windows can cover the same day (the trailing days and
// the closing month overlap), so a generation must be distinct across every
// run that can write the same day, not only within one window; the run's
// start time in Unix milliseconds or microseconds is a good choice. Cosmos
// DB stores numbers as float64, so a generation must lie in [0, 2^53]
// ([MaxGeneration]); Unix nanoseconds do not fit.
//
// Databases and containers are created only by [Cosmos.Provision], an
// explicit step run with control-plane rights (costsync init, or the
// deployment template does the same): Cosmos DB data-plane RBAC, which the
// function app runs with, cannot create them.
package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// MaxGeneration is the largest generation Cosmos DB stores exactly (2^53).
const MaxGeneration = 1 << 53

// Names of the database and containers.
const (
	DefaultDatabase = "costsync"
	CostsContainer  = "costs"
	LedgerContainer = "ledger"
)

// Errors the store returns, wrapping the underlying error; test with errors.Is.
var (
	// ErrNotFound reports a missing document (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrConflict reports a document that already exists (HTTP 409).
	ErrConflict = errors.New("conflict")
	// ErrPrecondition reports an ETag that no longer matches: someone else
	// wrote the document first (HTTP 412).
	ErrPrecondition = errors.New("precondition failed")
)

// WriteStats counts what a [CostWriter] did with each document: Written +
// Skipped + Stale equals the number of documents given.
type WriteStats struct {
	// Written counts documents written whole: new ids and changed content.
	Written int
	// Skipped counts documents already stored with the same content hash,
	// whatever generation stored them: nothing was written.
	Skipped int
	// Stale counts documents not written because a newer generation had
	// already stored the same id: an older report never overwrites a newer
	// one.
	Stale int
	// RequestCharge is the sum of the request units of every call made,
	// the reads of what is stored included.
	RequestCharge float64
}

// Add folds o into s.
func (s *WriteStats) Add(o WriteStats) {
	s.Written += o.Written
	s.Skipped += o.Skipped
	s.Stale += o.Stale
	s.RequestCharge += o.RequestCharge
}

// CostPK is the partition key of the cost documents of one scope, metric and
// usage day (YYYY-MM-DD).
func CostPK(scope, metric, date string) string {
	return strings.ToLower(scope) + "|" + metric + "|" + date
}

// LedgerPK is the partition key of the ledger documents of one scope.
func LedgerPK(scope string) string {
	return strings.ToLower(scope)
}

// WindowID is the id of the ledger document of a window: from and to are
// YYYY-MM-DD, to inclusive.
func WindowID(scope, metric, from, to string) string {
	return boundedID("window|" + escapeID(strings.ToLower(scope)) + "|" + escapeID(metric) + "|" +
		escapeID(from) + "|" + escapeID(to))
}

// QuarantineID is the id of the quarantine entry for one line of one file
// of a window, so that quarantining the same line again replaces the entry.
func QuarantineID(windowID, file string, line int) string {
	return boundedID(windowID + "|" + escapeID(file) + "|" + strconv.Itoa(line))
}

// PartID is the id of the checkpoint of part index of a window's report of
// one generation.
func PartID(windowID string, generation int64, index int) string {
	return boundedID("part|" + escapeID(windowID) + "|" + strconv.FormatInt(generation, 10) + "|" + strconv.Itoa(index))
}

// maxIDLength is the longest id Cosmos DB accepts (255 characters).
const maxIDLength = 255

// boundedID returns id when Cosmos DB accepts its length, else its first
// 200 characters, '~' and 32 hex digits of its SHA-256: scopes of invoice
// sections and report file names make ids longer than 255 characters.
func boundedID(id string) string {
	if len(id) <= maxIDLength {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:200] + "~" + hex.EncodeToString(sum[:16])
}

// idEscaper replaces the characters Cosmos DB refuses in ids, and the '|'
// that separates key parts, with '~' sequences; '~' itself is doubled, so
// the mapping is injective.
var idEscaper = strings.NewReplacer(
	"~", "~~",
	"/", "~s",
	`\`, "~b",
	"?", "~q",
	"#", "~h",
	"|", "~p",
)

func escapeID(s string) string { return idEscaper.Replace(s) }

// mapError turns a Cosmos status code into one of the store's errors,
// wrapping the original so that callers can still inspect it. ErrorCode of a
// Cosmos ResponseError is only the status text, so the status code decides.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	switch re.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case http.StatusConflict:
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %w", ErrPrecondition, err)
	}
	return err
}
