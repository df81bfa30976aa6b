// Package realdata locates the team's real cost files for tests:
// ../shared/testdata/real next to the module root. They are read in place,
// never copied into the project.
package realdata

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Dir returns the real-data directory. Without it the test is skipped,
// except under CI (the CI variable is set), where it fails.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
	real := filepath.Join(dir, "..", "shared", "testdata", "real")
	if _, err := os.Stat(filepath.Join(real, "SOURCES.md")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("real test data missing under CI: %v", err)
		}
		t.Skipf("real test data not found: %v", err)
	}
	return real
}

// Path returns the path of rel inside Dir.
func Path(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(Dir(t), filepath.FromSlash(rel))
}

// CostFiles lists the cost files of the real data (the Cost Management
// CSVs, not the API examples), relative to Dir with forward slashes, sorted.
func CostFiles(t testing.TB) []string {
	t.Helper()
	dir := Dir(t)
	var files []string
	for _, g := range []string{"finops-toolkit/powershell-test-assets/*.csv", "focus-sample-data/*.csv", "opencost/*/*.csv"} {
		m, err := filepath.Glob(filepath.Join(dir, g))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, filepath.ToSlash(rel))
		}
	}
	slices.Sort(files)
	return files
}
