// Package logscan searches logs for secrets that must never be logged:
// bearer tokens (the JWTs costsim's identity endpoint mints, as Entra ID's
// do), SAS signatures (sig=, also URL- or JSON-escaped) and Authorization
// headers. The end-to-end test and make chaos run it over every log of the
// local stack: the handler's (inside devhost's), devhost's, costsim's and
// the emulators'.
package logscan

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Leak is one secret found in a log line.
type Leak struct {
	File string
	Line int
	Kind string
	// Excerpt shows where, with the secret itself cut short.
	Excerpt string
}

func (l Leak) String() string { return fmt.Sprintf("%s:%d: %s: %s", l.File, l.Line, l.Kind, l.Excerpt) }

var patterns = []struct {
	kind string
	re   *regexp.Regexp
	// ok tells a match that is not a secret (a redacted value).
	ok func(match string) bool
}{
	{"bearer token (JWT)", regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`), nil},
	{"SAS signature", regexp.MustCompile(`(?i)sig(?:=|%3d|\\u003d)[^&\s"'\\<>]*`), func(m string) bool {
		v := m[strings.IndexAny(m, "=%\\")+1:]
		v = strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(v), "3d"), "u003d")
		return v == "" || v == "redacted"
	}},
	{"Authorization header", regexp.MustCompile(`(?i)authorization\\?"?\s*[:=]\s*\\?"?\s*(?:bearer|basic|sharedkey)\b`), nil},
	{"bearer credential", regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}`), nil},
}

// Line returns the kinds of secret in one log line.
func Line(s string) []string {
	var kinds []string
	for _, p := range patterns {
		for _, m := range p.re.FindAllString(s, -1) {
			if p.ok == nil || !p.ok(m) {
				kinds = append(kinds, p.kind)
				break
			}
		}
	}
	return kinds
}

// Reader scans r line by line; name is used in the leaks it returns.
func Reader(name string, r io.Reader) ([]Leak, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var leaks []Leak
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		for _, k := range Line(line) {
			leaks = append(leaks, Leak{File: name, Line: n, Kind: k, Excerpt: excerpt(line)})
		}
	}
	return leaks, n, sc.Err()
}

// Stats says what a scan read, so that a test can tell it read something.
type Stats struct {
	Files int
	Lines int
}

// Dir scans every file under dir.
func Dir(dir string) ([]Leak, Stats, error) {
	var leaks []Leak
	var st Stats
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(dir, path)
		l, n, err := Reader(rel, f)
		if err != nil {
			return fmt.Errorf("scan %s: %w", path, err)
		}
		leaks = append(leaks, l...)
		st.Files++
		st.Lines += n
		return nil
	})
	return leaks, st, err
}

// excerpt shortens a line for a report, keeping no secret whole.
func excerpt(line string) string {
	for _, p := range patterns {
		line = p.re.ReplaceAllStringFunc(line, func(m string) string {
			return m[:min(len(m), 12)] + "…"
		})
	}
	if len(line) > 300 {
		line = line[:300] + "…"
	}
	return line
}
