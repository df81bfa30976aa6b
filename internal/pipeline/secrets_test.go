package pipeline

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/internal/logscan"
	"github.com/costsync/costsync/internal/otlprecv"
	"github.com/costsync/costsync/shared/telemetry"
)

// TestNoSecretsInLogs runs the pipeline on the local stack while costsim
// throttles, fails, resets connections, fails reports, expires links and
// finally points its links at another host, then reads every log the stack
// wrote (the handler's, inside devhost's; devhost's; costsim's; the
// emulators') and searches them for bearer tokens (the JWTs costsim mints),
// SAS signatures and Authorization headers. None may be there. The
// handler's traces and metrics go to an OTLP receiver that writes every
// span and metric point into the logs folder: they are scanned too.
func TestNoSecretsInLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the local stack")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	dump, err := os.Create(filepath.Join(dir, "logs", "telemetry.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer dump.Close()
	recv, err := otlprecv.Start(&otlprecv.Options{Dump: dump})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	o := Options{Scopes: DefaultScopes, Days: 2, Env: map[string]string{telemetry.KeyEndpoint: recv.URL}}
	st := localstack.StartT(t, localstack.Options{
		Dir:        dir,
		Components: localstack.Components{Storage: true, Cosmos: true, Costsim: true, Devhost: true},
		CostsimArgs: []string{"-seed", "3", "-rows-per-day", "30", "-blob-rows", "20", "-retry-after", "1", "-polls", "1",
			"-faults", `{"throttleRate":0.15,"serverErrorRate":0.1,"resetRate":0.3,"failReportOnce":true,"expireLinksOnce":true}`},
		Env: Env(o),
	})
	ctx := context.Background()
	o.Stack = st
	p, err := StartPipeline(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	want := len(o.Scopes) * o.Days
	round := func() {
		t.Helper()
		base, err := p.Baseline(ctx, o.Scopes)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.FirePlan(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(ctx, o.Scopes, want, base, 4*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	round()
	// Links to another host: refused, and logged without their query.
	req, _ := http.NewRequest(http.MethodPost, st.CostsimURL+"/_sim/faults", strings.NewReader(`{"linkHost":"evil.example.com"}`))
	resp, err := st.Transport().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	round()

	// The scanner knows the tokens costsim mints.
	tok, err := p.Cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if kinds := logscan.Line(`{"token":"` + tok.Token + `"}`); len(kinds) == 0 {
		t.Fatalf("the scanner does not recognise costsim's tokens (%.20s…)", tok.Token)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recv.Close(); err != nil {
		t.Fatal(err)
	}
	leaks, stats, err := logscan.Dir(filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaks {
		t.Errorf("secret in a log: %s", l)
	}
	// The logs hold what the scan is for: handler invocations, costsim's
	// token, Cost Details and download requests, the failures, the refusal,
	// and a link whose query string was cut from an error.
	all := ""
	for _, name := range []string{"devhost.log", "costsim.log", "telemetry.log"} {
		b, err := os.ReadFile(filepath.Join(dir, "logs", name))
		if err != nil {
			t.Fatal(err)
		}
		all += string(b)
	}
	for _, w := range []string{`"function":"ProcessWindow"`, `"kind":"token"`, `"kind":"download"`, `"status":429`, `"reset":true`,
		"report failed", "report link expired", "refused link to https://evil.example.com/", "?REDACTED",
		`{"span":{`, `"name":"GET report.download"`, `"http.response.status_code":"429"`, `"error.type":"transport"`, `{"point":{"metric":"costsync.api.request.duration"`} {
		if !strings.Contains(all, w) {
			t.Errorf("the logs never show %s: the scan proves less than it should", w)
		}
	}
	t.Logf("%d log lines in %d files, %d secrets", stats.Lines, stats.Files, len(leaks))
}
