package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/store/storetest"
	"github.com/costsync/costsync/shared/window"
)

// The ingestion tests run on the in-memory store and on the Cosmos DB
// emulator, with the host's exact payloads; blobs and queues are fakes that
// keep what is sent so that the tests deliver it as the host would.

func (l *fakeLanding) PutIDs(ctx context.Context, w window.Window, gen int64, part int, date string, ids [][16]byte) error {
	var b bytes.Buffer
	for _, id := range ids {
		b.Write(id[:])
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.parts[fmt.Sprintf("%spart_%05d.ids", landing.IDsDir(w, gen, date), part)] = b.Bytes()
	return nil
}

func (l *fakeLanding) ReadIDs(ctx context.Context, w window.Window, gen int64, date string, each func([16]byte)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, b := range l.parts {
		if !strings.HasPrefix(name, landing.IDsDir(w, gen, date)) {
			continue
		}
		if len(b)%16 != 0 {
			return fmt.Errorf("ids %s: truncated", name)
		}
		for i := 0; i < len(b); i += 16 {
			each([16]byte(b[i : i+16]))
		}
	}
	return nil
}

// deliverParts delivers the cost-parts messages sent so far, and those they
// send, as the host would.
func (r *rig) deliverParts(t *testing.T) {
	t.Helper()
	for range 1000 {
		msgs := r.queue.take()
		if len(msgs) == 0 {
			return
		}
		for _, m := range msgs {
			if m.queue != queue.Parts {
				t.Fatalf("message to %s: %s", m.queue, m.body)
			}
			if code, resp := r.post(t, "IngestPart", queueReq(m.body, 1)); code != 200 {
				t.Fatalf("IngestPart: %d %v", code, resp.Logs)
			}
		}
	}
	t.Fatal("cost-parts messages never run out")
}

// forEachStore runs f on the in-memory store and on the emulator (which
// skips in -short mode and fails under CI when it is missing).
func forEachStore(t *testing.T, f func(t *testing.T, newStore func(t *testing.T) storetest.Store)) {
	t.Run("Memory", func(t *testing.T) {
		f(t, func(*testing.T) storetest.Store { return store.NewMemory() })
	})
	t.Run("Cosmos", func(t *testing.T) {
		env := storetest.StartEnv(t)
		f(t, func(t *testing.T) storetest.Store { return storetest.NewCosmos(t, env, nil) })
	})
}

type ingestRig struct {
	srv   *Server
	st    Store
	data  storetest.Store
	land  *fakeLanding
	queue *fakeQueue
	logs  *syncBuffer
}

func newIngestRig(t *testing.T, st storetest.Store, budget time.Duration) *ingestRig {
	t.Helper()
	return newIngestRigOn(t, st, st, budget)
}

// newIngestRigOn serves with st, a wrapper of data when a test injects
// faults.
func newIngestRigOn(t *testing.T, st Store, data storetest.Store, budget time.Duration) *ingestRig {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			config.KeyBlobURL: "https://a.blob.core.windows.net", config.KeyQueueURL: "https://a.queue.core.windows.net",
			config.KeyCosmosEndpoint: "https://c.documents.azure.com", config.KeyScopes: testScope,
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.IngestBudget = budget
	r := &ingestRig{st: st, data: data, land: &fakeLanding{parts: map[string][]byte{}, manifests: map[string][]byte{}}, queue: &fakeQueue{}, logs: &syncBuffer{}}
	r.srv = New(Deps{Config: cfg, Cost: &fakeCost{}, Landing: r.land, Store: st, Queue: r.queue, Log: slog.New(slog.NewJSONHandler(r.logs, nil))})
	return r
}

// syncBuffer collects log lines from concurrent invocations.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// invocations returns the summary line of every invocation so far.
func (s *syncBuffer) invocations(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.HasPrefix(fmt.Sprint(m["msg"]), "invocation") {
			out = append(out, m)
		}
	}
	return out
}

// count counts the invocations whose attribute key equals want.
func count(invs []map[string]any, key string, want any) int {
	n := 0
	for _, m := range invs {
		if m[key] == want {
			n++
		}
	}
	return n
}

// post delivers one invocation under ctx and returns the status.
func (r *ingestRig) post(ctx context.Context, t *testing.T, function string, req *invocation.Request) int {
	t.Helper()
	body, _ := json.Marshal(req)
	hr := httptest.NewRequestWithContext(ctx, http.MethodPost, "/"+function, bytes.NewReader(body))
	rec := httptest.NewRecorder()
	r.srv.ServeHTTP(rec, hr)
	return rec.Code
}

// report is a landed report of a two-day window.
type report struct {
	w     window.Window
	gen   int64
	parts []landing.Part
	csv   [][]byte
	man   []byte
}

var ingestWindow = window.Window{Scope: testScope, Metric: "ActualCost", From: "2023-09-20", To: "2023-09-21"}

// costLine is one line of a generated EA file.
type costLine struct {
	date, meter, resource, cost string
}

// genLines returns n lines over the window's two days, with a few lines
// identical in every column (the real files have them).
func genLines(n int, seed uint64) []costLine {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]costLine, 0, n)
	for i := range n {
		if i > 0 && i%97 == 0 {
			out = append(out, out[i-1])
			continue
		}
		out = append(out, costLine{
			date:     []string{"09/20/2023", "09/21/2023"}[i%2],
			meter:    fmt.Sprintf("m%d", r.IntN(40)),
			resource: fmt.Sprintf("/subscriptions/x/resourcegroups/rg%d/providers/microsoft.compute/virtualmachines/vm%d", i%7, i),
			cost:     fmt.Sprintf("%d.%09d", r.IntN(100), r.IntN(1000000000)),
		})
	}
	return out
}

// land writes lines as a report of parts parts and generation gen.
func (r *ingestRig) landReport(t *testing.T, gen int64, lines []costLine, parts int) *report {
	t.Helper()
	return r.landReportOf(t, ingestWindow, gen, lines, parts)
}

// landReportOf lands lines as a report of window w.
func (r *ingestRig) landReportOf(t *testing.T, w window.Window, gen int64, lines []costLine, parts int) *report {
	t.Helper()
	rep := &report{w: w, gen: gen}
	per := (len(lines) + parts - 1) / parts
	for i := range parts {
		var b strings.Builder
		b.WriteString("SubscriptionId,Date,MeterId,Cost,BillingCurrency,ResourceId,ChargeType\n")
		for _, l := range lines[min(i*per, len(lines)):min((i+1)*per, len(lines))] {
			fmt.Fprintf(&b, "1caaa5a3-2b66-438e-8ab4-bce37d518c5d,%s,%s,%s,EUR,%s,Usage\n", l.date, l.meter, l.cost, l.resource)
		}
		p, err := r.land.PutPart(t.Context(), rep.w, gen, i, strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		rep.parts = append(rep.parts, p)
		rep.csv = append(rep.csv, []byte(b.String()))
	}
	rep.man, _ = json.Marshal(landing.Manifest{Version: landing.ManifestVersion, Source: "cost-details", Window: rep.w, Generation: gen, Parts: rep.parts})
	return rep
}

func (rep *report) blobRequest() *invocation.Request {
	name := landing.ManifestName(rep.w, rep.gen)
	return invocation.NewBlobRequest("manifest", invocation.BlobInfo{Content: rep.man, URI: "https://a.blob.core.windows.net/cost-manifests/" + name, Tokens: map[string]string{"name": name}, ContentLength: int64(len(rep.man))}, sys)
}

// want is the state one clean run leaves: every record's id and content
// hash per day, and the exact totals per day and currency.
type want struct {
	ids    map[string]map[string]string // date → id → content hash
	totals []store.DayTotal
	rows   int
}

func (rep *report) want(t *testing.T) want {
	t.Helper()
	w := want{ids: map[string]map[string]string{}}
	var totals costcsv.Totals
	for i, b := range rep.csv {
		rd, err := costcsv.NewReader(bytes.NewReader(b), &costcsv.Options{File: rep.parts[i].Blob, Part: i})
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if w.ids[rec.Date] == nil {
				w.ids[rec.Date] = map[string]string{}
			}
			w.ids[rec.Date][rec.ID] = rec.ContentHash
			totals.Add(rec)
		}
	}
	w.totals, w.rows = toStoreDays(totals.ByDayCurrency()), totals.Rows()
	return w
}

// check compares the documents with one clean run: ids, content hashes and
// exact totals, and a complete ledger of generation gen.
func (r *ingestRig) check(t *testing.T, rep *report) {
	t.Helper()
	ctx := t.Context()
	w := rep.want(t)
	if w.rows == 0 {
		t.Fatal("the report has no rows: the test would prove nothing")
	}
	for _, day := range []string{"2023-09-20", "2023-09-21"} {
		got, err := r.data.ListDay(ctx, testScope, "ActualCost", day)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]string{}
		for _, c := range got {
			stored[c.ID] = c.ContentHash
		}
		var missing, extra, changed int
		for id, h := range w.ids[day] {
			switch g, ok := stored[id]; {
			case !ok:
				missing++
			case g != h:
				changed++
			}
		}
		for id := range stored {
			if _, ok := w.ids[day][id]; !ok {
				extra++
			}
		}
		if missing+extra+changed > 0 || len(got) != len(w.ids[day]) {
			t.Errorf("%s: %d documents for %d source lines: %d missing, %d not in the source, %d with other content", day, len(got), len(w.ids[day]), missing, extra, changed)
		}
	}
	totals, err := r.data.CountWindow(ctx, testScope, "ActualCost", []string{"2023-09-20", "2023-09-21"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := reconcile(w.totals, totals); diff != "" {
		t.Errorf("totals differ from the source: %s", diff)
	}
	wd, err := r.data.GetWindow(ctx, testScope, store.WindowID(testScope, "ActualCost", ingestWindow.From, ingestWindow.To))
	if err != nil {
		t.Fatal(err)
	}
	if wd.State != store.StateComplete || wd.PartsGeneration != rep.gen || wd.Rows != int64(w.rows) || len(wd.PartsIn) != len(rep.parts) {
		t.Errorf("ledger: state %s generation %d rows %d parts in %v; want complete, %d, %d, all %d", wd.State, wd.PartsGeneration, wd.Rows, wd.PartsIn, rep.gen, w.rows, len(rep.parts))
	}
	if diff := reconcile(w.totals, wd.Days); diff != "" {
		t.Errorf("ledger totals differ from the source: %s", diff)
	}
}

// deliverParts delivers every cost-parts message sent so far, all at once
// (the parts of a window run in parallel), and again until none is left.
// Each message is delivered twice at the same time when twice is set. It
// returns the number of deliveries.
func (r *ingestRig) deliverParts(t *testing.T, twice bool) int {
	t.Helper()
	n := 0
	for round := 0; ; round++ {
		msgs := r.queue.take()
		if len(msgs) == 0 {
			return n
		}
		if round > 10000 {
			t.Fatal("cost-parts messages never run out")
		}
		var wg sync.WaitGroup
		for _, m := range msgs {
			if m.queue != queue.Parts {
				t.Fatalf("message to %s: %s", m.queue, m.body)
			}
			copies := 1
			if twice {
				copies = 2
			}
			for range copies {
				n++
				wg.Go(func() {
					if code := r.post(context.Background(), t, "IngestPart", queueReq(m.body, 1)); code != 200 {
						t.Errorf("IngestPart %s: %d", m.body, code)
					}
				})
			}
		}
		wg.Wait()
	}
}

// TestIngestContinuesThroughParts: with a budget so small that every flush
// ends the invocation, a three-part report is ingested through cost-parts
// continuations; the result equals one clean run, and a second delivery of
// the manifest writes nothing.
func TestIngestContinuesThroughParts(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) storetest.Store) {
		r := newIngestRig(t, newStore(t), time.Nanosecond)
		rep := r.landReport(t, 1700000000000, genLines(9000, 1), 3)
		if code := r.post(t.Context(), t, "IngestManifest", rep.blobRequest()); code != 200 {
			t.Fatalf("IngestManifest: %d", code)
		}
		deliveries := r.deliverParts(t, false)
		// 9000 lines in 3 parts of 3000: each part needs two flushes of
		// 2000, so parts continue in messages.
		if deliveries < 6 {
			t.Errorf("%d cost-parts deliveries, want the 3 parts and at least one continuation each", deliveries)
		}
		r.check(t, rep)
		invs := r.logs.invocations(t)
		if got := count(invs, "window_completed", true); got != 1 {
			t.Errorf("window completed by %d invocations, want exactly 1", got)
		}
		if continued := count(invs, "outcome_detail", "budget spent, continues in a cost-parts message"); continued < 3 {
			t.Errorf("%d invocations continued in a message, want at least one per part", continued)
		}

		before := len(invs)
		if code := r.post(t.Context(), t, "IngestManifest", rep.blobRequest()); code != 200 {
			t.Fatalf("IngestManifest again: %d", code)
		}
		r.deliverParts(t, false)
		again := r.logs.invocations(t)[before:]
		if len(again) != 1 || again[0]["outcome_detail"] != "already complete" {
			t.Errorf("second delivery of the manifest: %v, want one invocation, already complete", again)
		}
		r.check(t, rep)
	})
}

// killStore cancels the invocation's context right after the kill-th
// checkpoint, as a kill of the process would stop it: nothing after it
// runs.
type killStore struct {
	storetest.Store
	mu     sync.Mutex
	kill   int
	seen   int
	cancel context.CancelFunc
}

func (k *killStore) PutPart(ctx context.Context, p *store.Part) error {
	err := k.Store.PutPart(ctx, p)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil && p.Line > 0 && k.cancel != nil {
		k.seen++
		if k.seen == k.kill {
			k.cancel()
		}
	}
	return err
}

// arm makes the next invocation die after its kill-th checkpoint and
// returns the context to deliver it under.
func (k *killStore) arm(kill int) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	k.mu.Lock()
	k.kill, k.seen, k.cancel = kill, 0, cancel
	k.mu.Unlock()
	return ctx
}

// TestIngestResumesAfterKills kills the manifest's invocation after a random
// number of checkpoints, then every later delivery too, several times over;
// the host redelivers the same payloads. Each retry resumes from the
// ledger's checkpoint (it passes the writer only the records after it), and
// the end state equals one clean run.
func TestIngestResumesAfterKills(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) storetest.Store) {
		data := newStore(t)
		k := &killStore{Store: data}
		r := newIngestRigOn(t, k, data, time.Hour)
		const lines = 12000 // one part: six flushes and a last checkpoint, so three kills always land
		rep := r.landReport(t, 1700000000001, genLines(lines, 2), 1)
		if code := r.post(t.Context(), t, "IngestManifest", rep.blobRequest()); code != 200 {
			t.Fatalf("IngestManifest: %d", code)
		}
		msgs := r.queue.take()
		if len(msgs) != 1 {
			t.Fatalf("IngestManifest sent %d messages, want one for the part", len(msgs))
		}
		rnd := rand.New(rand.NewPCG(3, 4))
		kills := 0
		for attempt := 0; ; attempt++ {
			if attempt > 20 {
				t.Fatal("ingestion never finished")
			}
			ctx := context.Background()
			if attempt < 4 {
				ctx = k.arm(1 + rnd.IntN(2))
			} else {
				ctx = k.arm(0)
			}
			// The host delivers the same message again after a failure.
			code := r.post(ctx, t, "IngestPart", queueReq(msgs[0].body, int64(attempt+1)))
			if code == 200 {
				break
			}
			kills++
		}
		if sent := r.queue.take(); len(sent) != 0 {
			t.Errorf("with an hour of budget the part sent %d messages", len(sent))
		}
		if kills < 3 {
			t.Fatalf("only %d invocations were killed", kills)
		}
		r.check(t, rep)
		invs := r.logs.invocations(t)
		resumed := 0
		for _, m := range invs {
			from, _ := m["resumed_from_line"].(float64)
			written, ok1 := m["written"].(float64)
			skipped, ok2 := m["skipped"].(float64)
			stale, ok3 := m["stale"].(float64)
			handed := written + skipped + stale
			if from > 0 && ok1 && ok2 && ok3 {
				resumed++
				// Lines are numbered from 2 (after the header), one record each.
				if after := float64(lines) - (from - 1); handed > after {
					t.Errorf("an invocation resumed from line %v handed the writer %v records, more than the %v after it", from, handed, after)
				}
			}
		}
		if resumed < 2 {
			t.Errorf("%d invocations resumed from a checkpoint, want every retry after the first checkpoint", resumed)
		}
	})
}

// barrierStore makes the first n window replaces wait for each other, so
// that they all read the same version and race to write it.
type barrierStore struct {
	storetest.Store
	wg      sync.WaitGroup
	pending atomic.Int64
}

func (b *barrierStore) ReplaceWindow(ctx context.Context, w *store.Window) error {
	if b.pending.Add(-1) >= 0 {
		b.wg.Done()
		b.wg.Wait()
	}
	return b.Store.ReplaceWindow(ctx, w)
}

// TestIngestLastPartsFinishTogether: the two parts of a report record
// themselves in the window at the same moment, both with the same ETag;
// exactly one invocation completes the window, every round.
func TestIngestLastPartsFinishTogether(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) storetest.Store) {
		rounds := 6
		if testing.Short() {
			rounds = 2
		}
		for round := range rounds {
			data := newStore(t)
			b := &barrierStore{Store: data}
			r := newIngestRigOn(t, b, data, time.Hour)
			rep := r.landReport(t, 1700000000100+int64(round), genLines(300, uint64(round)), 2)
			if code := r.post(t.Context(), t, "IngestManifest", rep.blobRequest()); code != 200 {
				t.Fatalf("IngestManifest: %d", code)
			}
			b.wg.Add(2)
			b.pending.Store(2)
			r.deliverParts(t, false)
			r.check(t, rep)
			if got := count(r.logs.invocations(t), "window_completed", true); got != 1 {
				t.Fatalf("round %d: the window was completed by %d invocations, want exactly 1", round, got)
			}
		}
	})
}

// TestIngestDuplicateDelivery delivers the manifest twice at once and every
// cost-parts message twice at once: the same state as one delivery, and
// one completion.
func TestIngestDuplicateDelivery(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) storetest.Store) {
		r := newIngestRig(t, newStore(t), time.Nanosecond)
		rep := r.landReport(t, 1700000000200, genLines(12000, 5), 3)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if code := r.post(context.Background(), t, "IngestManifest", rep.blobRequest()); code != 200 {
					t.Errorf("IngestManifest: %d", code)
				}
			})
		}
		wg.Wait()
		r.deliverParts(t, true)
		r.check(t, rep)
		invs := r.logs.invocations(t)
		if got := count(invs, "window_completed", true); got != 1 {
			t.Errorf("the window was completed by %d invocations, want exactly 1", got)
		}
		// Both deliveries of a part reach the budget together: one sends
		// the continuation, the other leaves it to it.
		if merged := count(invs, "outcome_detail", "another invocation continues this part"); merged == 0 {
			t.Error("no duplicate chain of continuations was merged")
		}
	})
}

// TestIngestRestatement: a second report of the same window with lines
// changed, added and removed; the documents end equal to it, and only the
// changed and added lines are written.
func TestIngestRestatement(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) storetest.Store) {
		r := newIngestRig(t, newStore(t), time.Hour)
		first := genLines(1200, 6)
		rep1 := r.landReport(t, 1700000000300, first, 1)
		if code := r.post(t.Context(), t, "IngestManifest", rep1.blobRequest()); code != 200 {
			t.Fatalf("IngestManifest: %d", code)
		}
		r.deliverParts(t, false)
		r.check(t, rep1)

		second := slices.Clone(first)
		changed := 0
		for i := 5; i < len(second); i += 50 {
			second[i].cost = "0.5" // a new amount for the same line
			changed++
		}
		second = slices.Delete(second, 10, 20) // ten lines removed
		added := genLines(30, 99)
		for i := range added {
			added[i].resource += "-added"
		}
		second = append(second, added...)
		rep2 := r.landReport(t, 1700000000400, second, 1)
		before := len(r.logs.invocations(t))
		if code := r.post(t.Context(), t, "IngestManifest", rep2.blobRequest()); code != 200 {
			t.Fatalf("IngestManifest of the restatement: %d", code)
		}
		r.deliverParts(t, false)
		r.check(t, rep2)
		var written, swept float64
		for _, inv := range r.logs.invocations(t)[before:] {
			w, _ := inv["written"].(float64)
			s, _ := inv["swept"].(float64)
			written, swept = written+w, swept+s
		}
		// Removing ten lines renumbers identical lines after them, so allow
		// a few more writes than changed + added; never a rewrite of all.
		if written < float64(changed+len(added)) || written > float64(changed+len(added)+20) {
			t.Errorf("the restatement wrote %v documents, want about %d (changed and added lines only)", written, changed+len(added))
		}
		if swept < 10 {
			t.Errorf("the restatement swept %v documents, want at least the 10 removed lines", swept)
		}
	})
}

// TestIngestRefusesOlderGenerations: a report older than the one the ledger
// names is refused whole, whether its manifest or a part message arrives
// late, and a part in progress stops at its next checkpoint once a newer
// report is requested.
func TestIngestRefusesOlderGenerations(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) storetest.Store) {
		r := newIngestRig(t, newStore(t), time.Nanosecond)
		ctx := t.Context()
		old := r.landReport(t, 1700000000500, genLines(4500, 8), 1)
		if code := r.post(ctx, t, "IngestManifest", old.blobRequest()); code != 200 {
			t.Fatalf("IngestManifest: %d", code)
		}
		first := r.queue.take()
		if len(first) != 1 {
			t.Fatalf("want one part message, got %d", len(first))
		}
		if code := r.post(ctx, t, "IngestPart", queueReq(first[0].body, 1)); code != 200 {
			t.Fatalf("IngestPart: %d", code)
		}
		// One flush in, the part continues in a message; meanwhile a newer
		// report is requested (ProcessWindow moves the ledger on).
		pending := r.queue.take()
		if len(pending) != 1 {
			t.Fatalf("want one continuation, got %d messages", len(pending))
		}
		id := store.WindowID(testScope, "ActualCost", ingestWindow.From, ingestWindow.To)
		wd, err := r.data.GetWindow(ctx, testScope, id)
		if err != nil {
			t.Fatal(err)
		}
		wd.Generation = 1700000000600
		if err := r.data.ReplaceWindow(ctx, wd); err != nil {
			t.Fatal(err)
		}
		before, _ := r.data.CountWindow(ctx, testScope, "ActualCost", ingestWindow.Days())
		if code := r.post(ctx, t, "IngestPart", queueReq(pending[0].body, 1)); code != 200 {
			t.Fatalf("IngestPart of the older report: %d", code)
		}
		if got := r.queue.take(); len(got) != 0 {
			t.Errorf("the refused part sent %d messages", len(got))
		}
		after, _ := r.data.CountWindow(ctx, testScope, "ActualCost", ingestWindow.Days())
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Errorf("the refused part changed the documents: %v then %v", before, after)
		}

		// The newer report lands and completes.
		newer := r.landReport(t, 1700000000600, genLines(700, 9), 2)
		if code := r.post(ctx, t, "IngestManifest", newer.blobRequest()); code != 200 {
			t.Fatalf("IngestManifest of the newer report: %d", code)
		}
		r.deliverParts(t, false)
		r.check(t, newer)

		// The older manifest delivered again, late: refused, nothing moves.
		if code := r.post(ctx, t, "IngestManifest", old.blobRequest()); code != 200 {
			t.Fatalf("late IngestManifest: %d", code)
		}
		if got := r.queue.take(); len(got) != 0 {
			t.Errorf("the late manifest sent %d messages", len(got))
		}
		r.check(t, newer)
		if got := count(r.logs.invocations(t), "outcome_detail", "stale report refused"); got != 2 {
			t.Errorf("%d invocations refused a stale report, want 2", got)
		}
	})
}

// TestIngestRefusesOverlappingScopes: a billing scope whose report holds
// the costs of a subscription that is configured as a scope of its own
// would count them twice. Configuration cannot see it (a subscription's
// path does not name its billing account); the report does: the window is
// failed with a message that names both and the setting, and none of its
// lines is written. The same report without the subscription configured is
// ingested whole.
func TestIngestRefusesOverlappingScopes(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) storetest.Store) {
		account, err := costapi.ParseScope("providers/Microsoft.Billing/billingAccounts/8611537")
		if err != nil {
			t.Fatal(err)
		}
		w := ingestWindow
		w.Scope = account.Path
		id := store.WindowID(w.Scope, w.Metric, w.From, w.To)
		for _, overlap := range []bool{false, true} {
			r := newIngestRig(t, newStore(t), time.Hour)
			if overlap {
				r.srv.d.Config.Scopes = append(r.srv.d.Config.Scopes, account) // and testScope, its subscription
			} else {
				r.srv.d.Config.Scopes = []costapi.Scope{account}
			}
			rep := r.landReportOf(t, w, 1700000000700, genLines(900, 11), 3)
			if code := r.post(t.Context(), t, "IngestManifest", rep.blobRequest()); code != 200 {
				t.Fatalf("IngestManifest: %d", code)
			}
			r.deliverParts(t, false)
			wd, err := r.data.GetWindow(t.Context(), w.Scope, id)
			if err != nil {
				t.Fatal(err)
			}
			days, err := r.data.CountWindow(t.Context(), w.Scope, w.Metric, w.Days())
			if err != nil {
				t.Fatal(err)
			}
			docs := 0
			for _, d := range days {
				docs += int(d.Rows)
			}
			if !overlap {
				if wd.State != store.StateComplete || docs != 900 {
					t.Fatalf("without the overlap: window %s with %d documents, want complete with 900 (errors %q)", wd.State, docs, wd.Errors)
				}
				continue
			}
			msg := strings.Join(wd.Errors, "\n")
			if wd.State != store.StateFailed || !strings.Contains(msg, "counted twice") ||
				!strings.Contains(msg, "1caaa5a3-2b66-438e-8ab4-bce37d518c5d") || !strings.Contains(msg, config.KeyScopes) {
				t.Fatalf("with the overlap: window %s, errors %q; want failed, naming the subscription, the double count and %s", wd.State, wd.Errors, config.KeyScopes)
			}
			if docs != 0 {
				t.Errorf("with the overlap, %d documents were written; want none", docs)
			}
		}
	})
}
