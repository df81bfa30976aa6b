package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	echoOnce sync.Once
	echoPath string
	echoErr  error
)

// buildEchoHandler builds testdata/echohandler once per test binary.
func buildEchoHandler(t *testing.T) string {
	t.Helper()
	echoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "devhost-echo-")
		if err != nil {
			echoErr = err
			return
		}
		echoPath = filepath.Join(dir, "echohandler")
		out, err := exec.Command("go", "build", "-o", echoPath, "./testdata/echohandler").CombinedOutput()
		if err != nil {
			echoErr = err
			echoPath = string(out)
		}
	})
	if echoErr != nil {
		t.Fatalf("build echohandler: %v\n%s", echoErr, echoPath)
	}
	return echoPath
}

// echoRecord is one invocation the echo handler received.
type echoRecord struct {
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

func readEchoLog(t *testing.T, path string) []echoRecord {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []echoRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r echoRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("echo log line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// writeApp writes host.json and function folders into dir.
func writeApp(t *testing.T, dir, hostJSON string, functions map[string]string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "host.json"), []byte(hostJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, fj := range functions {
		if err := os.MkdirAll(filepath.Join(dir, "functions", name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "functions", name, "function.json"), []byte(fj), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// devhostRun is devhost running in the test process.
type devhostRun struct {
	base   string
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startDevhost runs devhost in-process until the test ends.
func startDevhost(t *testing.T, cfg runConfig) *devhostRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devhostRun{out: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	listening := make(chan string, 1)
	cfg.stdout = d.out
	cfg.onListening = func(base string) { listening <- base }
	go func() { d.done <- run(ctx, cfg) }()
	t.Cleanup(func() { d.stop(t) })
	select {
	case d.base = <-listening:
	case err := <-d.done:
		d.done <- err
		t.Fatalf("devhost stopped before listening: %v\n%s", err, d.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("devhost did not start\n%s", d.output())
	}
	return d
}

func (d *devhostRun) output() string {
	d.out.mu.Lock()
	defer d.out.mu.Unlock()
	return d.out.buf.String()
}

// stop cancels devhost, as SIGTERM does, and checks that it returns nil.
func (d *devhostRun) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("devhost returned %v", err)
		}
		d.done <- err
	case <-time.After(30 * time.Second):
		t.Errorf("devhost did not stop within 30 s")
	}
}

func (d *devhostRun) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(d.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

type statsBody struct {
	Functions map[string]functionStats `json:"functions"`
	Queues    map[string]queueStats    `json:"queues"`
}

func (d *devhostRun) waitStats(t *testing.T, what string, timeout time.Duration, cond func(statsBody) bool) statsBody {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var s statsBody
		d.get(t, "/admin/devhost/stats", &s)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stats %+v\n%s", what, s, d.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunWithHandlerProcess runs devhost with a real handler process:
// start-up line, timer on startup, HTTP trigger, stdout/stderr, a handler
// crash and restart, and a clean stop.
func TestRunWithHandlerProcess(t *testing.T) {
	exe := buildEchoHandler(t)
	app := t.TempDir()
	echoLog := filepath.Join(t.TempDir(), "echo.jsonl")
	writeApp(t, app, `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"not-used"}}}`, map[string]string{
		"PlanWindows": `{"bindings":[{"name":"myTimer","type":"timerTrigger","direction":"in","schedule":"0 0 0 1 1 *","runOnStartup":true}]}`,
		"EchoHttp":    `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","methods":["post"],"route":"echo/{id}"},{"name":"res","type":"http","direction":"out"}]}`,
		"CrashHttp":   `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in"},{"name":"res","type":"http","direction":"out"}]}`,
	})
	d := startDevhost(t, runConfig{appDir: app, port: 0, listen: "127.0.0.1", handler: exe,
		environ: append(os.Environ(), "ECHO_LOG="+echoLog)})

	d.waitStats(t, "the startup timer run", 10*time.Second, func(s statsBody) bool { return s.Functions["PlanWindows"].Succeeded == 1 })

	resp, err := http.Post(d.base+"/api/echo/42?x=1", "application/json", strings.NewReader(`{"hello":"world"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"hello":"world"}` || resp.Header.Get("X-Echo") != "1" {
		t.Errorf("POST /api/echo/42 = %d %q %v", resp.StatusCode, body, resp.Header)
	}

	// A crash fails the in-flight invocation (500) and the handler comes back.
	resp, err = http.Post(d.base+"/api/CrashHttp", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("crashing invocation = %d, want 500", resp.StatusCode)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Post(d.base+"/api/echo/1", "application/json", strings.NewReader(`{}`))
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the handler did not come back after a crash\n%s", d.output())
		}
		time.Sleep(100 * time.Millisecond)
	}

	recs := readEchoLog(t, echoLog)
	if len(recs) < 3 || recs[0].Path != "/PlanWindows" || recs[1].Path != "/EchoHttp" {
		t.Fatalf("echo log = %+v", recs)
	}
	var timer struct {
		Data map[string]struct {
			ScheduleStatus struct{ Last string }
			IsPastDue      bool
		}
	}
	if err := json.Unmarshal([]byte(recs[0].Body), &timer); err != nil || timer.Data["myTimer"].ScheduleStatus.Last != "0001-01-01T00:00:00" {
		t.Errorf("timer payload %s", recs[0].Body)
	}
	var httpReq struct {
		Data map[string]struct {
			URL    string `json:"Url"`
			Params map[string]string
			Query  map[string]string
		}
	}
	_ = json.Unmarshal([]byte(recs[1].Body), &httpReq)
	if r := httpReq.Data["req"]; r.Params["id"] != "42" || r.Query["x"] != "1" || !strings.HasSuffix(r.URL, "/api/echo/42?x=1") {
		t.Errorf("http payload %s", recs[1].Body)
	}

	d.stop(t)
	out := d.output()
	if n := strings.Count(out, "devhost listening on "); n != 1 {
		t.Errorf("%d listening lines, want exactly 1", n)
	}
	if !strings.Contains(out, "devhost listening on "+d.base+"\n") {
		t.Errorf("no listening line for %s", d.base)
	}
	for _, want := range []string{
		`{"msg":"echohandler listening"`,               // stdout passed through as is
		`"level":"ERROR","msg":"handler stderr"`,       // stderr logged as errors
		`"msg":"handler exited; in-flight invocations`, // crash noticed
		`"msg":"invocation","function":"PlanWindows"`,  // one line per invocation
		`"msg":"devhost stopped"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s\n%s", want, out)
		}
	}
	// Every devhost line other than the listening line is JSON.
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "devhost listening on ") && !json.Valid([]byte(line)) {
			t.Errorf("not a JSON line: %q", line)
		}
	}
}

// TestRunStopWaitsForInFlight stops devhost (as SIGTERM does) while an
// invocation runs: the invocation completes, then devhost returns nil.
func TestRunStopWaitsForInFlight(t *testing.T) {
	exe := buildEchoHandler(t)
	app := t.TempDir()
	writeApp(t, app, `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"`+exe+`"}}}`, map[string]string{
		"SlowHttp": `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in"},{"name":"res","type":"http","direction":"out"}]}`,
	})
	d := startDevhost(t, runConfig{appDir: app, port: 0, listen: "127.0.0.1", environ: os.Environ()})
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(d.base + "/api/SlowHttp")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(b)}
	}()
	d.waitStats(t, "the slow invocation to start", 10*time.Second, func(s statsBody) bool { return s.Functions["SlowHttp"].InFlight == 1 })
	start := time.Now()
	d.stop(t)
	r := <-got
	if r.err != nil || r.status != 200 || r.body != "slow done" {
		t.Errorf("in-flight request = %+v, want it to complete", r)
	}
	if el := time.Since(start); el > shutdownGrace {
		t.Errorf("stop took %s", el)
	}
	if !strings.Contains(d.output(), `"msg":"devhost stopped"`) {
		t.Errorf("output:\n%s", d.output())
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if echoErr == nil && echoPath != "" {
		_ = os.RemoveAll(filepath.Dir(echoPath))
	}
	os.Exit(code)
}
