package costcsv

import (
	"encoding/binary"
	"iter"
	"slices"
)

// Raw is every source column of one line: the header's names (BOM and
// surrounding spaces removed) and the line's values verbatim, in file order.
// It shares the header with the other records of its file and holds the
// values as one string, so keeping every column costs no allocation of its
// own; Map builds the map for a consumer that wants one. The zero Raw has no columns.
type Raw struct {
	names []string // the file's header, shared and never modified
	text  string   // the values, each followed by one separator byte
	ends  string   // each value's end in text, 4 bytes little-endian
}

// NewRaw returns the Raw of a line with the given column names and values,
// which must have the same length. It keeps names; the caller must not
// modify it afterwards.
func NewRaw(names, values []string) Raw {
	if len(names) != len(values) {
		panic("costcsv.NewRaw: names and values differ in length")
	}
	var text, ends []byte
	for _, v := range values {
		text = append(text, v...)
		ends = binary.LittleEndian.AppendUint32(ends, uint32(len(text)))
		text = append(text, ',')
	}
	return Raw{names: names, text: string(text), ends: string(ends)}
}

// Len returns the number of columns.
func (r Raw) Len() int { return len(r.ends) / 4 }

// end returns where the i-th value ends in text.
func (r Raw) end(i int) int {
	e := r.ends[4*i : 4*i+4]
	return int(uint32(e[0]) | uint32(e[1])<<8 | uint32(e[2])<<16 | uint32(e[3])<<24)
}

// value returns the i-th value.
func (r Raw) value(i int) string {
	start := 0
	if i > 0 {
		start = r.end(i-1) + 1
	}
	return r.text[start:r.end(i)]
}

// Get returns the value of the column named name (exactly as in the header)
// and whether the line has such a column.
func (r Raw) Get(name string) (string, bool) {
	if i := slices.Index(r.names, name); i >= 0 {
		return r.value(i), true
	}
	return "", false
}

// All yields every column's name and value in file order.
func (r Raw) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i := range r.Len() {
			if !yield(r.names[i], r.value(i)) {
				return
			}
		}
	}
}

// Values returns the values in file order.
func (r Raw) Values() []string {
	out := make([]string, r.Len())
	for i := range out {
		out[i] = r.value(i)
	}
	return out
}

// Map returns a new map of every column's name to its value.
func (r Raw) Map() map[string]string {
	m := make(map[string]string, r.Len())
	for i := range r.Len() {
		m[r.names[i]] = r.value(i)
	}
	return m
}

// MarshalJSON writes the columns as one JSON object in file order.
func (r Raw) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(r.text)+32*r.Len())
	b = append(b, '{')
	for i := range r.Len() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, r.names[i])
		b = append(b, ':')
		b = appendJSONString(b, r.value(i))
	}
	return append(b, '}'), nil
}
