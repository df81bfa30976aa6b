package costcsv

import (
	"encoding/json"
	"fmt"
)

// Tags are a line's resource tags, held as canonical JSON: an object of
// strings, keys sorted, no spaces, strings escaped only where JSON requires.
// A tag whose source value is not a string holds that value's canonical
// JSON text ("2", "true"), and null holds "". The reader checks and
// canonicalises tags without building a map; Map builds one for a consumer
// that wants it. The zero Tags is the empty object.
type Tags struct{ json string }

// Object is a JSON object column (AdditionalInfo, FOCUS x_SkuDetails) held
// as canonical JSON: keys sorted at every level, no spaces, strings escaped
// only where JSON requires, numbers as written. The zero Object is the
// empty object.
type Object struct{ json string }

const emptyObject = "{}"

// NewTags returns the Tags of m.
func NewTags(m map[string]string) Tags {
	return Tags{json: string(appendCanonical(nil, m))}
}

// NewObject returns the Object of m, whose values may be anything
// encoding/json encodes.
func NewObject(m map[string]any) (Object, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return Object{}, err
	}
	var p jsonParser
	if err := p.canonical(string(b), false); err != nil {
		return Object{}, err
	}
	return Object{json: string(p.out)}, nil
}

// MustObject is NewObject for values known to encode, such as literals in
// tests; it panics on an error.
func MustObject(m map[string]any) Object {
	o, err := NewObject(m)
	if err != nil {
		panic(fmt.Sprintf("costcsv.MustObject: %v", err))
	}
	return o
}

// String returns the canonical JSON text.
func (t Tags) String() string { return orEmpty(t.json) }

// String returns the canonical JSON text.
func (o Object) String() string { return orEmpty(o.json) }

// MarshalJSON writes the canonical JSON text.
func (t Tags) MarshalJSON() ([]byte, error) { return []byte(t.String()), nil }

// MarshalJSON writes the canonical JSON text.
func (o Object) MarshalJSON() ([]byte, error) { return []byte(o.String()), nil }

// Map returns a new map of the tags; never nil.
func (t Tags) Map() map[string]string {
	_, m, err := decodeObject(t.String(), false, true)
	if err != nil {
		panic(fmt.Sprintf("costcsv: canonical tags %q do not decode: %v", t.json, err)) // the reader made them
	}
	return m
}

// Map returns a new map of the object, numbers as json.Number so no digit
// is lost; never nil.
func (o Object) Map() map[string]any {
	m, _, err := decodeObject(o.String(), false, false)
	if err != nil {
		panic(fmt.Sprintf("costcsv: canonical object %q does not decode: %v", o.json, err)) // the reader made it
	}
	return m
}

// IsEmpty reports whether the object has no member.
func (o Object) IsEmpty() bool { return o.String() == emptyObject }

// IsEmpty reports whether there is no tag.
func (t Tags) IsEmpty() bool { return t.String() == emptyObject }

func orEmpty(s string) string {
	if s == "" {
		return emptyObject
	}
	return s
}
