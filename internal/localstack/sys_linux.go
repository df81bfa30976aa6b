package localstack

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
)

// sysProcAttr puts a component in its own process group and, on Linux, has
// the kernel kill it when this process dies without calling Close (a test
// binary that panics or times out, say).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// The parent-death signal fires when the thread that started the child
// exits, not the process, and the Go runtime may end threads. So every
// component is started from one goroutine locked to its thread for the life
// of the process.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// spawn starts cmd from the spawner thread.
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawnReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnReqs <- spawnReq{cmd, done}
	return <-done
}

// groupAlive reports whether any process of group pgid is still running.
// Zombies do not count: when a group's leader dies, its children go to
// init, and not every init (a container's PID 1, say) reaps them promptly.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	procs, ok := readProcs()
	if !ok {
		return true // no /proc: trust kill
	}
	for _, p := range procs {
		if p.pgrp == pgid && p.state != "Z" {
			return true
		}
	}
	return false
}

// descendantGroups returns the process groups, other than pid's own, of the
// running descendants of pid.
func descendantGroups(pid int) []int {
	procs, ok := readProcs()
	if !ok {
		return nil
	}
	children := map[int][]procStat{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p)
	}
	var groups []int
	queue := []int{pid}
	seen := map[int]bool{pid: true}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		for _, c := range children[parent] {
			if seen[c.pid] {
				continue
			}
			seen[c.pid] = true
			queue = append(queue, c.pid)
			if c.pgrp != pid && c.state != "Z" && !slices.Contains(groups, c.pgrp) {
				groups = append(groups, c.pgrp)
			}
		}
	}
	return groups
}

// procStat is what we use of /proc/PID/stat.
type procStat struct {
	pid, ppid, pgrp int
	state           string
}

// readProcs reads the stat of every process; ok is false without /proc.
func readProcs() (procs []procStat, ok bool) {
	names, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(names) == 0 {
		return nil, false
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		j := bytes.IndexByte(b, ' ')
		if i < 0 || j < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 3 {
			continue
		}
		pid, err1 := strconv.Atoi(string(b[:j]))
		ppid, err2 := strconv.Atoi(string(f[1]))
		pgrp, err3 := strconv.Atoi(string(f[2]))
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		procs = append(procs, procStat{pid: pid, ppid: ppid, pgrp: pgrp, state: string(f[0])})
	}
	return procs, true
}
