package localstack

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
)

// TestStackSmoke proves the chain the handler uses: costsim's managed
// identity through azidentity, then azblob and azqueue against Azurite over
// HTTPS with --oauth basic, and azcosmos against the Cosmos emulator with a
// token.
func TestStackSmoke(t *testing.T) {
	s := StartT(t, Options{Components: Components{Storage: true, Cosmos: true, Costsim: true}})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	cred, err := s.Credential()
	if err != nil {
		t.Fatal(err)
	}
	opts := azcore.ClientOptions{Transport: s.Transport()}

	t.Run("blob", func(t *testing.T) {
		c, err := azblob.NewClient(s.BlobURL+"/", cred, &azblob.ClientOptions{ClientOptions: opts})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateContainer(ctx, "smoke", nil); err != nil {
			t.Fatal(err)
		}
		want := []byte("hello from localstack")
		if _, err := c.UploadBuffer(ctx, "smoke", "dir/hello.txt", want, nil); err != nil {
			t.Fatal(err)
		}
		resp, err := c.DownloadStream(ctx, "smoke", "dir/hello.txt", nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("downloaded %q, want %q", got, want)
		}
	})

	t.Run("queue", func(t *testing.T) {
		svc, err := azqueue.NewServiceClient(s.QueueURL+"/", cred, &azqueue.ClientOptions{ClientOptions: opts})
		if err != nil {
			t.Fatal(err)
		}
		q := svc.NewQueueClient("smoke")
		if _, err := q.Create(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := q.EnqueueMessage(ctx, `{"window":"2026-11-01"}`, nil); err != nil {
			t.Fatal(err)
		}
		resp, err := q.DequeueMessage(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Messages) != 1 {
			t.Fatalf("dequeued %d messages, want 1", len(resp.Messages))
		}
		m := resp.Messages[0]
		if got, want := *m.MessageText, `{"window":"2026-11-01"}`; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
		if got := *m.DequeueCount; got != 1 {
			t.Errorf("DequeueCount = %d, want 1", got)
		}
		if _, err := q.DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("cosmos", func(t *testing.T) {
		c, err := azcosmos.NewClient(s.CosmosURL, cred, &azcosmos.ClientOptions{ClientOptions: opts})
		if err != nil {
			t.Fatal(err)
		}
		cosmosRoundTrip(ctx, t, c)

		// Restart gives an empty emulator at the same address.
		if err := s.Restart(ctx, "cosmos"); err != nil {
			t.Fatal(err)
		}
		db, err := c.NewDatabase("smoke")
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.Read(ctx, nil)
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
			t.Errorf("read database after restart: %v, want 404", err)
		}
		cosmosRoundTrip(ctx, t, c)
	})

	t.Run("env", func(t *testing.T) {
		port := strings.TrimPrefix(s.CostsimURL, "https://127.0.0.1:")
		for _, want := range []string{
			"SSL_CERT_FILE=" + s.CertFile,
			"IDENTITY_ENDPOINT=https://127.0.0.1:" + port + "/msi/token",
			"IDENTITY_HEADER=" + s.IdentityHeader,
			"AzureWebJobsStorage__blobServiceUri=" + s.BlobURL,
			"AzureWebJobsStorage__queueServiceUri=" + s.QueueURL,
			"AzureWebJobsStorage__credential=managedidentity",
			"COSTSYNC_COSMOS_ENDPOINT=" + s.CosmosURL,
			"COSTSYNC_COSMOS_EMULATOR=true",
			"COSTSYNC_ARM_ENDPOINT=" + s.CostsimURL,
			"COSTSYNC_ALLOWED_HOSTS=127.0.0.1:" + port,
		} {
			if !slices.Contains(s.Env, want) {
				t.Errorf("Env lacks %q: %q", want, s.Env)
			}
		}
	})
}

// TestStackDevhost starts the whole stack, checks that devhost runs the
// handler, and restarts devhost as a crash test would.
func TestStackDevhost(t *testing.T) {
	s := StartT(t, Options{
		Components: Components{Storage: true, Cosmos: true, Costsim: true, Devhost: true},
		Env: map[string]string{
			"COSTSYNC_SCOPES":        "/subscriptions/00000000-0000-0000-0000-000000000001",
			"COSTSYNC_METRICS":       "ActualCost",
			"COSTSYNC_PLAN_SCHEDULE": "0 0 6 * * *",
		},
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	status := func() {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.DevhostURL+"/admin/host/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.Transport().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct{ State string }
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK || st.State != "Running" {
			t.Fatalf("host status: %s, %+v, %v; want 200 and state Running", resp.Status, st, err)
		}
	}
	status()
	before := descendantGroups(s.procs[nameDevhost].cmd.Process.Pid)
	if err := s.Restart(ctx, "devhost"); err != nil {
		t.Fatal(err)
	}
	status()
	for _, g := range before {
		if groupAlive(g) {
			t.Errorf("process group %d of the killed devhost is still alive", g)
		}
	}
	if err := s.Restart(ctx, "azurite"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Restart(azurite) = %v, want a not-running error", err)
	}
}

// TestCredential checks Credential against an identity endpoint in the test
// (no costsim needed): the token comes through a TLS connection that trusts
// the stack's certificate, and Close restores the environment.
func TestCredential(t *testing.T) {
	t.Setenv("IDENTITY_ENDPOINT", "http://before.example/msi/token")
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "abc")
	os.Unsetenv("IDENTITY_HEADER")
	s, err := Start(t.Context(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Credential(); err == nil {
		t.Error("Credential without costsim succeeded, want an error")
	}

	mi := newIdentityServer(t, s)
	s.IdentityEndpoint, s.IdentityHeader = mi.URL+"/msi/token", "smoke-secret"
	cred, err := s.Credential()
	if err != nil {
		t.Fatal(err)
	}
	// msal-go caches managed-identity tokens for the whole process, keyed by
	// resource and not by endpoint, so ask for a resource nothing else used.
	id, err := randomHex(8)
	if err != nil {
		t.Fatal(err)
	}
	resource := "https://credential-test-" + id + ".example"
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{resource + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if parts := strings.Split(tok.Token, "."); len(parts) != 3 {
		t.Errorf("token %q is not JWT-shaped", tok.Token)
	}
	if got, want := mi.resources(), []string{resource}; !slices.Equal(got, want) {
		t.Errorf("identity endpoint was asked for %q, want %q", got, want)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"IDENTITY_ENDPOINT":          "http://before.example/msi/token",
		"IDENTITY_SERVER_THUMBPRINT": "abc",
	} {
		if got := os.Getenv(k); got != want {
			t.Errorf("after Close %s = %q, want %q", k, got, want)
		}
	}
	if v, ok := os.LookupEnv("IDENTITY_HEADER"); ok {
		t.Errorf("after Close IDENTITY_HEADER = %q, want it unset", v)
	}
	if _, err := os.Stat(s.dir); err != nil {
		t.Errorf("Close removed the caller's Dir: %v", err)
	}
}

func TestStartTempDir(t *testing.T) {
	s, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.CertFile); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary state dir after Close: %v, want it removed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// cosmosRoundTrip creates database and container "smoke", upserts an item
// and reads it back.
func cosmosRoundTrip(ctx context.Context, t *testing.T, c *azcosmos.Client) {
	t.Helper()
	if _, err := c.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "smoke"}, nil); err != nil {
		t.Fatal(err)
	}
	db, err := c.NewDatabase("smoke")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{
		ID:                     "smoke",
		PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	container, err := db.NewContainer("smoke")
	if err != nil {
		t.Fatal(err)
	}
	type item struct {
		ID    string `json:"id"`
		PK    string `json:"pk"`
		Value string `json:"value"`
	}
	want := item{ID: "one", PK: "sub1|ActualCost|2026-11-01", Value: "12.3400"}
	body, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	pk := azcosmos.NewPartitionKeyString(want.PK)
	if _, err := container.UpsertItem(ctx, pk, body, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := container.ReadItem(ctx, pk, want.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got item
	if err := json.Unmarshal(resp.Value, &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("read %+v, want %+v", got, want)
	}
}

// identityServer imitates App Service's managed-identity endpoint over
// HTTPS with the stack's certificate. Its tokens are JWT-shaped with the
// claims Azurite's --oauth basic checks (aud, iss, iat, nbf, exp); the
// signature is not verifiable, and nothing checks it.
type identityServer struct {
	*httptest.Server
	mu    sync.Mutex
	asked map[string]bool
}

func newIdentityServer(t *testing.T, s *Stack) *identityServer {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	is := &identityServer{asked: map[string]bool{}}
	is.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.URL.Path != "/msi/token":
			http.NotFound(w, r)
			return
		case r.Header.Get("X-IDENTITY-HEADER") != "smoke-secret":
			http.Error(w, `{"statusCode":401,"message":"bad X-IDENTITY-HEADER"}`, http.StatusUnauthorized)
			return
		case q.Get("api-version") != "2019-08-01" || q.Get("resource") == "":
			http.Error(w, `{"statusCode":400,"message":"bad query"}`, http.StatusBadRequest)
			return
		}
		resource := q.Get("resource")
		is.mu.Lock()
		is.asked[resource] = true
		is.mu.Unlock()
		now := time.Now()
		exp := now.Add(time.Hour)
		claims, _ := json.Marshal(map[string]any{
			"aud": resource, "iss": "https://sts.windows.net/" + tenant + "/", "tid": tenant,
			"oid": "00000000-0000-0000-0000-000000000001",
			"iat": now.Unix(), "nbf": now.Add(-5 * time.Minute).Unix(), "exp": exp.Unix(),
		})
		enc := base64.RawURLEncoding.EncodeToString
		token := enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(claims) + "." + enc([]byte("not-a-signature"))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"access_token": token, "expires_on": strconv.FormatInt(exp.Unix(), 10),
			"resource": resource, "token_type": "Bearer",
		})
	}))
	is.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	is.StartTLS()
	t.Cleanup(is.Close)
	return is
}

// resources returns the resources tokens were asked for, sorted.
func (is *identityServer) resources() []string {
	is.mu.Lock()
	defer is.mu.Unlock()
	var r []string
	for k := range is.asked {
		r = append(r, k)
	}
	slices.Sort(r)
	return r
}
