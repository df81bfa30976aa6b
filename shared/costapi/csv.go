package costapi

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"slices"
)

// Usage details and usage aggregates are landed as CSV parts with the API's
// property names as header, so that one parser (costcsv) reads every
// source: usage details are recognised as the EA (legacy kind) or MCA
// (modern kind) layout; usage aggregates by costcsv.NewUsageReader. Every
// property is kept: values are written as the service sent them (strings
// unquoted, numbers with every digit, objects as compact JSON, null as an
// empty cell).

// WriteCSV writes the page's records as CSV: id, name, kind, tags (the
// record's tags as a JSON object), then every property name that occurs on
// the page, sorted. A page without records writes nothing.
func (p *UsageDetailsPage) WriteCSV(w io.Writer) error {
	rows := make([]map[string]string, len(p.Records))
	for i, r := range p.Records {
		row := map[string]string{}
		for k, v := range r.Properties {
			row[k] = jsonText(v)
		}
		row["id"], row["name"], row["kind"] = r.ID, r.Name, r.Kind
		if len(r.Tags) > 0 {
			b, err := json.Marshal(r.Tags)
			if err != nil {
				return err
			}
			row["tags"] = string(b)
		}
		rows[i] = row
	}
	return writeRows(w, []string{"id", "name", "kind", "tags"}, rows)
}

// WriteCSV writes the page's records as CSV: id, name, then every property
// name that occurs on the page, sorted. A page without records writes
// nothing.
func (p *UsageAggregatesPage) WriteCSV(w io.Writer) error {
	rows := make([]map[string]string, len(p.Records))
	for i, r := range p.Records {
		row := map[string]string{}
		for k, v := range r.Properties {
			row[k] = jsonText(v)
		}
		row["id"], row["name"] = r.ID, r.Name
		rows[i] = row
	}
	return writeRows(w, []string{"id", "name"}, rows)
}

// writeRows writes rows under first followed by the other keys, sorted.
func writeRows(w io.Writer, first []string, rows []map[string]string) error {
	if len(rows) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, k := range first {
		seen[k] = true
	}
	var rest []string
	for _, r := range rows {
		for k := range r {
			if !seen[k] {
				seen[k] = true
				rest = append(rest, k)
			}
		}
	}
	slices.Sort(rest)
	header := append(slices.Clone(first), rest...)
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	rec := make([]string, len(header))
	for _, r := range rows {
		for i, k := range header {
			rec[i] = r[k]
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
