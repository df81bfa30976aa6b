package localstack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	startTimeout = 30 * time.Second
	stopGrace    = 5 * time.Second
	tailLines    = 20
)

// readyLine recognises the line a component prints on stdout once it listens.
// Its pattern has two named groups: scheme and port.
type readyLine struct {
	re     *regexp.Regexp
	scheme string // the scheme the component must announce: "https" or "http"
}

// The ready lines of the components. Azurite's separate binaries say
// "successfully listens on", the combined azurite binary says "is
// successfully listening at"; both are accepted.
var (
	readyBlob    = readyLine{regexp.MustCompile(`Azurite Blob service (?:successfully listens on|is successfully listening at) (?P<scheme>https?)://[^\s/]+:(?P<port>\d+)\b`), "https"}
	readyQueue   = readyLine{regexp.MustCompile(`Azurite Queue service (?:successfully listens on|is successfully listening at) (?P<scheme>https?)://[^\s/]+:(?P<port>\d+)\b`), "https"}
	readyCosmos  = readyLine{regexp.MustCompile(`Ready to accept (?P<scheme>HTTPS?) connections at [^\s/]+:(?P<port>\d+)\b`), "https"}
	readyCostsim = readyLine{regexp.MustCompile(`costsim listening on (?P<scheme>https?)://[^\s/]+:(?P<port>\d+)\b`), "https"}
	readyDevhost = readyLine{regexp.MustCompile(`devhost listening on (?P<scheme>https?)://[^\s/]+:(?P<port>\d+)\b`), "http"}
)

// parse reports whether line is the ready line and, if so, the port it
// announces. A ready line with the wrong scheme (Azurite on http because it
// got no certificate, say) is an error.
func (r readyLine) parse(line string) (port int, ok bool, err error) {
	m := r.re.FindStringSubmatch(line)
	if m == nil {
		return 0, false, nil
	}
	scheme := strings.ToLower(m[r.re.SubexpIndex("scheme")])
	if scheme != r.scheme {
		return 0, true, fmt.Errorf("listens on %s, want %s: %q", scheme, r.scheme, strings.TrimSpace(line))
	}
	port, err = strconv.Atoi(m[r.re.SubexpIndex("port")])
	if err != nil || port <= 0 || port > 65535 {
		return 0, true, fmt.Errorf("bad port in ready line %q", strings.TrimSpace(line))
	}
	return port, true, nil
}

// spec describes how to run one component.
type spec struct {
	name    string
	path    string
	args    func(port int) []string // port 0: any free port
	env     []string                // nil: this process's environment
	dir     string                  // working directory
	ready   readyLine
	port    int           // port of the first start; 0: any free port
	timeout time.Duration // 0: startTimeout
}

// process is one running component: the leader of its own process group.
type process struct {
	name    string
	port    int
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the leader has been waited for
	waitErr error         // set before exited is closed
	drained chan struct{} // closed once the output pipe reached EOF
}

// startProcess runs sp in its own process group with stdout and stderr going
// to logPath (truncated unless appendLog) and waits until the ready line
// appears. Both streams share one pipe, so the log keeps the order in which
// lines were written; the ready line is looked for in that output. If the
// process exits first, times out or ctx ends, it is killed and the error
// carries the last lines of its log.
func startProcess(ctx context.Context, sp spec, port int, logPath string, appendLog bool) (*process, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if !appendLog {
		flags |= os.O_TRUNC
	}
	logFile, err := os.OpenFile(logPath, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", sp.name, err)
	}
	if appendLog {
		fmt.Fprintf(logFile, "--- localstack: restarting %s at %s ---\n", sp.name, time.Now().Format(time.RFC3339))
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", sp.name, err)
	}
	cmd := exec.Command(sp.path, sp.args(port)...)
	cmd.Dir = sp.dir
	cmd.Env = sp.env
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.SysProcAttr = sysProcAttr()
	if err := spawn(cmd); err != nil {
		pr.Close()
		pw.Close()
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", sp.name, err)
	}
	pw.Close() // the child holds the write end now

	p := &process{
		name:    sp.name,
		cmd:     cmd,
		logPath: logPath,
		exited:  make(chan struct{}),
		drained: make(chan struct{}),
	}
	type ready struct {
		port int
		err  error
	}
	readyc := make(chan ready, 1)
	go func() {
		// Copy the output to the log line by line, watching for the ready
		// line, and keep draining it after that so the child never blocks.
		defer close(p.drained)
		defer pr.Close()
		r := bufio.NewReader(pr)
		found := false
		for {
			line, err := r.ReadString('\n')
			if len(line) > 0 {
				logFile.WriteString(line)
				if !found {
					if port, ok, perr := sp.ready.parse(line); ok {
						found = true
						readyc <- ready{port, perr}
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
		<-p.drained
		logFile.Close()
	}()

	timeout := sp.timeout
	if timeout == 0 {
		timeout = startTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var failure error
	select {
	case r := <-readyc:
		if r.err == nil {
			p.port = r.port
			return p, nil
		}
		failure = r.err
	case <-p.exited:
		// Let the last lines reach the log before reading it.
		select {
		case <-p.drained:
		case <-time.After(time.Second):
		}
		failure = fmt.Errorf("exited before it was ready (%v)", p.waitErr)
	case <-timer.C:
		failure = fmt.Errorf("not ready after %s", timeout)
	case <-ctx.Done():
		failure = ctx.Err()
	}
	p.kill()
	return nil, fmt.Errorf("start %s: %w%s", sp.name, failure, logTail(logPath, tailLines))
}

// stop sends SIGTERM to the process group, waits up to grace for the group
// and the groups of its descendants to be gone, then sends them SIGKILL. It
// reports whether SIGKILL was needed.
//
// Descendants in groups of their own (devhost puts the handler in one) are
// found through /proc before the leader goes, so a component that dies
// without stopping its children leaves nothing behind.
func (p *process) stop(grace time.Duration) (killed bool, err error) {
	pgid := p.cmd.Process.Pid
	groups := p.groups(nil)
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("stop %s: %w", p.name, err)
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.exited:
		default:
			groups = p.groups(groups) // children started while stopping
		}
		if !p.running() && !anyAlive(groups) {
			return false, nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			p.killGroups(groups)
			return true, nil
		}
	}
}

// kill sends SIGKILL to the process group and to the groups of its
// descendants, as a crash of the whole tree would, waits for the leader, and
// waits up to a second for the rest to be gone.
func (p *process) kill() {
	p.killGroups(p.groups(nil))
}

func (p *process) killGroups(groups []int) {
	if p.running() {
		groups = p.groups(groups)
	}
	for _, g := range groups {
		syscall.Kill(-g, syscall.SIGKILL)
	}
	<-p.exited
	for range 50 {
		if !anyAlive(groups) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groups adds to known the process group of p and those of its descendants.
func (p *process) groups(known []int) []int {
	if !slices.Contains(known, p.cmd.Process.Pid) {
		known = append(known, p.cmd.Process.Pid)
	}
	for _, g := range descendantGroups(p.cmd.Process.Pid) {
		if !slices.Contains(known, g) {
			known = append(known, g)
		}
	}
	return known
}

// running reports whether the leader has not been waited for yet.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// anyAlive reports whether any of the process groups still runs.
func anyAlive(groups []int) bool {
	return slices.ContainsFunc(groups, groupAlive)
}

// logTail returns the last n lines of the log at path, formatted to follow
// an error message, or "" when there is nothing to show.
func logTail(path string, n int) string {
	lines := tail(path, n)
	if len(lines) == 0 {
		return " (log " + path + " is empty)"
	}
	return fmt.Sprintf("; last %d lines of %s:\n\t%s", len(lines), path, strings.Join(lines, "\n\t"))
}

// tail returns up to the last n lines of the file at path, reading at most
// its last 64 KiB.
func tail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const max = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return nil
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
