package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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

func TestCosmos(t *testing.T) {
	env := storetest.StartEnv(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return storetest.NewCosmos(t, env, nil)
	})
}

// TestCosmosThrottleRetried checks that a 429 with x-ms-retry-after-ms is
// retried by the SDK (after the delay the service asks for), once per
// request: the store adds no loop of its own.
func TestCosmosThrottleRetried(t *testing.T) {
	env := storetest.StartEnv(t)
	th := &injector{status: http.StatusTooManyRequests, retryAfter: 20 * time.Millisecond}
	s := storetest.NewCosmos(t, env, nil, th)
	docs := fixtureCosts(240, 1) // 3 days: 3 batches of 80
	st, err := s.UpsertCosts(t.Context(), docs)
	if err != nil {
		t.Fatalf("UpsertCosts with one 429 per write request: %v", err)
	}
	if st.Written != 240 {
		t.Errorf("stats %+v, want 240 written", st)
	}
	if got := th.injected.Load(); got != 3 {
		t.Errorf("429s injected = %d, want one per batch (3)", got)
	}
	if got := th.attempts.Load(); got != 6 {
		t.Errorf("write attempts = %d, want 6 (each batch once throttled, once retried)", got)
	}
}

// TestCosmosUnavailableRetried checks that a 503, which the SDK does not
// retry for an account with one write region, is retried by the store after
// the x-ms-retry-after-ms the service sends.
func TestCosmosUnavailableRetried(t *testing.T) {
	env := storetest.StartEnv(t)
	un := &injector{status: http.StatusServiceUnavailable, retryAfter: 50 * time.Millisecond}
	s := storetest.NewCosmos(t, env, nil, un)
	st, err := s.UpsertCosts(t.Context(), fixtureCosts(30, 1))
	if err != nil {
		t.Fatalf("UpsertCosts with one 503 per write request: %v", err)
	}
	if st.Written != 30 || un.injected.Load() != 3 || un.attempts.Load() != 6 {
		t.Errorf("stats %+v after %d injected 503s and %d attempts, want 30 written, 3 and 6", st, un.injected.Load(), un.attempts.Load())
	}
	// A sweep's deletes go through the same retry.
	n, err := s.SweepDay(t.Context(), "/subscriptions/s", "ActualCost", "2026-09-01", 2, store.IDSet{})
	if err != nil || n != 10 {
		t.Errorf("SweepDay under 503s = %d, %v; want 10", n, err)
	}
}

// TestCosmosThrottleTooLong checks that a 429 asking for a longer wait than
// the retry cap comes back at once with the wait, so that the caller can
// re-enqueue.
func TestCosmosThrottleTooLong(t *testing.T) {
	env := storetest.StartEnv(t)
	th := &injector{status: http.StatusTooManyRequests, retryAfter: time.Minute, always: true}
	s := storetest.NewCosmos(t, env, nil, th)
	start := time.Now()
	_, err := s.UpsertCosts(t.Context(), fixtureCosts(3, 1))
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("UpsertCosts under a one-minute 429: %v, want the 429", err)
	}
	if wait, ok := store.RetryAfter(err); !ok || wait != time.Minute {
		t.Errorf("RetryAfter = %s, %v; want 1m0s, true", wait, ok)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("UpsertCosts took %s to give up", d)
	}
	if a, i := th.attempts.Load(), th.injected.Load(); a != i || a > 3 {
		t.Errorf("attempts %d, injected %d: want one attempt per batch, none retried", a, i)
	}
}

// TestCosmosNoNetworkAtConstruction checks that NewCosmos makes no calls.
func TestCosmosNoNetworkAtConstruction(t *testing.T) {
	var calls atomic.Int64
	tr := transporterFunc(func(*http.Request) (*http.Response, error) {
		calls.Add(1)
		return nil, errors.New("no network in this test")
	})
	_, err := store.NewCosmos("https://127.0.0.1:1/", storetest.Credential{}, &store.CosmosOptions{
		ClientOptions: &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: tr}},
	})
	if err != nil {
		t.Fatalf("NewCosmos: %v", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("NewCosmos made %d requests, want none", n)
	}
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

// injector answers write requests of documents (single writes and batches)
// with status and x-ms-retry-after-ms: once per distinct request (by
// method, path and body) or, with always, every time.
type injector struct {
	status     int
	retryAfter time.Duration
	always     bool

	mu       sync.Mutex
	seen     map[string]bool
	attempts atomic.Int64
	injected atomic.Int64
}

func (in *injector) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	query := strings.HasPrefix(raw.Header.Get("Content-Type"), "application/query+json")
	write := raw.Method == http.MethodPost && !query || raw.Method == http.MethodPatch || raw.Method == http.MethodDelete
	if !write || !strings.Contains(raw.URL.Path, "/docs") {
		return req.Next()
	}
	in.attempts.Add(1)
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
	in.mu.Lock()
	if in.seen == nil {
		in.seen = map[string]bool{}
	}
	first := !in.seen[key]
	in.seen[key] = true
	in.mu.Unlock()
	if !first && !in.always {
		return req.Next()
	}
	in.injected.Add(1)
	h := http.Header{}
	h.Set("x-ms-retry-after-ms", fmt.Sprint(in.retryAfter.Milliseconds()))
	h.Set("Content-Type", "application/json")
	return &http.Response{
		StatusCode: in.status,
		Status:     fmt.Sprintf("%d %s", in.status, http.StatusText(in.status)),
		Header:     h,
		Body:       io.NopCloser(strings.NewReader(`{"code":"injected","message":"injected"}`)),
		Request:    raw,
	}, nil
}

type policyFunc func(*policy.Request) (*http.Response, error)

func (f policyFunc) Do(req *policy.Request) (*http.Response, error) { return f(req) }

type transporterFunc func(*http.Request) (*http.Response, error)

func (f transporterFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// TestCosmosCompatBatch checks the second emulator work-around on its own:
// a transactional batch goes through.
func TestCosmosCompatBatch(t *testing.T) {
	s := storetest.NewCosmos(t, storetest.StartEnv(t), nil)
	docs := fixtureCosts(3, 1)
	c, err := store.CosmosClient(s).NewContainer(s.Database(), store.CostsContainer)
	if err != nil {
		t.Fatal(err)
	}
	b := c.NewTransactionalBatch(azcosmos.NewPartitionKeyString(docs[0].PK))
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
