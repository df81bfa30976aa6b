package localstack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeRepo returns a repository root whose bin/costsim is the shell script
// body.
func fakeRepo(t *testing.T, body string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "costsim"), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestStartCommandLine(t *testing.T) {
	argsFile := filepath.Join(t.TempDir(), "args")
	// Records its arguments and SSL_CERT_FILE, then announces the port of
	// -listen, or 40123 for port 0.
	root := fakeRepo(t, `echo "$@" >> `+argsFile+`
echo "SSL_CERT_FILE=$SSL_CERT_FILE" >> `+argsFile+`
port=${2##*:}; [ "$port" = 0 ] && port=40123
echo "costsim listening on https://127.0.0.1:$port"
exec sleep 60
`)
	var progress bytes.Buffer
	dir := t.TempDir()
	s, err := Start(context.Background(), Options{
		Dir: dir, RepoRoot: root, Log: &progress,
		Components:  Components{Costsim: true},
		CostsimArgs: []string{"-rows-per-day", "50"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.CostsimURL != "https://127.0.0.1:40123" || s.IdentityEndpoint != "https://127.0.0.1:40123/msi/token" {
		t.Errorf("CostsimURL %q, IdentityEndpoint %q", s.CostsimURL, s.IdentityEndpoint)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(s.IdentityHeader) {
		t.Errorf("IdentityHeader %q is not 32 hex digits", s.IdentityHeader)
	}
	if err := s.Restart(context.Background(), "costsim"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "certs")
	want := strings.Join([]string{
		"-listen 127.0.0.1:0 -cert " + certs + "/cert.pem -key " + certs + "/key.pem -identity-header " + s.IdentityHeader + " -rows-per-day 50",
		"SSL_CERT_FILE=" + certs + "/cert.pem",
		"-listen 127.0.0.1:40123 -cert " + certs + "/cert.pem -key " + certs + "/key.pem -identity-header " + s.IdentityHeader + " -rows-per-day 50",
		"SSL_CERT_FILE=" + certs + "/cert.pem",
	}, "\n") + "\n"
	if got := string(b); got != want {
		t.Errorf("costsim was run as:\n%s\nwant:\n%s", got, want)
	}
	for _, w := range []string{
		"localstack: costsim ready at https://127.0.0.1:40123 (",
		"localstack: costsim restarted at https://127.0.0.1:40123 (",
		"localstack: costsim stopped (",
	} {
		if !strings.Contains(progress.String(), w) {
			t.Errorf("progress lacks %q:\n%s", w, progress.String())
		}
	}
	log, err := os.ReadFile(filepath.Join(dir, "logs", "costsim.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "costsim listening on"); n != 2 || !strings.Contains(string(log), "--- localstack: restarting costsim at ") {
		t.Errorf("costsim.log does not hold both runs:\n%s", log)
	}
}

func TestStartComponentFails(t *testing.T) {
	root := fakeRepo(t, `echo "starting"
echo "costsim: -faults: unknown field \"bogus\"" >&2
exit 2
`)
	_, err := Start(context.Background(), Options{RepoRoot: root, Components: Components{Costsim: true}})
	if err == nil {
		t.Fatal("Start succeeded, want an error")
	}
	for _, w := range []string{"localstack: start costsim: exited before it was ready (exit status 2)", "costsim.log", "\tstarting\n", `unknown field "bogus"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}
