package localstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadyLineParse(t *testing.T) {
	tests := []struct {
		name     string
		ready    readyLine
		line     string
		wantOK   bool
		wantPort int
		wantErr  bool
	}{
		{"blob https", readyBlob, "Azurite Blob service successfully listens on https://127.0.0.1:37201\n", true, 37201, false},
		{"blob combined wording", readyBlob, "Azurite Blob service is successfully listening at https://127.0.0.1:10000", true, 10000, false},
		{"blob on http", readyBlob, "Azurite Blob service successfully listens on http://127.0.0.1:38647", true, 0, true},
		{"blob starting", readyBlob, "Azurite Blob service is starting on 127.0.0.1:0", false, 0, false},
		{"blob memory line", readyBlob, "In-memory extent storage is enabled with a limit of 12052.78 MB (12638251008 bytes, 50% of total memory).", false, 0, false},
		{"queue line for blob", readyBlob, "Azurite Queue service successfully listens on https://127.0.0.1:33063", false, 0, false},
		{"queue https", readyQueue, "Azurite Queue service successfully listens on https://127.0.0.1:33063", true, 33063, false},
		{"queue combined wording", readyQueue, "Azurite Queue service is successfully listening at https://127.0.0.1:10001", true, 10001, false},
		{"cosmos https", readyCosmos, "Ready to accept HTTPS connections at 127.0.0.1:44711", true, 44711, false},
		{"cosmos http", readyCosmos, "Ready to accept HTTP connections at 127.0.0.1:44711", true, 0, true},
		{"costsim", readyCostsim, "costsim listening on https://127.0.0.1:45001", true, 45001, false},
		{"costsim log line", readyCostsim, `{"time":"2026-11-22T12:00:00Z","level":"INFO","msg":"request"}`, false, 0, false},
		{"devhost", readyDevhost, "devhost listening on http://127.0.0.1:7071", true, 7071, false},
		{"devhost on https", readyDevhost, "devhost listening on https://127.0.0.1:7071", true, 0, true},
		{"port out of range", readyDevhost, "devhost listening on http://127.0.0.1:70710", true, 0, true},
		{"empty", readyCosmos, "", false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, ok, err := tt.ready.parse(tt.line)
			if ok != tt.wantOK || port != tt.wantPort || (err != nil) != tt.wantErr {
				t.Errorf("parse(%q) = %d, %v, %v; want %d, %v, error %v", tt.line, port, ok, err, tt.wantPort, tt.wantOK, tt.wantErr)
			}
		})
	}
}

// shSpec runs a shell script as a component whose ready line is the
// costsim one.
func shSpec(t *testing.T, script string, timeout time.Duration) spec {
	t.Helper()
	return spec{
		name:    "fake",
		path:    "/bin/sh",
		args:    func(port int) []string { return []string{"-c", script, "fake", strconv.Itoa(port)} },
		dir:     t.TempDir(),
		ready:   readyCostsim,
		timeout: timeout,
	}
}

func TestStartProcessReady(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "fake.log")
	// The script starts a child in its group, prints noise on both streams,
	// then the ready line with the port it was given, then keeps writing.
	sp := shSpec(t, `sleep 60 & echo starting; echo warming up >&2; echo "costsim listening on https://127.0.0.1:$1"; echo after; exec sleep 60`, 10*time.Second)
	p, err := startProcess(context.Background(), sp, 4242, logPath, false)
	if err != nil {
		t.Fatal(err)
	}
	if p.port != 4242 {
		t.Errorf("port = %d, want 4242", p.port)
	}
	pgid := p.cmd.Process.Pid
	killed, err := p.stop(5 * time.Second)
	if err != nil || killed {
		t.Errorf("stop = %v, %v; want a clean stop", killed, err)
	}
	if groupAlive(pgid) {
		t.Error("process group still alive after stop")
	}
	<-p.drained
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"starting\n", "warming up\n", "costsim listening on https://127.0.0.1:4242\n", "after\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("log lacks %q; log:\n%s", want, b)
		}
	}
}

func TestStartProcessFailures(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		timeout time.Duration
		want    []string
		notWant []string
	}{
		{
			name:   "exits before ready",
			script: `for i in $(seq 1 30); do echo line $i; done; echo fatal: no such flag >&2; exit 3`,
			want:   []string{"exited before it was ready", "exit status 3", "last 20 lines", "line 30", "line 12", "fatal: no such flag"},
			// 31 lines in all, so line 11 and earlier are cut.
			notWant: []string{"line 11\n"},
		},
		{
			name:    "never ready",
			script:  `echo waiting; exec sleep 60`,
			timeout: 300 * time.Millisecond,
			want:    []string{"not ready after 300ms", "waiting"},
		},
		{
			name:   "wrong scheme",
			script: `echo "costsim listening on http://127.0.0.1:$1"; exec sleep 60`,
			want:   []string{"listens on http, want https"},
		},
		{
			name:   "silent exit",
			script: `exit 0`,
			want:   []string{"exited before it was ready", "is empty"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			logPath := filepath.Join(t.TempDir(), "fake.log")
			p, err := startProcess(context.Background(), shSpec(t, tt.script, timeout), 5555, logPath, false)
			if err == nil {
				p.kill()
				t.Fatal("startProcess succeeded, want an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "start fake: ") {
				t.Errorf("error %q does not start with the component", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(msg+"\n", w) {
					t.Errorf("error has %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "fake.log")
	sp := shSpec(t, `trap '' TERM; echo "costsim listening on https://127.0.0.1:$1"; while :; do sleep 1; done`, 10*time.Second)
	p, err := startProcess(context.Background(), sp, 1, logPath, false)
	if err != nil {
		t.Fatal(err)
	}
	pgid := p.cmd.Process.Pid
	begin := time.Now()
	killed, err := p.stop(300 * time.Millisecond)
	if err != nil || !killed {
		t.Errorf("stop = %v, %v; want killed", killed, err)
	}
	if d := time.Since(begin); d < 300*time.Millisecond {
		t.Errorf("stop took %s, want at least the grace period", d)
	}
	if groupAlive(pgid) {
		t.Error("process group still alive after stop")
	}
}

func TestDescendantGroups(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("descendant process groups are found through /proc on Linux only")
	}
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid is not installed")
	}
	// The component starts a child in a session and group of its own, as
	// devhost does with the handler, and does not stop it on SIGTERM.
	for _, stop := range []bool{false, true} {
		t.Run(map[bool]string{false: "kill", true: "stop"}[stop], func(t *testing.T) {
			dir := t.TempDir()
			pidFile := filepath.Join(dir, "child.pid")
			sp := shSpec(t, `setsid sleep 60 & echo $! > `+pidFile+`; echo "costsim listening on https://127.0.0.1:$1"; exec sleep 60`, 10*time.Second)
			p, err := startProcess(context.Background(), sp, 1, filepath.Join(dir, "fake.log"), false)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(pidFile)
			if err != nil {
				p.kill()
				t.Fatal(err)
			}
			child, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				p.kill()
				t.Fatal(err)
			}
			// The child may not have called setsid yet.
			var groups []int
			for range 100 {
				if groups = p.groups(nil); slices.Contains(groups, child) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !slices.Contains(groups, child) {
				t.Errorf("groups = %v, want the child's group %d among them", groups, child)
			}
			if stop {
				killed, err := p.stop(300 * time.Millisecond)
				if err != nil || !killed {
					t.Errorf("stop = %v, %v; want killed after the grace period", killed, err)
				}
			} else {
				p.kill()
			}
			if groupAlive(child) {
				syscall.Kill(-child, syscall.SIGKILL)
				t.Errorf("child group %d still alive", child)
			}
		})
	}
}

func TestChildEnviron(t *testing.T) {
	base := []string{
		"PATH=/usr/bin", "HOME=/home/x",
		"AZURE_CLIENT_ID=abc", "AZURE_TOKEN_CREDENTIALS=", "IDENTITY_ENDPOINT=http://old", "MSI_ENDPOINT=http://msi",
		"AzureWebJobsStorage=UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName=real",
		"COSTSYNC_COSMOS_ENDPOINT=https://real.documents.azure.com/", "COSTSYNC_SCOPES=/subscriptions/1",
		"AZURE", "SSL_CERT_FILE=/etc/ssl/x.pem",
	}
	settings := []string{"SSL_CERT_FILE=/stack/cert.pem", "COSTSYNC_COSMOS_ENDPOINT=https://127.0.0.1:1/"}
	got := childEnviron(base, settings)
	want := []string{
		"PATH=/usr/bin", "HOME=/home/x", "COSTSYNC_SCOPES=/subscriptions/1", "AZURE",
		"SSL_CERT_FILE=/stack/cert.pem", "COSTSYNC_COSMOS_ENDPOINT=https://127.0.0.1:1/",
	}
	if !slices.Equal(got, want) {
		t.Errorf("childEnviron:\n got %q\nwant %q", got, want)
	}
}

func TestSettings(t *testing.T) {
	s := &Stack{
		CertFile:         "/d/certs/cert.pem",
		BlobURL:          "https://127.0.0.1:1001/devstoreaccount1",
		QueueURL:         "https://127.0.0.1:1002/devstoreaccount1",
		CosmosURL:        "https://127.0.0.1:1003/",
		CostsimURL:       "https://127.0.0.1:1004",
		IdentityEndpoint: "https://127.0.0.1:1004/msi/token",
		IdentityHeader:   "secret",
	}
	got := s.settings(Options{Env: map[string]string{
		"COSTSYNC_SCOPES":          "/subscriptions/1",
		"COSTSYNC_COSMOS_EMULATOR": "false",
		"A_FIRST":                  "1",
	}})
	want := []string{
		"SSL_CERT_FILE=/d/certs/cert.pem",
		"IDENTITY_ENDPOINT=https://127.0.0.1:1004/msi/token",
		"IDENTITY_HEADER=secret",
		"AzureWebJobsStorage__blobServiceUri=https://127.0.0.1:1001/devstoreaccount1",
		"AzureWebJobsStorage__queueServiceUri=https://127.0.0.1:1002/devstoreaccount1",
		"AzureWebJobsStorage__credential=managedidentity",
		"COSTSYNC_COSMOS_ENDPOINT=https://127.0.0.1:1003/",
		"COSTSYNC_COSMOS_EMULATOR=false",
		"COSTSYNC_ARM_ENDPOINT=https://127.0.0.1:1004",
		"COSTSYNC_ALLOWED_HOSTS=127.0.0.1:1004",
		"A_FIRST=1",
		"COSTSYNC_SCOPES=/subscriptions/1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("settings:\n got %q\nwant %q", got, want)
	}

	// Only what was started.
	s = &Stack{CertFile: "/c.pem", CosmosURL: "https://127.0.0.1:1003/"}
	got = s.settings(Options{})
	want = []string{"SSL_CERT_FILE=/c.pem", "COSTSYNC_COSMOS_ENDPOINT=https://127.0.0.1:1003/", "COSTSYNC_COSMOS_EMULATOR=true"}
	if !slices.Equal(got, want) {
		t.Errorf("settings with Cosmos only:\n got %q\nwant %q", got, want)
	}
}

func TestStartMissingPrerequisites(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/x\n"), 0o644)
	_, err := Start(context.Background(), Options{
		RepoRoot:   root,
		Components: Components{Storage: true, Cosmos: true, Costsim: true, Devhost: true},
	})
	var missing *missingError
	if !errors.As(err, &missing) {
		t.Fatalf("Start = %v, want a missing-prerequisite error", err)
	}
	msg := err.Error()
	for _, w := range []string{
		"azurite-blob: run make deps", "azurite-queue: run make deps", "cosmos-tls.js",
		"@vercel/cosmosdb-server", "bin/costsim: run make build (go build -o bin/costsim ./cmd/costsim)",
		"bin/devhost", "bin/handler",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
}

// recordTB records how StartT ends a test instead of ending it.
type recordTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordTB) Helper() {}

func (r *recordTB) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recordTB) Fatal(args ...any) {
	r.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

func TestStartTMissingPrerequisites(t *testing.T) {
	if testing.Short() {
		t.Skip("StartT skips in -short mode before it checks anything")
	}
	root := t.TempDir()
	for _, tt := range []struct {
		ci       string
		wantSkip bool
	}{{"", true}, {"true", false}} {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recordTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				StartT(r, Options{RepoRoot: root, Components: Components{Storage: true}})
			}()
			<-done
			got := r.failed
			if tt.wantSkip {
				got = r.skipped
			}
			if !strings.Contains(got, "run make deps") {
				t.Errorf("skipped %q, failed %q; want the %s to name make deps", r.skipped, r.failed, map[bool]string{true: "skip", false: "failure"}[tt.wantSkip])
			}
		})
	}
}
