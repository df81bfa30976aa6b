package costapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// idleTimeout is a per-try policy for downloads: the response headers must
// arrive within d, and then each next piece of the body within d. Unlike a
// try timeout it never cuts a long download that makes progress.
type idleTimeout struct{ d time.Duration }

func (p idleTimeout) Do(req *policy.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Raw().Context())
	w := &watchdog{d: p.d, cancel: cancel}
	w.arm()
	resp, err := req.Clone(ctx).Next()
	if err != nil {
		fired := w.stop()
		cancel()
		if fired {
			return nil, fmt.Errorf("no answer within %s: %w", p.d, context.DeadlineExceeded)
		}
		return nil, err
	}
	resp.Body = &watchedBody{rc: resp.Body, w: w}
	return resp, nil
}

// watchdog cancels a context when it is not fed within d.
type watchdog struct {
	d      time.Duration
	cancel context.CancelFunc
	mu     sync.Mutex
	t      *time.Timer
	fired  bool
}

func (w *watchdog) arm() {
	w.t = time.AfterFunc(w.d, func() {
		w.mu.Lock()
		w.fired = true
		w.mu.Unlock()
		w.cancel()
	})
}

func (w *watchdog) feed() { w.t.Reset(w.d) }

// stop stops the watchdog and tells whether it fired.
func (w *watchdog) stop() bool {
	w.t.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

type watchedBody struct {
	rc io.ReadCloser
	w  *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.w.feed()
	}
	if err != nil && err != io.EOF {
		b.w.mu.Lock()
		fired := b.w.fired
		b.w.mu.Unlock()
		if fired {
			err = fmt.Errorf("download stalled for %s: %w", b.w.d, context.DeadlineExceeded)
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.w.stop()
	b.w.cancel()
	return b.rc.Close()
}
