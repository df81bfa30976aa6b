package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/internal/pipeline"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// Every verb answers --help with its usage on stdout and exit code 0.
func TestHelpOfEveryVerb(t *testing.T) {
	for _, v := range verbs {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{v.Name, "--help"}, &out, &errOut); code != 0 {
			t.Errorf("%s --help: exit %d, stderr %s", v.Name, code, errOut.String())
		}
		if !strings.Contains(out.String(), "Usage: costsync "+v.Name) || !strings.Contains(out.String(), "Flags:") {
			t.Errorf("%s --help printed %q", v.Name, out.String())
		}
	}
}

// A bad command line is a usage error (exit 2) naming the problem.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ingest", "--scope", "subscriptions/x"}, "--from and --to are required"},
		{[]string{"ingest", "--from", "2026-01-01", "--to", "01/02/2026"}, "--to"},
		{[]string{"verify", "--from", "2026-01-01", "--to", "2026-01-31"}, "one --scope"},
		{[]string{"status", "extra"}, "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

// cli runs bin/costsync with the stack's settings, as a laptop would with
// its own: the identity (here costsim's managed identity through
// DefaultAzureCredential), the certificate, Cosmos DB and Cost Management.
type cli struct {
	t   *testing.T
	bin string
	env []string
}

func (c cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("costsync %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// TestVerbsOnTheLocalStack runs ingest, status and verify against the
// Cosmos DB emulator and costsim (which enforces the Cost Details quotas,
// scaled), and checks Cosmos against costsim's ground truth.
func TestVerbsOnTheLocalStack(t *testing.T) {
	bin, err := filepath.Abs("../../bin/costsync")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: run make build", bin)
		}
		t.Skipf("%s is missing: run make build", bin)
	}
	st := localstack.StartT(t, localstack.Options{
		Components:  localstack.Components{Cosmos: true, Costsim: true},
		CostsimArgs: []string{"-seed", "3", "-rows-per-day", "20", "-retry-after", "1", "-polls", "1", "-enforce-quota", "-quota-scale", fmt.Sprint(pipeline.LocalTimeScale)},
	})
	ctx := context.Background()
	cred, err := st.Credential()
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.NewCosmos(st.CosmosURL, cred, &store.CosmosOptions{EmulatorCompat: true,
		ClientOptions: &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: st.Transport()}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	env := os.Environ()
	env = append(env, st.Env...)
	for k, v := range pipeline.ScaledRates(pipeline.LocalTimeScale, 2500*time.Millisecond) {
		env = append(env, k+"="+v)
	}
	c := cli{t: t, bin: bin, env: env}

	const scope = "subscriptions/6a1f3c2e-9b7d-4e21-8c55-0f3e2d1a9b77"
	today := window.Day(time.Now())
	from := time.Date(today.Year(), today.Month()-1, 20, 0, 0, 0, 0, time.UTC)
	to := today.AddDate(0, 0, -1)
	fromS, toS := from.Format(window.DateLayout), to.Format(window.DateLayout)

	code, out, errOut := c.run("ingest", "--scope", scope, "--from", fromS, "--to", toS, "--progress", "200ms")
	if code != 0 {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("costsync ingest:\n%s%s", errOut, out)
	runID := regexp.MustCompile(`run-[0-9a-f]+`).FindString(out)
	if !strings.Contains(out, ": complete, 2 of 2 windows complete") || !strings.Contains(errOut, "windows complete") || runID == "" {
		t.Errorf("ingest output:\n%s\nprogress:\n%s", out, errOut)
	}
	days := window.Window{From: fromS, To: toS}.Days()
	p := &pipeline.Pipeline{Stack: st, Store: db}
	got, err := p.Compare(ctx, []string{scope}, "ActualCost", days)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, d := range got {
		rows += d.Rows
		if !d.Matches() {
			t.Errorf("%s %s: cosmos %d rows %s, source %d rows %s", d.Date, d.Currency, d.Rows, d.BilledCost, d.SourceRows, d.SourceCost)
		}
	}
	if rows == 0 {
		t.Fatal("nothing was ingested; the test proves nothing")
	}

	code, out, errOut = c.run("status", "--scope", scope, "--from", fromS, "--to", toS)
	t.Logf("costsync status:\n%s", out)
	if want := fmt.Sprintf("%d ingested, 0 stale, 0 missing, 0 failed", len(days)); code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "2 complete") {
		t.Errorf("status: exit %d, want %q in\n%s\n%s", code, want, out, errOut)
	}
	code, out, _ = c.run("status", "--scope", scope, "--run", runID)
	if code != 0 || !strings.Contains(out, "run "+runID+": complete") {
		t.Errorf("status --run: %d\n%s", code, out)
	}

	first := window.Split(scope, "ActualCost", from, to)[0]
	code, out, errOut = c.run("verify", "--scope", scope, "--from", first.From, "--to", first.To)
	if code != 0 || !strings.Contains(out, "ledger, cosmos, source agree") || !strings.Contains(out, "cosmos and the Query API agree") {
		t.Errorf("verify: exit %d\n%s\n%s", code, out, errOut)
	}
	// costsim restates a day of the window: the source no longer agrees.
	body := fmt.Sprintf(`{"scope":%q,"metric":"ActualCost","date":%q}`, scope, first.From)
	req, _ := http.NewRequest(http.MethodPost, st.CostsimURL+"/_sim/restate", strings.NewReader(body))
	resp, err := st.Transport().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("restate: %v %v", resp, err)
	}
	resp.Body.Close()
	code, out, _ = c.run("verify", "--scope", scope, "--from", first.From, "--to", first.To)
	t.Logf("costsync verify after a restatement:\n%s", out)
	if code != 1 || !strings.Contains(out, "DIFFERS") {
		t.Errorf("verify after a restatement: exit %d\n%s", code, out)
	}
	code, _, errOut = c.run("verify", "--scope", scope, "--from", "2020-01-01", "--to", "2020-01-31")
	if code != 1 || !strings.Contains(errOut, "no window") {
		t.Errorf("verify of an unknown window: exit %d %s", code, errOut)
	}
	code, _, errOut = c.run("ingest", "--scope", scope, "--from", "2020-01-01", "--to", toS)
	if code != 2 || !strings.Contains(errOut, "13 months") {
		t.Errorf("ingest beyond 13 months: exit %d %s", code, errOut)
	}
}
