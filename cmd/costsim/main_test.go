package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and returns the
// file names and a pool that trusts it.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "costsim test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestRun starts the real command: the first stdout line, HTTPS, JSON logs
// after it, and a graceful stop.
func TestRun(t *testing.T) {
	certFile, keyFile, pool := writeCert(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-cert", certFile, "-key", keyFile, "-seed", "7",
			"-identity-header", "s3", "-today", "2026-11-22", "-rows-per-day", "10", "-polls", "0",
			"-faults", `{"noDataAs":"204"}`}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output: %v", <-done)
	}
	first := sc.Text()
	m := regexp.MustCompile(`^costsim listening on (https://127\.0\.0\.1:(\d+))$`).FindStringSubmatch(first)
	if m == nil || m[2] == "0" {
		t.Fatalf("first line %q", first)
	}
	lines := make(chan string, 100)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", m[1]+"/msi/token?api-version=2019-08-01&resource=https://management.azure.com/", nil)
	req.Header.Set("X-IDENTITY-HEADER", "s3")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr tokenResponse
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	req, _ = http.NewRequest("POST", m[1]+"/"+subScope+"/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01",
		strings.NewReader(`{"timePeriod":{"start":"2026-12-01","end":"2026-12-02"}}`))
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("create of a future window with -faults noDataAs 204: %d", resp.StatusCode)
	}

	// Resets also work over HTTP/2 (a stream reset; the handler cannot hijack).
	req, _ = http.NewRequest("POST", m[1]+"/_sim/faults", strings.NewReader(`{"resetRate":1}`))
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	req, _ = http.NewRequest("GET", m[1]+"/"+subScope+"/providers/Microsoft.CostManagement/costDetailsOperationResults/x?api-version=2024-08-01", nil)
	if resp, err := h2.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("HTTP/2 request with resetRate 1: %s %d, want an error", resp.Proto, resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
	var logged []string
	for l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Errorf("log line is not JSON: %q", l)
		}
		logged = append(logged, l)
	}
	if len(logged) < 3 || strings.Contains(strings.Join(logged, "\n"), tr.AccessToken) {
		t.Errorf("logs = %v", logged)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"ok", []string{"-cert", "c", "-key", "k"}, ""},
		{"no cert", []string{"-key", "k"}, "-cert and -key are required"},
		{"bad tenant", []string{"-cert", "c", "-key", "k", "-tenant", "x"}, "not a GUID"},
		{"bad today", []string{"-cert", "c", "-key", "k", "-today", "22/11/2026"}, "YYYY-MM-DD"},
		{"negative polls", []string{"-cert", "c", "-key", "k", "-polls", "-1"}, "negative"},
		{"bad ttl", []string{"-cert", "c", "-key", "k", "-link-ttl", "0s"}, "positive"},
		{"bad faults", []string{"-cert", "c", "-key", "k", "-faults", `{"throttleRate":3}`}, "throttleRate"},
		{"unknown flag", []string{"-cert", "c", "-key", "k", "-nope"}, "not defined"},
		{"extra args", []string{"-cert", "c", "-key", "k", "x"}, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.seed != 1 || c.rowsPerDay != 120 || c.polls != 2 || c.retryAfter != 1 || c.linkTTL != time.Hour || !isGUID(c.tenant) || c.faults.NoDataAs != "" {
					t.Errorf("defaults = %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error = %v, want %q", err, tt.err)
			}
		})
	}
}
