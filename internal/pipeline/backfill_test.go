package pipeline

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/shared/status"
	"github.com/costsync/costsync/shared/window"
)

// chromium is Debian's package, which `make test` installs when missing.
const chromium = "/usr/bin/chromium"

// TestBackfillThroughIngestAPI requests a 13-month backfill of the three
// simulated scopes through devhost's POST /api/ingest while costsim throttles
// (20 % of calls answer 429 or fail, and it enforces the Cost Details
// quotas, scaled so that an hour lasts 15 s). It must end with every window
// complete, every day of every scope covered, and Cosmos equal to costsim's
// ground truth. Then the coverage page, rendered by headless Chromium, must
// show the same counts as the coverage JSON; its screenshot is kept in
// .stack/artifacts/.
func TestBackfillThroughIngestAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the local stack")
	}
	// Quota time runs 240 times faster than real time: an hour of quota
	// (10 report requests per scope) lasts 15 s. Queue polling delays a
	// message that waits for the quota; keep it small next to that.
	const scale = 240
	env := ScaledRates(scale, time.Second)
	env["AzureFunctionsJobHost__extensions__queues__maxPollingInterval"] = "00:00:00.250"
	o := Options{Scopes: DefaultScopes, Days: 1, Env: env}
	st := localstack.StartT(t, localstack.Options{
		Components: localstack.Components{Storage: true, Cosmos: true, Costsim: true, Devhost: true},
		CostsimArgs: []string{"-seed", "9", "-rows-per-day", "3", "-retry-after", "1", "-polls", "1",
			"-enforce-quota", "-quota-scale", strconv.Itoa(scale), "-faults", `{"throttleRate":0.15,"serverErrorRate":0.05}`},
		Env: Env(o),
	})
	ctx := context.Background()
	o.Stack = st
	o.Progress = testLog{t, time.Now()}
	p, err := StartPipeline(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	today := window.Day(time.Now())
	from, to := window.Oldest(today), today.AddDate(0, 0, -1)
	months := len(window.Split("", "", from, to))

	run, err := p.Ingest(ctx, nil, from, to, "backfill-test")
	if err != nil {
		t.Fatal(err)
	}
	if run.Windows != 3*months || !strings.HasPrefix(run.StatusURL, st.DevhostURL+"/api/runs/run-") {
		t.Fatalf("ingest answered %+v, want %d windows and a status URL on devhost", run, 3*months)
	}
	again, err := p.Ingest(ctx, nil, from, to, "backfill-test")
	if err != nil || again.RunID != run.RunID || !again.Existing {
		t.Fatalf("the same idempotency key answered %+v, %v; want run %s", again, err, run.RunID)
	}
	pr, err := p.WaitRun(ctx, run.StatusURL, 6*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if pr.State != status.RunComplete || pr.Complete != 3*months {
		t.Fatalf("run %s ended %s: %d of %d complete, errors %v", pr.ID, pr.State, pr.Complete, pr.Total, pr.Errors)
	}
	stats, err := p.SimStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("costsim: %d throttled (%d by its quotas), %d server errors", stats.Throttled, stats.QuotaRejected, stats.ServerErrors)
	if stats.Throttled == 0 {
		t.Error("costsim throttled nothing: the test proves nothing about throttling")
	}

	t.Logf("%5.1fs run complete; comparing Cosmos with costsim", time.Since(o.Progress.(testLog).start).Seconds())
	days := window.Window{From: from.Format(window.DateLayout), To: to.Format(window.DateLayout)}.Days()
	got, err := p.Compare(ctx, o.Scopes, "ActualCost", days)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, d := range got {
		covered[d.Scope+" "+d.Date] = true
		if !d.Matches() {
			t.Errorf("%s %s %s: cosmos %d rows %s, source %d rows %s", d.Scope, d.Date, d.Currency, d.Rows, d.BilledCost, d.SourceRows, d.SourceCost)
		}
	}
	if len(covered) != 3*len(days) {
		t.Errorf("%d scope-days hold documents, want every day of every scope (%d)", len(covered), 3*len(days))
	}

	cov, err := p.Coverage(ctx, "", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if want := (status.Counts{Ingested: 3 * len(days)}); cov.Counts != want {
		t.Errorf("coverage counts %+v, want %+v", cov.Counts, want)
	}
	t.Logf("%5.1fs compared; rendering the coverage page", time.Since(o.Progress.(testLog).start).Seconds())
	checkCoveragePage(t, p, from, to, cov)
}

// checkCoveragePage renders the coverage page in headless Chromium and
// checks that it shows the JSON's counts, per scope and in total.
func checkCoveragePage(t *testing.T, p *Pipeline, from, to time.Time, cov *Coverage) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: make test installs it (apt-get install -y chromium)", chromium)
		}
		t.Skipf("%s is missing: run make chromium", chromium)
	}
	pageURL := p.CoverageURL("", from, to, "html")
	dom := runChromium(t, "--dump-dom", pageURL)
	if !strings.Contains(dom, "costsync coverage") {
		t.Fatalf("chromium rendered %.300s", dom)
	}
	// Each scope's section, its count badges and its day cells.
	sections := regexp.MustCompile(`(?s)<section class="scope" data-scope="([^"]+)" data-metric="([^"]+)">(.*?)</section>`).FindAllStringSubmatch(dom, -1)
	if len(sections) != len(cov.Scopes) {
		t.Fatalf("the page shows %d scopes, the JSON %d", len(sections), len(cov.Scopes))
	}
	badge := func(html string, s status.DayState) int {
		m := regexp.MustCompile(`class="count[^"]*" data-state="` + string(s) + `">(\d+)<`).FindStringSubmatch(html)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	for i, sec := range sections {
		c := cov.Scopes[i]
		if sec[1] != c.Scope || sec[2] != c.Metric {
			t.Errorf("section %d is %s %s, the JSON's %s %s", i, sec[1], sec[2], c.Scope, c.Metric)
		}
		for _, s := range status.States {
			cells := strings.Count(sec[3], `data-state="`+string(s)+`" style=`)
			if b := badge(sec[3], s); cells != c.Counts.Of(s) || b != c.Counts.Of(s) {
				t.Errorf("%s: the page shows %d %s day cells and says %d, the JSON %d", c.Scope, cells, s, b, c.Counts.Of(s))
			}
		}
	}
	for _, s := range status.States {
		m := regexp.MustCompile(`class="count total" data-state="` + string(s) + `">(\d+)<`).FindStringSubmatch(dom)
		if m == nil || m[1] != strconv.Itoa(cov.Counts.Of(s)) {
			t.Errorf("the page's total of %s is %v, the JSON's %d", s, m, cov.Counts.Of(s))
		}
	}

	dir := artifactsDir(t)
	shot := filepath.Join(dir, "coverage.png")
	_ = os.Remove(shot)
	runChromium(t, "--screenshot="+shot, "--window-size=1500,2600", pageURL)
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "coverage.html"), []byte(dom), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("coverage page: %s (and coverage.html)", shot)
}

// runChromium runs headless Chromium with a fresh profile and returns its
// stdout.
func runChromium(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// artifactsDir is where the test run keeps its artifacts: .stack/artifacts
// at the repository root, or $COSTSYNC_ARTIFACTS.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("COSTSYNC_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".stack", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// testLog writes progress lines to the test log with the time since start.
type testLog struct {
	t     *testing.T
	start time.Time
}

func (l testLog) Write(b []byte) (int, error) {
	l.t.Logf("%5.1fs %s", time.Since(l.start).Seconds(), strings.TrimSpace(string(b)))
	return len(b), nil
}
