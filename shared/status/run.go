package status

import (
	"time"

	"github.com/costsync/costsync/shared/store"
)

// RunState is where an on-demand run stands.
type RunState string

// A run is running while any window is pending, complete when every
// window is, failed when none is pending and some failed.
const (
	RunRunning  RunState = "running"
	RunComplete RunState = "complete"
	RunFailed   RunState = "failed"
)

// RunWindow is one window of a run and how it stands for the run.
type RunWindow struct {
	store.RunWindow
	// State is the window's state for this run: "queued" until an attempt
	// made for the run starts, then the ledger's state.
	State       string                `json:"state"`
	Rows        int64                 `json:"rows"`
	Totals      []store.CurrencyTotal `json:"totals,omitempty"`
	Attempts    int                   `json:"attempts"`
	Throttles   int                   `json:"throttles"`
	LastSuccess time.Time             `json:"lastSuccess,omitzero"`
	Errors      []string              `json:"errors,omitempty"`
}

// Progress is a run's progress.
type Progress struct {
	ID             string           `json:"id"`
	State          RunState         `json:"state"`
	IdempotencyKey string           `json:"idempotencyKey,omitempty"`
	Request        store.RunRequest `json:"request"`
	CreatedAt      time.Time        `json:"createdAt"`
	Enqueued       bool             `json:"enqueued"`
	Total          int              `json:"total"`
	Complete       int              `json:"complete"`
	Failed         int              `json:"failed"`
	Pending        int              `json:"pending"`
	// Percent is the share of windows complete or failed.
	Percent float64     `json:"percent"`
	Rows    int64       `json:"rows"`
	Windows []RunWindow `json:"windows"`
	// Errors are the latest error of each failed window.
	Errors []string `json:"errors,omitempty"`
}

// Run reads a run's progress from its windows' ledger documents (by id;
// a window without a document has not started). A window counts for the
// run once an attempt that began after the run was created succeeded or
// failed: generations are the request times of attempts.
func Run(r *store.Run, windows map[string]*store.Window) Progress {
	p := Progress{ID: r.ID, IdempotencyKey: r.IdempotencyKey, Request: r.Request, CreatedAt: r.CreatedAt, Enqueued: r.Enqueued, Total: len(r.Windows)}
	since := r.CreatedAt.UnixMilli()
	for _, rw := range r.Windows {
		out := RunWindow{RunWindow: rw, State: string(store.StateQueued)}
		w := windows[rw.WindowID]
		if w != nil {
			out.Attempts, out.Throttles, out.LastSuccess, out.Errors = w.Attempts, w.Throttles, w.LastSuccessAt, w.Errors
		}
		switch {
		case w == nil:
			p.Pending++
		case w.SuccessGeneration >= since:
			out.State, out.Rows, out.Totals = string(store.StateComplete), w.Rows, w.Totals
			p.Complete++
			p.Rows += w.Rows
		case w.State == store.StateFailed && (w.Generation >= since || !w.UpdatedAt.Before(r.CreatedAt)):
			out.State = string(store.StateFailed)
			p.Failed++
			if n := len(w.Errors); n > 0 {
				p.Errors = append(p.Errors, rw.Scope+" "+rw.From+".."+rw.To+": "+w.Errors[n-1])
			}
		case w.Generation >= since:
			out.State = string(w.State)
			p.Pending++
		default:
			p.Pending++
		}
		p.Windows = append(p.Windows, out)
	}
	switch {
	case p.Pending > 0:
		p.State = RunRunning
	case p.Failed > 0:
		p.State = RunFailed
	default:
		p.State = RunComplete
	}
	if p.Total > 0 {
		p.Percent = float64(p.Complete+p.Failed) * 100 / float64(p.Total)
	}
	return p
}
