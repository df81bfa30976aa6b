package costcsv

import (
	"fmt"
	"strings"
)

// LineError is a data line the reader could not accept. The reader has
// already moved past it: quarantine it and call Next again.
type LineError struct {
	File   string
	Line   int    // 1-based physical line where the record starts (header = 1)
	Column string // header name of the offending column; empty when the line has too many fields
	Reason string
	// Fields are the line's values as read (partial when the CSV itself is
	// malformed), for the quarantine entry.
	Fields []string
}

// Error returns "file F line L column C: reason".
func (e *LineError) Error() string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "file %s ", e.File)
	}
	fmt.Fprintf(&b, "line %d", e.Line)
	if e.Column != "" {
		fmt.Fprintf(&b, " column %s", e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// HeaderError is a header the reader does not recognise, or cannot read as
// one (an empty file, duplicate column names).
type HeaderError struct {
	File string
	// Missing names the required columns absent for the schema that came
	// closest; each entry lists the names accepted for one column
	// ("costinbillingcurrency or cost"). Names are matched case-insensitively.
	Missing []string
	// Tried lists, per schema tried, what was missing.
	Tried []SchemaMissing
	// Reason is set instead of Missing when the header could not be read as
	// a list of column names.
	Reason string
}

// SchemaMissing is what a header lacks to be read as one schema.
type SchemaMissing struct {
	Schema  Schema
	Missing []string
}

// Error names the file and what each schema tried was missing.
func (e *HeaderError) Error() string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "file %s: ", e.File)
	}
	if e.Reason != "" {
		b.WriteString("header: ")
		b.WriteString(e.Reason)
		return b.String()
	}
	b.WriteString("unrecognised header")
	for i, t := range e.Tried {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: missing %s", t.Schema, strings.Join(t.Missing, ", "))
	}
	return b.String()
}
