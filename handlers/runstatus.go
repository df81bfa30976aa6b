package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/costsync/costsync/shared/status"
	"github.com/costsync/costsync/shared/store"
)

// runStatus is GET /api/runs/{id}: an on-demand run's windows, their
// states, its progress and its errors, read from the ledger.
func (s *Server) runStatus(ctx context.Context, c *call) (*outcome, error) {
	h, err := c.req.HTTPTrigger("req")
	if err != nil {
		return nil, permanent(err)
	}
	id := strings.TrimSpace(h.Params["id"])
	if !strings.HasPrefix(id, "run-") || strings.ContainsAny(id, `/\?#`) {
		return rejected(c, "run id %q: want the runId that POST /api/ingest answered (run-…)", id)
	}
	p, err := s.runProgress(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return answer(http.StatusNotFound, map[string]string{"error": "no run " + id}), nil
	}
	if err != nil {
		return nil, err
	}
	c.note("run_id", id, "state", p.State, "complete", p.Complete, "failed", p.Failed, "pending", p.Pending)
	return answer(http.StatusOK, p), nil
}

// runProgress reads a run and its windows.
func (s *Server) runProgress(ctx context.Context, id string) (*status.Progress, error) {
	r, err := s.d.Store.GetRun(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, retryable(fmt.Errorf("read run %s: %w", id, err))
	}
	windows := map[string]*store.Window{}
	for _, scope := range r.Request.Scopes {
		ws, err := s.d.Store.ListWindows(ctx, scope)
		if err != nil {
			return nil, retryable(fmt.Errorf("read windows of %s: %w", scope, err))
		}
		for i := range ws {
			windows[ws[i].ID] = &ws[i]
		}
	}
	p := status.Run(r, windows)
	return &p, nil
}

// answer is an http output with a JSON body.
func answer(code int, body any) *outcome {
	return &outcome{outputs: map[string]any{"res": jsonResponse(code, body)}}
}

// rejected answers 400 with a message naming the problem: bad input is
// permanent, and the invocation succeeds with that answer.
func rejected(c *call, format string, args ...any) (*outcome, error) {
	msg := fmt.Sprintf(format, args...)
	c.note("outcome_detail", "rejected: "+msg)
	return answer(http.StatusBadRequest, map[string]string{"error": msg}), nil
}
