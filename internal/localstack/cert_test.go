package localstack

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestEnsureCertNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Now()
	certFile, keyFile, err := ensureCert(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := certFile, filepath.Join(dir, "cert.pem"); got != want {
		t.Errorf("cert file = %s, want %s", got, want)
	}
	if got, want := keyFile, filepath.Join(dir, "key.pem"); got != want {
		t.Errorf("key file = %s, want %s", got, want)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %v, want 0600", perm)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if !leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Errorf("IsCA = %v, BasicConstraintsValid = %v, want both true", leaf.IsCA, leaf.BasicConstraintsValid)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP SANs = %v, want [127.0.0.1]", leaf.IPAddresses)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" {
		t.Errorf("DNS SANs = %v, want [localhost]", leaf.DNSNames)
	}
	if life := leaf.NotAfter.Sub(now); life < 364*24*time.Hour || life > 366*24*time.Hour {
		t.Errorf("certificate valid for %s after now, want about a year", life)
	}
	if leaf.NotBefore.After(now) {
		t.Errorf("NotBefore %s is after now %s", leaf.NotBefore, now)
	}

	// A client that trusts only this certificate can verify it as the
	// server certificate for both names.
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.com"}); err == nil {
		t.Error("verify for example.com succeeded, want an error")
	}
}

func TestEnsureCertReuse(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	certFile, keyFile, err := ensureCert(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	orig := readFiles(t, certFile, keyFile)
	leaf, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := leaf.Leaf.NotAfter

	tests := []struct {
		name   string
		now    time.Time
		damage func(t *testing.T) // applied to a copy of the original pair
		reuse  bool
	}{
		{name: "same day", now: now, reuse: true},
		{name: "in six months", now: now.Add(182 * 24 * time.Hour), reuse: true},
		{name: "25 hours left", now: notAfter.Add(-25 * time.Hour), reuse: true},
		{name: "12 hours left", now: notAfter.Add(-12 * time.Hour), reuse: false},
		{name: "expired", now: notAfter.Add(time.Hour), reuse: false},
		{name: "not yet valid", now: now.Add(-48 * time.Hour), reuse: false},
		{name: "missing key", now: now, damage: func(t *testing.T) { os.Remove(keyFile) }, reuse: false},
		{name: "corrupt cert", now: now, damage: func(t *testing.T) { os.WriteFile(certFile, []byte("junk"), 0o644) }, reuse: false},
		{name: "other key", now: now, damage: func(t *testing.T) {
			_, key, err := newCert(now)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(keyFile, key, 0o600)
		}, reuse: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.WriteFile(certFile, orig[0], 0o644)
			os.WriteFile(keyFile, orig[1], 0o600)
			if tt.damage != nil {
				tt.damage(t)
			}
			c, k, err := ensureCert(dir, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			got := readFiles(t, c, k)
			reused := bytes.Equal(got[0], orig[0]) && bytes.Equal(got[1], orig[1])
			if reused != tt.reuse {
				t.Errorf("reused = %v, want %v", reused, tt.reuse)
			}
			if err := checkCert(c, k, tt.now); err != nil {
				t.Errorf("pair after ensureCert is not usable: %v", err)
			}
		})
	}
}

func readFiles(t *testing.T, names ...string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}
