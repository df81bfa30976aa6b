package store_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/store/storetest"
	"github.com/shopspring/decimal"
)

// Environment of the Cosmos tests.
//
//	COSTSYNC_TEST_COSMOS_ENDPOINT  a running emulator (or account), e.g.
//	                               https://127.0.0.1:8081/; its certificate
//	                               is trusted through SSL_CERT_FILE.
//	COSTSYNC_TEST_NPM_DIR          otherwise, a directory with
//	                               node_modules/@vercel/cosmosdb-server: the
//	                               test starts the emulator itself.
//	CI                             when set, a missing emulator fails the
//	                               tests instead of skipping them.
const (
	envEndpoint = "COSTSYNC_TEST_COSMOS_ENDPOINT"
	envNPMDir   = "COSTSYNC_TEST_NPM_DIR"
)

// cosmosEnv is where the tests find Cosmos DB.
type cosmosEnv struct {
	endpoint  string
	transport policy.Transporter // nil: the default, trusting SSL_CERT_FILE
}

// runID makes database names unique per test process.
var runID = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

var dbSeq atomic.Int64

func TestCosmos(t *testing.T) {
	env := newCosmosEnv(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return newTestCosmos(t, env, nil)
	})
}

// TestCosmosThrottleRetried checks that a 429 with x-ms-retry-after-ms is
// retried by the SDK (after the delay the service asks for), once per
// request: the store adds no loop of its own.
func TestCosmosThrottleRetried(t *testing.T) {
	env := newCosmosEnv(t)
	th := &throttle{retryAfter: 20 * time.Millisecond}
	s := newTestCosmos(t, env, th)
	docs := fixtureCosts(40, 1)
	st, err := s.UpsertCosts(t.Context(), docs)
	if err != nil {
		t.Fatalf("UpsertCosts with one 429 per write: %v", err)
	}
	if st.Written != 40 {
		t.Errorf("stats %+v, want 40 written", st)
	}
	if got := th.injected.Load(); got != 40 {
		t.Errorf("429s injected = %d, want one per write (40)", got)
	}
	if got := th.attempts.Load(); got != 80 {
		t.Errorf("write attempts = %d, want 80 (each write once throttled, once retried)", got)
	}
}

// TestCosmosThrottleTooLong checks that a 429 asking for a longer wait than
// the retry cap comes back at once, so that the caller can re-enqueue.
func TestCosmosThrottleTooLong(t *testing.T) {
	env := newCosmosEnv(t)
	th := &throttle{retryAfter: time.Minute, always: true}
	s := newTestCosmos(t, env, th)
	start := time.Now()
	_, err := s.UpsertCosts(t.Context(), fixtureCosts(3, 1))
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("UpsertCosts under a one-minute 429: %v, want the 429", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("UpsertCosts took %s to give up", d)
	}
	if a, i := th.attempts.Load(), th.injected.Load(); a != i || a > 3 {
		t.Errorf("attempts %d, injected %d: want one attempt per write, none retried", a, i)
	}
}

// TestCosmosNoNetworkAtConstruction checks that NewCosmos makes no calls.
func TestCosmosNoNetworkAtConstruction(t *testing.T) {
	var calls atomic.Int64
	tr := transporterFunc(func(*http.Request) (*http.Response, error) {
		calls.Add(1)
		return nil, errors.New("no network in this test")
	})
	_, err := store.NewCosmos("https://127.0.0.1:1/", fakeCredential{}, &store.CosmosOptions{
		ClientOptions: &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: tr}},
	})
	if err != nil {
		t.Fatalf("NewCosmos: %v", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("NewCosmos made %d requests, want none", n)
	}
}

// TestCosmosPatchOfSweptDocument checks that a document deleted between the
// look-up and its generation patch is written whole.
func TestCosmosPatchOfSweptDocument(t *testing.T) {
	env := newCosmosEnv(t)
	var gone atomic.Int64
	s := newTestCosmos(t, env, policyFunc(func(req *policy.Request) (*http.Response, error) {
		if req.Raw().Method != http.MethodPatch {
			return req.Next()
		}
		gone.Add(1)
		return &http.Response{
			StatusCode: http.StatusNotFound,
			Status:     "404 Not Found",
			Header:     http.Header{"Content-Type": {"application/json"}},
			Body:       io.NopCloser(strings.NewReader(`{"code":"NotFound","message":"injected"}`)),
			Request:    req.Raw(),
		}, nil
	}))
	if _, err := s.UpsertCosts(t.Context(), fixtureCosts(6, 1)); err != nil {
		t.Fatal(err)
	}
	st, err := s.UpsertCosts(t.Context(), fixtureCosts(6, 2))
	if err != nil {
		t.Fatalf("UpsertCosts of generation 2 with every patch answered 404: %v", err)
	}
	if st.Written != 6 || st.Patched != 0 || gone.Load() != 6 {
		t.Errorf("stats %+v after %d failed patches, want 6 written", st, gone.Load())
	}
	n, err := s.SweepWindow(t.Context(), "/subscriptions/s", "ActualCost", []string{"2026-09-01", "2026-09-02", "2026-09-03"}, 2)
	if err != nil || n != 0 {
		t.Errorf("SweepWindow = %d, %v; want 0 (every document is of generation 2)", n, err)
	}
}

// newTestCosmos returns a provisioned store in a database of its own, with
// the extra policy (if any) per retry, and drops the database at the end.
func newTestCosmos(t testing.TB, env cosmosEnv, extra policy.Policy) *store.Cosmos {
	t.Helper()
	db := fmt.Sprintf("costsync-test-%s-%d", runID, dbSeq.Add(1))
	co := &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: env.transport}}
	if extra != nil {
		co.PerRetryPolicies = []policy.Policy{extra}
	}
	s, err := store.NewCosmos(env.endpoint, fakeCredential{}, &store.CosmosOptions{
		Database:       db,
		ClientOptions:  co,
		EmulatorCompat: true,
	})
	if err != nil {
		t.Fatalf("NewCosmos: %v", err)
	}
	if err := s.Provision(t.Context()); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := azcosmos.NewClient(env.endpoint, fakeCredential{}, &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: env.transport}})
		if err != nil {
			t.Errorf("drop database %s: %v", db, err)
			return
		}
		d, _ := c.NewDatabase(db)
		if _, err := d.Delete(ctx, nil); err != nil {
			t.Errorf("drop database %s: %v", db, err)
		}
	})
	return s
}

func fixtureCosts(n int, gen int64) []store.Cost {
	out := make([]store.Cost, n)
	for i := range out {
		rec := &costcsv.Record{
			ID:              fmt.Sprintf("t%03d", i),
			Line:            i + 2,
			ContentHash:     fmt.Sprintf("h%03d", i),
			Date:            fmt.Sprintf("2026-09-%02d", i%3+1),
			BillingCurrency: "EUR",
			BilledCost:      decimal.NewFromInt(int64(i)),
			Raw:             map[string]string{"Cost": fmt.Sprint(i)},
		}
		out[i] = store.NewCost(rec, "/subscriptions/s", "ActualCost", "w", gen, "f.csv")
	}
	return out
}

// newCosmosEnv finds Cosmos DB: the endpoint from the environment, or an
// emulator started for this test, or a skip (a failure under CI).
func newCosmosEnv(t testing.TB) cosmosEnv {
	t.Helper()
	if ep := os.Getenv(envEndpoint); ep != "" {
		return cosmosEnv{endpoint: ep}
	}
	dir := os.Getenv(envNPMDir)
	if dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@vercel", "cosmosdb-server")); err == nil {
			return startEmulator(t, dir)
		}
	}
	msg := fmt.Sprintf("no Cosmos DB emulator: set %s, or %s to a directory with node_modules/@vercel/cosmosdb-server", envEndpoint, envNPMDir)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return cosmosEnv{}
}

// launcher serves the emulator over HTTPS with our certificate: the one in
// the package expired in 2021. Arguments: port, cert, key, module directory.
const launcher = `const fs = require("fs");
const [port, cert, key, mod] = process.argv.slice(2);
const { createHttpsServer } = require(mod);
const server = createHttpsServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
server.listen(Number(port), "127.0.0.1", () =>
  console.log("Ready to accept HTTPS connections at 127.0.0.1:" + server.address().port));
`

// startEmulator starts @vercel/cosmosdb-server from npmDir on a free port
// with a certificate made for it, and stops it when the test ends.
func startEmulator(t testing.TB, npmDir string) cosmosEnv {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile, script := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "cosmos-tls.js")
	for name, b := range map[string][]byte{certFile: certPEM, keyFile: keyPEM, script: []byte(launcher)} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mod, err := filepath.Abs(filepath.Join(npmDir, "node_modules", "@vercel", "cosmosdb-server"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script, "0", certFile, keyFile, mod)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the Cosmos emulator (is node on PATH?): %v", err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "Ready to accept HTTPS connections at "); ok {
				ready <- addr
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(exited)
	}()
	var addr string
	select {
	case addr = <-ready:
	case <-exited:
		t.Fatal("the Cosmos emulator exited before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("the Cosmos emulator was not ready within 30 s")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return cosmosEnv{
		endpoint: "https://" + addr + "/",
		transport: &http.Client{
			Timeout:   65 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		},
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost.
func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

// fakeCredential hands out a JWT-shaped token; the emulator checks none.
type fakeCredential struct{}

func (fakeCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	enc := base64.RawURLEncoding
	exp := time.Now().Add(time.Hour)
	claims, _ := json.Marshal(map[string]any{
		"aud": "https://127.0.0.1", "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
		"iat": time.Now().Unix(), "nbf": time.Now().Unix(), "exp": exp.Unix(),
	})
	tok := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + ".sig"
	return azcore.AccessToken{Token: tok, ExpiresOn: exp}, nil
}

// throttle answers 429 to document writes: once per distinct request (by
// method, path and body) or, with always, every time.
type throttle struct {
	retryAfter time.Duration
	always     bool

	mu       sync.Mutex
	seen     map[string]bool
	attempts atomic.Int64
	injected atomic.Int64
}

func (th *throttle) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	query := strings.HasPrefix(raw.Header.Get("Content-Type"), "application/query+json")
	write := raw.Method == http.MethodPost && !query || raw.Method == http.MethodPatch
	if !write || !strings.Contains(raw.URL.Path, "/docs") {
		return req.Next()
	}
	th.attempts.Add(1)
	var body []byte
	if req.Body() != nil {
		b, err := io.ReadAll(req.Body())
		if err != nil {
			return nil, err
		}
		if err := req.RewindBody(); err != nil {
			return nil, err
		}
		body = b
	}
	sum := sha256.Sum256(body)
	key := raw.Method + " " + raw.URL.Path + " " + hex.EncodeToString(sum[:])
	th.mu.Lock()
	if th.seen == nil {
		th.seen = map[string]bool{}
	}
	first := !th.seen[key]
	th.seen[key] = true
	th.mu.Unlock()
	if !first && !th.always {
		return req.Next()
	}
	th.injected.Add(1)
	h := http.Header{}
	h.Set("x-ms-retry-after-ms", fmt.Sprint(th.retryAfter.Milliseconds()))
	h.Set("Content-Type", "application/json")
	return &http.Response{
		StatusCode: http.StatusTooManyRequests,
		Status:     "429 Too Many Requests",
		Header:     h,
		Body:       io.NopCloser(strings.NewReader(`{"code":"TooManyRequests","message":"injected"}`)),
		Request:    raw,
	}, nil
}

type policyFunc func(*policy.Request) (*http.Response, error)

func (f policyFunc) Do(req *policy.Request) (*http.Response, error) { return f(req) }

type transporterFunc func(*http.Request) (*http.Response, error)

func (f transporterFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// TestCosmosCompatBatch checks the second emulator work-around: a
// transactional batch goes through (the store itself uses none today).
func TestCosmosCompatBatch(t *testing.T) {
	env := newCosmosEnv(t)
	s := newTestCosmos(t, env, nil)
	docs := fixtureCosts(3, 1)
	c, err := store.CosmosClient(s).NewContainer(s.Database(), store.CostsContainer)
	if err != nil {
		t.Fatal(err)
	}
	pk := docs[0].PK
	b := c.NewTransactionalBatch(azcosmos.NewPartitionKeyString(pk))
	for i := range 2 {
		d := docs[0]
		d.ID = fmt.Sprintf("batch-%d", i)
		body, _ := json.Marshal(d)
		b.UpsertItem(body, nil)
	}
	resp, err := c.ExecuteTransactionalBatch(t.Context(), b, nil)
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	for i, r := range resp.OperationResults {
		if r.StatusCode != http.StatusCreated && r.StatusCode != http.StatusOK {
			t.Errorf("batch operation %d: status %d", i, r.StatusCode)
		}
	}
	got, err := s.CountWindow(t.Context(), "/subscriptions/s", "ActualCost", []string{docs[0].Date})
	if err != nil || len(got) != 1 || got[0].Rows != 2 {
		t.Errorf("CountWindow after the batch = %+v, %v; want 2 rows", got, err)
	}
}
