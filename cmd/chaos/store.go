package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/costsync/costsync/internal/pipeline"
	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/window"
)

// The store's scenarios (issue 5). Each ends, besides the exact totals every
// scenario checks, by comparing the documents in Cosmos DB with costsim's
// report of every planned day, id by id and content hash by content hash:
// equal to one clean run, nothing missing, nothing extra.
func init() {
	scenarios = append(scenarios,
		Scenario{Name: "restatement", About: "costsim restates a day of every scope (lines changed, added, removed); the documents follow the new report exactly",
			Run: restatement},
		Scenario{Name: "crash", About: "the handler is killed at random moments, several times, while a 200,000-line window of 4 parts is ingested",
			Scopes: []string{pipeline.DefaultScopes[0]}, Days: 1,
			// Yesterday is partly in at revision 0: about 200,000 lines.
			CostsimArgs: []string{"-rows-per-day", "350000", "-blob-rows", "50000"},
			Env:         map[string]string{"COSTSYNC_INGEST_BUDGET": "20s"},
			Run:         crash},
		Scenario{Name: "duplicate-delivery", About: "every manifest and every cost-parts message is delivered twice, the copies at the same time",
			Days:        2,
			CostsimArgs: []string{"-rows-per-day", "4000", "-blob-rows", "2500"},
			Env:         map[string]string{"COSTSYNC_INGEST_BUDGET": "1s"},
			Run:         duplicateDelivery},
	)
}

// restatement plans and ingests, has costsim restate one day of every scope,
// plans again, and checks the documents against the restated reports.
func restatement(ctx context.Context, p *pipeline.Pipeline, o pipeline.Options) ([]store.Window, error) {
	if _, err := allComplete(PlanAndWait(ctx, p, o)); err != nil {
		return nil, fmt.Errorf("first run: %w", err)
	}
	days := window.LastDays(time.Now().UTC(), o.Days)
	var changed, added, removed int
	for i, scope := range o.Scopes {
		day := days[i%len(days)]
		before, err := truthDay(ctx, p, scope, day)
		if err != nil {
			return nil, err
		}
		if err := postSim(ctx, p, "/_sim/restate", fmt.Sprintf(`{"scope":%q,"metric":"ActualCost","date":%q}`, scope, day)); err != nil {
			return nil, err
		}
		after, err := truthDay(ctx, p, scope, day)
		if err != nil {
			return nil, err
		}
		for id, h := range after {
			switch old, ok := before[id]; {
			case !ok:
				added++
			case old != h:
				changed++
			}
		}
		for id := range before {
			if _, ok := after[id]; !ok {
				removed++
			}
		}
	}
	note("restatement: restated %d days: %d lines changed, %d added, %d removed", len(o.Scopes), changed, added, removed)
	if changed == 0 || added == 0 || removed == 0 {
		return nil, fmt.Errorf("the restatements changed %d, added %d and removed %d lines: the scenario needs all three", changed, added, removed)
	}
	ws, err := allComplete(PlanAndWait(ctx, p, o))
	if err != nil {
		return ws, fmt.Errorf("second run: %w", err)
	}
	return ws, sameIDs(ctx, p, o)
}

// crash fires the plan and, once ingestion has begun, kills the handler at
// random moments until it has done so five times or the window completes;
// devhost restarts it each time and the queues redeliver what was in flight.
func crash(ctx context.Context, p *pipeline.Pipeline, o pipeline.Options) ([]store.Window, error) {
	base, err := p.Baseline(ctx, o.Scopes)
	if err != nil {
		return nil, err
	}
	if err := p.FirePlan(ctx); err != nil {
		return nil, err
	}
	const wantKills = 5
	var kills atomic.Int64
	killCtx, stopKilling := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
		for kills.Load() < wantKills {
			ingesting, err := stateOf(killCtx, p, o.Scopes, base)
			if err != nil && killCtx.Err() != nil || ingesting == store.StateComplete {
				done <- nil
				return
			}
			wait := 250 * time.Millisecond
			if ingesting == store.StateIngesting {
				wait = time.Duration(5000+rnd.IntN(35000)) * time.Millisecond
			}
			select {
			case <-killCtx.Done():
				done <- nil
				return
			case <-time.After(wait):
			}
			if ingesting != store.StateIngesting {
				continue
			}
			pid, err := killHandler(killCtx, p)
			if err != nil {
				continue // being restarted: try again later
			}
			kills.Add(1)
			progress(o, "killed the handler (pid %d) after %s", pid, wait)
		}
		done <- nil
	}()
	ws, err := p.Wait(ctx, o.Scopes, len(o.Scopes)*o.Days, base, max(o.Timeout, 20*time.Minute))
	stopKilling()
	if kerr := <-done; kerr != nil && err == nil {
		err = kerr
	}
	if _, cerr := allComplete(ws, err); cerr != nil {
		return ws, cerr
	}
	n := kills.Load()
	note("crash: killed the handler %d times during ingestion", n)
	if n < 3 {
		return ws, fmt.Errorf("the window completed after %d kills; the scenario wants at least 3", n)
	}
	return ws, sameIDs(ctx, p, o)
}

// duplicateDelivery plans and ingests while a duplicator re-uploads every
// manifest soon after it lands (a second blob trigger while the first
// runs) and copies every cost-parts message it sees into the queue (two
// deliveries at once).
func duplicateDelivery(ctx context.Context, p *pipeline.Pipeline, o pipeline.Options) ([]store.Window, error) {
	d, err := newDuplicator(p)
	if err != nil {
		return nil, err
	}
	dupCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { d.manifests(dupCtx) })
	wg.Go(func() { d.parts(dupCtx) })
	ws, err := PlanAndWait(ctx, p, o)
	stop()
	wg.Wait()
	if _, err := allComplete(ws, err); err != nil {
		return ws, err
	}
	m, q := d.manifestCopies.Load(), d.partCopies.Load()
	runs, _ := invocations(ctx, p, "IngestPart")
	note("duplicate-delivery: %d manifests and %d cost-parts messages delivered twice (IngestPart ran %d times)", m, q, runs)
	if err := d.err(); err != nil {
		return ws, err
	}
	if m == 0 || q == 0 {
		return ws, fmt.Errorf("only %d manifests and %d part messages were duplicated: the scenario proves nothing", m, q)
	}
	return ws, sameIDs(ctx, p, o)
}

// duplicator delivers manifests and part messages twice.
type duplicator struct {
	blobs          *azblob.Client
	queue          *azqueue.QueueClient
	manifestCopies atomic.Int64
	partCopies     atomic.Int64
	mu             sync.Mutex
	errs           []error
}

func newDuplicator(p *pipeline.Pipeline) (*duplicator, error) {
	co := azcore.ClientOptions{Transport: p.Stack.Transport()}
	blobs, err := azblob.NewClient(p.Stack.BlobURL, p.Cred, &azblob.ClientOptions{ClientOptions: co})
	if err != nil {
		return nil, err
	}
	svc, err := azqueue.NewServiceClient(p.Stack.QueueURL, p.Cred, &azqueue.ClientOptions{ClientOptions: co})
	if err != nil {
		return nil, err
	}
	return &duplicator{blobs: blobs, queue: svc.NewQueueClient(queue.Parts)}, nil
}

func (d *duplicator) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.errs) < 5 {
		d.errs = append(d.errs, err)
	}
}

func (d *duplicator) err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return errors.Join(d.errs...)
}

// manifests re-uploads each new manifest, unchanged, 0.5 to 2 s after it
// appears: devhost triggers once per blob version, so IngestManifest runs
// again, usually while the first delivery still ingests its first part.
func (d *duplicator) manifests(ctx context.Context) {
	seen := map[string]bool{}
	rnd := rand.New(rand.NewPCG(7, 7))
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		pager := d.blobs.NewListBlobsFlatPager(landing.ManifestsContainer, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				break
			}
			for _, it := range page.Segment.BlobItems {
				name := *it.Name
				if seen[name] {
					continue
				}
				seen[name] = true
				delay := time.Duration(500+rnd.IntN(1500)) * time.Millisecond
				wg.Go(func() {
					select {
					case <-ctx.Done():
						return
					case <-time.After(delay):
					}
					if err := d.copyManifest(ctx, name); err != nil && ctx.Err() == nil {
						d.fail(err)
					}
				})
			}
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

func (d *duplicator) copyManifest(ctx context.Context, name string) error {
	resp, err := d.blobs.DownloadStream(ctx, landing.ManifestsContainer, name, nil)
	if err != nil {
		return fmt.Errorf("read manifest %s: %w", name, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read manifest %s: %w", name, err)
	}
	if _, err := d.blobs.UploadBuffer(ctx, landing.ManifestsContainer, name, b, &azblob.UploadBufferOptions{
		HTTPHeaders: &blobHTTPHeaders{BlobContentType: to.Ptr("application/json")},
	}); err != nil {
		return fmt.Errorf("upload manifest %s again: %w", name, err)
	}
	d.manifestCopies.Add(1)
	return nil
}

// parts peeks at the cost-parts queue faster than devhost polls it and
// enqueues a copy of every message text it has not seen yet, so that
// devhost receives the original and the copy, usually in one batch. The
// copies, and identical messages that the two deliveries send in turn, are
// not copied again.
func (d *duplicator) parts(ctx context.Context) {
	seen := map[string]bool{}
	for ctx.Err() == nil {
		resp, err := d.queue.PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: to.Ptr(int32(32))})
		if err != nil {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		for _, m := range resp.Messages {
			text := *m.MessageText
			if seen[text] {
				continue
			}
			seen[text] = true
			if _, err := d.queue.EnqueueMessage(ctx, text, nil); err != nil {
				if ctx.Err() == nil {
					d.fail(fmt.Errorf("enqueue a copy: %w", err))
				}
				continue
			}
			d.partCopies.Add(1)
		}
		sleep(ctx, 20*time.Millisecond)
	}
}

type blobHTTPHeaders = blob.HTTPHeaders

// sameIDs compares every planned day of every scope, id by id, with the
// report costsim serves now.
func sameIDs(ctx context.Context, p *pipeline.Pipeline, o pipeline.Options) error {
	var problems []string
	docs := 0
	for _, scope := range o.Scopes {
		for _, day := range window.LastDays(time.Now().UTC(), o.Days) {
			want, err := truthDay(ctx, p, scope, day)
			if err != nil {
				return err
			}
			got, err := p.Store.ListDay(ctx, scope, "ActualCost", day)
			if err != nil {
				return err
			}
			docs += len(got)
			var missing, extra, other int
			stored := make(map[string]string, len(got))
			for _, c := range got {
				stored[c.ID] = c.ContentHash
				switch h, ok := want[c.ID]; {
				case !ok:
					extra++
				case h != c.ContentHash:
					other++
				}
			}
			for id := range want {
				if _, ok := stored[id]; !ok {
					missing++
				}
			}
			if missing+extra+other > 0 {
				problems = append(problems, fmt.Sprintf("%s %s: %d documents for %d lines: %d missing, %d not in the report, %d with other content", scope, day, len(got), len(want), missing, extra, other))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("documents differ from costsim's report: %s", strings.Join(problems, "; "))
	}
	note("%d documents equal costsim's reports id by id", docs)
	return nil
}

// truthDay parses costsim's report of one day, part by part as the
// pipeline does, into id → content hash.
func truthDay(ctx context.Context, p *pipeline.Pipeline, scope, day string) (map[string]string, error) {
	out := map[string]string{}
	for part, parts := 0, 1; part < parts; part++ {
		q := url.Values{"scope": {scope}, "metric": {"ActualCost"}, "from": {day}, "to": {day}, "part": {strconv.Itoa(part)}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Stack.CostsimURL+"/_sim/report?"+q.Encode(), nil)
		resp, err := p.Stack.Transport().Do(req)
		if err != nil {
			return nil, fmt.Errorf("costsim report: %w", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("costsim report: %w", err)
		}
		parts, _ = strconv.Atoi(resp.Header.Get("X-Sim-Parts"))
		if parts == 0 {
			return out, nil // no rows that day
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("costsim report: %s: %s", resp.Status, b)
		}
		rd, err := costcsv.NewReader(bytes.NewReader(b), &costcsv.Options{File: fmt.Sprintf("truth part %d", part), Part: part})
		if err != nil {
			return nil, err
		}
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("parse costsim's report of %s %s: %w", scope, day, err)
			}
			if _, dup := out[rec.ID]; dup {
				rd.Close() // reading stops early: release its temporary files
				return nil, fmt.Errorf("costsim's report of %s %s has id %s twice", scope, day, rec.ID)
			}
			out[rec.ID] = rec.ContentHash
		}
	}
	return out, nil
}

// stateOf returns the state of the first window of the run after base, or
// "" while there is none yet.
func stateOf(ctx context.Context, p *pipeline.Pipeline, scopes []string, base pipeline.Baseline) (store.WindowState, error) {
	for _, s := range scopes {
		ws, err := p.Store.ListWindows(ctx, s)
		if err != nil {
			return "", err
		}
		for _, w := range ws {
			if g, ok := base[w.ID]; !ok || w.Generation > g {
				return w.State, nil
			}
		}
	}
	return "", nil
}

// killHandler asks devhost to kill the handler process.
func killHandler(ctx context.Context, p *pipeline.Pipeline) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.Stack.DevhostURL+"/admin/devhost/kill-handler", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("kill-handler: %s: %s", resp.Status, b)
	}
	var body struct {
		PID int `json:"pid"`
	}
	_ = json.Unmarshal(b, &body)
	return body.PID, nil
}

// invocations asks devhost how many times function ran.
func invocations(ctx context.Context, p *pipeline.Pipeline, function string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Stack.DevhostURL+"/admin/devhost/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var stats struct {
		Functions map[string]struct {
			Invocations int `json:"invocations"`
		} `json:"functions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		return 0, err
	}
	return stats.Functions[function].Invocations, nil
}

// postSim posts body to a costsim control endpoint.
func postSim(ctx context.Context, p *pipeline.Pipeline, path, body string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.Stack.CostsimURL+path, strings.NewReader(body))
	resp, err := p.Stack.Transport().Do(req)
	if err != nil {
		return fmt.Errorf("costsim %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("costsim %s: %s: %s", path, resp.Status, b)
	}
	return nil
}

// allComplete passes ws and err on, with an error when a window did not
// complete.
func allComplete(ws []store.Window, err error) ([]store.Window, error) {
	if err != nil {
		return ws, err
	}
	for _, w := range ws {
		if w.State != store.StateComplete {
			return ws, fmt.Errorf("window %s %s is %s: %s", w.Scope, w.From, w.State, strings.Join(w.Errors, "; "))
		}
	}
	return ws, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// progress prints a progress line when -v asked for them.
func progress(o pipeline.Options, format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// note prints what a scenario did on stderr, next to its summary line.
func note(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
