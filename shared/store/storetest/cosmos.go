package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/shared/store"
)

// EnvEndpoint names a running emulator or account (e.g.
// https://127.0.0.1:8081/, its certificate trusted through SSL_CERT_FILE)
// to test against instead of the local stack's emulator.
const EnvEndpoint = "COSTSYNC_TEST_COSMOS_ENDPOINT"

// Env is where tests find Cosmos DB.
type Env struct {
	Endpoint  string
	Transport policy.Transporter // nil: the default, trusting SSL_CERT_FILE
}

// StartEnv finds Cosmos DB: the endpoint of EnvEndpoint (a real account,
// say), or the emulator of a local stack started for this test, which
// skips locally and fails under CI=true when its npm packages are missing.
func StartEnv(t testing.TB) Env {
	t.Helper()
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		return Env{Endpoint: ep}
	}
	st := localstack.StartT(t, localstack.Options{Components: localstack.Components{Cosmos: true}})
	return Env{Endpoint: st.CosmosURL, Transport: st.Transport()}
}

// runID makes database names unique per test process.
var runID = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

var dbSeq atomic.Int64

// NewCosmos returns a provisioned store in a database of its own, with the
// extra policies (if any) per retry, and drops the database when the test
// ends. o may set Concurrency; Database, ClientOptions and EmulatorCompat
// are set here.
func NewCosmos(t testing.TB, env Env, o *store.CosmosOptions, extra ...policy.Policy) *store.Cosmos {
	t.Helper()
	var opts store.CosmosOptions
	if o != nil {
		opts = *o
	}
	db := fmt.Sprintf("costsync-test-%s-%d", runID, dbSeq.Add(1))
	opts.Database = db
	opts.ClientOptions = &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: env.Transport, PerRetryPolicies: extra}}
	opts.EmulatorCompat = true
	s, err := store.NewCosmos(env.Endpoint, Credential{}, &opts)
	if err != nil {
		t.Fatalf("NewCosmos: %v", err)
	}
	if err := s.Provision(t.Context()); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := azcosmos.NewClient(env.Endpoint, Credential{}, &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: env.Transport}})
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

// Credential hands out a JWT-shaped token; the emulator checks none.
type Credential struct{}

// GetToken implements azcore.TokenCredential.
func (Credential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	enc := base64.RawURLEncoding
	exp := time.Now().Add(time.Hour)
	claims, _ := json.Marshal(map[string]any{
		"aud": "https://127.0.0.1", "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
		"iat": time.Now().Unix(), "nbf": time.Now().Unix(), "exp": exp.Unix(),
	})
	tok := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + ".sig"
	return azcore.AccessToken{Token: tok, ExpiresOn: exp}, nil
}
