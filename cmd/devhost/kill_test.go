//go:build unix

package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillHandler kills the handler through the admin endpoint twice: each
// time the process is gone, and the supervisor brings a new one (another
// pid) that serves invocations again.
func TestKillHandler(t *testing.T) {
	exe := buildEchoHandler(t)
	app := t.TempDir()
	writeApp(t, app, `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"`+exe+`"}}}`, map[string]string{
		"EchoHttp": `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","methods":["post"]},{"name":"res","type":"http","direction":"out"}]}`,
	})
	d := startDevhost(t, runConfig{appDir: app, port: 0, listen: "127.0.0.1", environ: os.Environ()})
	kill := func() int {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Post(d.base+"/admin/devhost/kill-handler", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				PID int `json:"pid"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && body.PID > 0 {
				return body.PID
			}
			if resp.StatusCode != http.StatusConflict || time.Now().After(deadline) {
				t.Fatalf("kill-handler = %d %+v\n%s", resp.StatusCode, body, d.output())
			}
			time.Sleep(50 * time.Millisecond) // the handler is being restarted
		}
	}
	served := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Post(d.base+"/api/EchoHttp", "application/json", strings.NewReader(`{}`))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the handler did not come back after a kill\n%s", d.output())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	served()
	first := kill()
	gone(t, first)
	served()
	second := kill()
	if second == first {
		t.Errorf("the second kill hit pid %d again: the handler was not restarted", first)
	}
	gone(t, second)
	served()
	if n := strings.Count(d.output(), `"msg":"handler killed on request"`); n != 2 {
		t.Errorf("%d kill log lines, want 2", n)
	}
}

// gone waits until process pid no longer exists.
func gone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs after SIGKILL", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
