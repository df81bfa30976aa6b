//go:build unix && !linux

package localstack

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts a component in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// spawn starts cmd.
func spawn(cmd *exec.Cmd) error { return cmd.Start() }

// groupAlive reports whether any process of group pgid still exists.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}

// descendantGroups is not implemented without /proc: only the component's
// own process group is signalled.
func descendantGroups(pid int) []int { return nil }
