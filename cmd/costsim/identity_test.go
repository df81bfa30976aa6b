package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func TestTokenEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	const ok = "/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fstorage.azure.com"
	tests := []struct {
		name   string
		path   string
		header string
		status int
	}{
		{"no header", ok, "", 401},
		{"wrong header", ok, "nope", 401},
		{"no api-version", "/msi/token?resource=https%3A%2F%2Fstorage.azure.com", "test-secret", 400},
		{"old api-version", "/msi/token?api-version=2017-09-01&resource=x", "test-secret", 400},
		{"no resource", "/msi/token?api-version=2019-08-01", "test-secret", 400},
		{"system assigned", ok, "test-secret", 200},
		{"user assigned", ok + "&client_id=11111111-2222-3333-4444-555555555555", "test-secret", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.header != "" {
				h["X-IDENTITY-HEADER"] = tt.header
			}
			resp, b := e.do("GET", tt.path, "", h)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.status, b)
			}
			if tt.status != 200 {
				return
			}
			var tr tokenResponse
			if err := json.Unmarshal(b, &tr); err != nil {
				t.Fatal(err)
			}
			c, err := parseJWT(tr.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			now := e.clock.now()
			exp, _ := strconv.ParseInt(tr.ExpiresOn, 10, 64)
			checks := []struct {
				what      string
				got, want any
			}{
				{"resource", tr.Resource, "https://storage.azure.com"},
				{"token_type", tr.TokenType, "Bearer"},
				{"aud", c.Aud, "https://storage.azure.com"},
				{"iss", c.Iss, "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"},
				{"tid", c.Tid, "72f988bf-86f1-41af-91ab-2d7cd011db47"},
				{"iat", c.Iat, now.Unix()},
				{"nbf", c.Nbf, now.Add(-5 * time.Minute).Unix()},
				{"exp", c.Exp, now.Add(time.Hour).Unix()},
				{"expires_on", exp, c.Exp},
				{"appid = client_id", c.Appid, tr.ClientID},
				{"oid is a GUID", isGUID(c.Oid), true},
			}
			if strings.Contains(tt.path, "client_id") {
				checks = append(checks, struct {
					what      string
					got, want any
				}{"client_id", tr.ClientID, "11111111-2222-3333-4444-555555555555"})
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("%s = %v, want %v", ch.what, ch.got, ch.want)
				}
			}
		})
	}
}

// TestAzidentityAcceptsToken checks that azidentity's App Service managed
// identity flow accepts costsim's answer, and that ARM accepts the token.
func TestAzidentityAcceptsToken(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.now = time.Now // msal compares expires_on with the real clock
	t.Setenv("IDENTITY_ENDPOINT", e.srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "test-secret")
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "")
	t.Setenv("MSI_ENDPOINT", "")
	opts := azcore.ClientOptions{Transport: e.srv.Client()}

	tests := []struct {
		name  string
		id    azidentity.ManagedIDKind
		scope string
		aud   string
	}{
		{"system assigned ARM", nil, "https://management.core.windows.net//.default", "https://management.core.windows.net/"},
		{"user assigned storage", azidentity.ClientID("11111111-2222-3333-4444-555555555555"), "https://storage.azure.com/.default", "https://storage.azure.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts, ID: tt.id})
			if err != nil {
				t.Fatalf("new credential: %v", err)
			}
			tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{tt.scope}})
			if err != nil {
				t.Fatalf("GetToken: %v", err)
			}
			c, err := parseJWT(tok.Token)
			if err != nil {
				t.Fatal(err)
			}
			if c.Aud != tt.aud {
				t.Errorf("aud = %q, want %q", c.Aud, tt.aud)
			}
			if d := time.Until(tok.ExpiresOn); d < 50*time.Minute || d > 61*time.Minute {
				t.Errorf("ExpiresOn in %v, want about an hour", d)
			}
			if tt.id != nil && c.Appid != tt.id.String() {
				t.Errorf("appid = %q, want %q", c.Appid, tt.id.String())
			}
			resp, b := e.do("POST", "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01",
				`{"metric":"ActualCost","timePeriod":{"start":"2026-11-01","end":"2026-11-02"}}`,
				map[string]string{"Authorization": "Bearer " + tok.Token})
			want := http.StatusAccepted
			if !armAudiences[tt.aud] {
				want = http.StatusUnauthorized
			}
			if resp.StatusCode != want {
				t.Errorf("create with the token: %d, want %d (%s)", resp.StatusCode, want, b)
			}
		})
	}

	t.Run("wrong header fails", func(t *testing.T) {
		t.Setenv("IDENTITY_HEADER", "wrong")
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); err == nil {
			t.Fatal("GetToken succeeded with a wrong X-IDENTITY-HEADER")
		}
	})
}
