package store_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/store/storetest"
	"github.com/shopspring/decimal"
)

// envEndpoint names a running emulator or account (e.g.
// https://127.0.0.1:8081/, its certificate trusted through SSL_CERT_FILE)
// to test against instead of the local stack's emulator.
const envEndpoint = "COSTSYNC_TEST_COSMOS_ENDPOINT"

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
			Raw:             costcsv.NewRaw([]string{"Cost"}, []string{fmt.Sprint(i)}),
		}
		out[i] = store.NewCost(rec, "/subscriptions/s", "ActualCost", "w", gen, "f.csv")
	}
	return out
}

// newCosmosEnv finds Cosmos DB: the endpoint from the environment (a real
// account, say), or the emulator of the local stack started for this test,
// which skips locally and fails under CI when its npm packages are missing.
func newCosmosEnv(t testing.TB) cosmosEnv {
	t.Helper()
	if ep := os.Getenv(envEndpoint); ep != "" {
		return cosmosEnv{endpoint: ep}
	}
	st := localstack.StartT(t, localstack.Options{Components: localstack.Components{Cosmos: true}})
	return cosmosEnv{endpoint: st.CosmosURL, transport: st.Transport()}
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
