package main

import (
	"errors"
	"net/http"
)

// POST /admin/devhost/kill-handler kills the running custom handler's
// process group with SIGKILL, as a crash or an out-of-memory kill would: its
// in-flight invocations fail (their messages come back after the queue's
// visibility timeout, their blobs at the next scan) and the supervisor
// starts a new handler, as the host restarts a dead worker. It answers
// {"pid": N} with the killed process id, or 409 when no handler is running
// (one is being restarted). It exists for fault tests (make chaos); the real
// host has no such endpoint.

// killer is a handler endpoint that can be killed on demand.
type killer interface {
	killNow() (int, error)
}

// errNoHandler reports that no handler process is running.
var errNoHandler = errors.New("no handler is running; it is being restarted")

func (s *server) serveKillHandler(w http.ResponseWriter, r *http.Request) {
	k, ok := s.h.handler.(killer)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this handler cannot be killed"})
		return
	}
	pid, err := k.killNow()
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	s.h.log.Warn("handler killed on request", "pid", pid)
	writeJSON(w, http.StatusOK, map[string]int{"pid": pid})
}

// killNow sends SIGKILL to the current handler's process group at once.
func (w *worker) killNow() (int, error) {
	w.mu.Lock()
	cur := w.cur
	w.mu.Unlock()
	if cur == nil || cur.cmd.Process == nil {
		return 0, errNoHandler
	}
	forceKill(cur.cmd)
	return cur.cmd.Process.Pid, nil
}
