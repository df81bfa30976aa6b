package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Timings of the host's worker start-up (HttpWorkerOptions, DefaultHttpWorkerService).
const (
	readyPollInterval = 25 * time.Millisecond
	readyTimeout      = 30 * time.Second
	stopGrace         = 5 * time.Second
	maxRestartBackoff = 30 * time.Second
)

// workerConfig is how to start the custom handler.
type workerConfig struct {
	path    string
	args    []string
	dir     string
	env     []string // settings; the FUNCTIONS_* variables are added per start
	appRoot string
}

// worker runs the custom handler process, restarts it when it exits, and
// gives invocations the base URL of the ready process.
type worker struct {
	cfg workerConfig
	log *slog.Logger
	out *lockedWriter

	mu       sync.Mutex
	cur      *proc
	ready    chan struct{} // closed when cur is ready; replaced at each restart
	stopping bool
	stopCh   chan struct{} // closed by stop
	done     chan struct{} // closed when the supervisor has stopped
}

// proc is one run of the handler.
type proc struct {
	cmd    *exec.Cmd
	id     string
	base   string
	exited chan struct{}
	err    error // set before exited is closed
}

func newWorker(cfg workerConfig, log *slog.Logger, out *lockedWriter) *worker {
	return &worker{cfg: cfg, log: log, out: out, ready: make(chan struct{}), stopCh: make(chan struct{}), done: make(chan struct{})}
}

// resolveHandler finds the executable as the host does: relative to the
// app root when that file exists, else on PATH.
func resolveHandler(appDir, path string) (string, error) {
	if path == "" {
		return "", errors.New("host.json has no customHandler.description.defaultExecutablePath (or pass -handler)")
	}
	if !filepath.IsAbs(path) {
		candidate := filepath.Join(appDir, path)
		if _, err := os.Stat(candidate); err == nil {
			return filepath.Abs(candidate)
		}
	} else if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	found, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("custom handler %s: not found in the app folder nor on PATH", path)
	}
	return found, nil
}

// start launches the handler and waits until it answers; then a supervisor
// restarts it whenever it exits, until stop.
func (w *worker) start(ctx context.Context) error {
	p, err := w.launch(ctx)
	if err != nil {
		close(w.done)
		return err
	}
	w.setReady(p)
	go w.supervise(p)
	return nil
}

func (w *worker) setReady(p *proc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cur = p
	close(w.ready)
}

// launch starts one handler process and waits for readiness.
func (w *worker) launch(ctx context.Context) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("find a port for the handler: %w", err)
	}
	id := newUUID()
	cmd := exec.Command(w.cfg.path, w.cfg.args...)
	cmd.Dir = w.cfg.dir
	cmd.Env = append(append([]string{}, w.cfg.env...),
		"FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port),
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID="+id,
		"FUNCTIONS_HTTPWORKER_PORT="+strconv.Itoa(port),
		"FUNCTIONS_HTTPWORKER_ID="+id,
		"FUNCTIONS_APP_ROOT_PATH="+w.cfg.appRoot,
	)
	setProcessGroup(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("handler stdout: %w", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("handler stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start handler %s: %w", w.cfg.path, err)
	}
	p := &proc{cmd: cmd, id: id, base: "http://127.0.0.1:" + strconv.Itoa(port), exited: make(chan struct{})}
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); w.passStdout(stdout) }()
	go func() { defer pipes.Done(); w.passStderr(stderr, id) }()
	go func() {
		pipes.Wait() // Wait must follow the pipe reads
		p.err = cmd.Wait()
		close(p.exited)
	}()
	w.log.Info("handler started", "path", w.cfg.path, "pid", cmd.Process.Pid, "port", port, "worker_id", id)

	if err := waitReady(ctx, p); err != nil {
		w.kill(p)
		return nil, err
	}
	w.log.Info("handler ready", "worker_id", id)
	return p, nil
}

// waitReady polls GET / every 25 ms: any HTTP answer means ready.
func waitReady(ctx context.Context, p *proc) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/", nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("handler did not answer on %s within %s", p.base, readyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("handler exited before it was ready: %v", p.err)
		case <-time.After(readyPollInterval):
		}
	}
}

// supervise waits for the process to exit and starts a new one with
// backoff, as the host restarts a worker.
func (w *worker) supervise(p *proc) {
	defer close(w.done)
	backoff := time.Second
	for {
		started := time.Now()
		<-p.exited
		w.mu.Lock()
		stopping := w.stopping
		if !stopping {
			w.cur = nil
			w.ready = make(chan struct{})
		}
		w.mu.Unlock()
		if stopping {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		w.log.Error("handler exited; in-flight invocations fail; restarting", "worker_id", p.id, "error", errString(p.err), "restart_in", backoff.String())
		for {
			select {
			case <-w.stopCh:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, maxRestartBackoff)
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-w.stopCh:
					cancel()
				case <-ctx.Done():
				}
			}()
			next, err := w.launch(ctx)
			cancel()
			if err == nil {
				p = next
				w.mu.Lock()
				if w.stopping {
					w.mu.Unlock()
					w.kill(p)
					<-p.exited
					return
				}
				w.cur = p
				close(w.ready)
				w.mu.Unlock()
				break
			}
			w.log.Error("handler restart failed", "error", err.Error(), "retry_in", backoff.String())
		}
	}
}

// baseURL waits for a ready handler and returns its base URL.
func (w *worker) baseURL(ctx context.Context) (string, error) {
	for {
		w.mu.Lock()
		cur, ready, stopping := w.cur, w.ready, w.stopping
		w.mu.Unlock()
		if stopping {
			return "", errors.New("devhost is stopping")
		}
		if cur != nil {
			return cur.base, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for the handler: %w", ctx.Err())
		case <-ready:
		}
	}
}

// restart kills the current process (after a function timeout); the
// supervisor starts a new one.
func (w *worker) restart(reason string) {
	w.mu.Lock()
	cur := w.cur
	w.mu.Unlock()
	if cur == nil {
		return
	}
	w.log.Warn("restarting the handler", "reason", reason, "worker_id", cur.id)
	w.kill(cur)
}

// kill sends SIGTERM, then SIGKILL after a grace period.
func (w *worker) kill(p *proc) {
	terminate(p.cmd)
	go func() {
		select {
		case <-p.exited:
		case <-time.After(stopGrace):
			forceKill(p.cmd)
		}
	}()
}

// stop terminates the handler (SIGTERM, then SIGKILL) and the supervisor.
func (w *worker) stop() {
	w.mu.Lock()
	if w.stopping {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.stopping = true
	close(w.stopCh)
	cur := w.cur
	w.mu.Unlock()
	if cur != nil {
		terminate(cur.cmd)
		select {
		case <-cur.exited:
		case <-time.After(stopGrace):
			forceKill(cur.cmd)
			<-cur.exited
		}
	}
	<-w.done
}

// passStdout copies the handler's stdout lines to devhost's stdout.
func (w *worker) passStdout(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		w.out.writeLine(sc.Bytes())
	}
}

// passStderr logs the handler's stderr lines as errors, as the host does.
func (w *worker) passStderr(r io.Reader, id string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		w.log.Error("handler stderr", "worker_id", id, "line", sc.Text())
	}
}

// freePort asks the kernel for an unused TCP port, as WorkerUtilities.GetUnusedTcpPort.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// lockedWriter serialises whole lines from the logger and the handler's
// stdout, so that they never interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) writeLine(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := make([]byte, 0, len(b)+1)
	line = append(append(line, b...), '\n')
	_, _ = l.w.Write(line)
}
