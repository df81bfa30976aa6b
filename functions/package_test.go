package functions

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestPackageLayout builds the deployable folder with `make package` and
// checks its layout against this folder: host.json at the root, every
// function folder lifted to the root with its function.json unchanged,
// nothing else, and the linux/amd64 handler that host.json names.
func TestPackageLayout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the handler for linux/amd64")
	}
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("make is not installed")
		}
		t.Skip("make is not installed")
	}
	dist := t.TempDir()
	cmd := exec.Command("make", "-C", "..", "package", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}

	// Services.csv is packaged when the team's copy is next to the
	// repository (under CI it must be).
	want := []string{"handler", "host.json"}
	if _, err := os.Stat("../../shared/testdata/real/finops-toolkit/open-data/Services.csv"); err == nil {
		want = append(want, "open-data", "open-data/Services.csv")
	} else if os.Getenv("CI") != "" {
		t.Fatalf("the team's Services.csv is missing under CI: %v", err)
	}
	folders, err := fs.Glob(FS, "*/function.json")
	if err != nil || len(folders) == 0 {
		t.Fatalf("function folders: %v %v", folders, err)
	}
	for _, f := range folders {
		want = append(want, filepath.Dir(f), f)
		src, _ := fs.ReadFile(FS, f)
		got, err := os.ReadFile(filepath.Join(dist, f))
		if err != nil || !bytes.Equal(src, got) {
			t.Errorf("%s in the package differs from functions/%s (%v)", f, f, err)
		}
	}
	var got []string
	err = filepath.WalkDir(dist, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dist {
			return err
		}
		rel, _ := filepath.Rel(dist, p)
		got = append(got, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("package holds %v, want %v", got, want)
	}

	host, _ := os.ReadFile("../host.json")
	if packaged, _ := os.ReadFile(filepath.Join(dist, "host.json")); !bytes.Equal(host, packaged) {
		t.Error("the packaged host.json differs from host.json")
	}
	var h struct {
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
	}
	if err := json.Unmarshal(host, &h); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dist, h.CustomHandler.Description.DefaultExecutablePath)
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatalf("host.json names %q: %v", h.CustomHandler.Description.DefaultExecutablePath, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		t.Errorf("handler is %s %s, want a linux/amd64 executable", f.Class, f.Machine)
	}
	if st, err := os.Stat(exe); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("handler is not executable: %v", err)
	}
}
