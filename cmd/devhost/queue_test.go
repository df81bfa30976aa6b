package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const windowsFunction = `{"bindings":[{"name":"msg","type":"queueTrigger","direction":"in","queueName":"cost-windows"}]}`

// queueHost builds an app with one queue function and its listener.
func queueHost(t *testing.T, hostJSON string, respond func(captured, http.ResponseWriter)) (*testHost, *queueListener) {
	t.Helper()
	a := testApp(t, hostJSON, map[string]string{"ProcessWindow": windowsFunction})
	th := newTestHost(t, a, respond)
	_ = th.queues.CreateQueue(t.Context(), "cost-windows")
	return th, newQueueListener(th.host, a.function("ProcessWindow"), th.queues)
}

// deliver dequeues one message and processes it, as one poll would.
func deliver(t *testing.T, l *queueListener, q *fakeQueues) bool {
	t.Helper()
	msgs, err := q.Dequeue(t.Context(), l.queue, 1, dequeueVisibility)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) == 0 {
		return false
	}
	l.process(t.Context(), msgs[0])
	return true
}

func TestQueueSuccessDeletes(t *testing.T) {
	th, l := queueHost(t, `{}`, okEmpty)
	_ = th.queues.Enqueue(t.Context(), "cost-windows", b64s(`{"window":"w1"}`))
	if !deliver(t, l, th.queues) {
		t.Fatal("no message")
	}
	if got := th.queues.texts("cost-windows"); len(got) != 0 {
		t.Errorf("queue = %q, want the message deleted", got)
	}
	if st := th.stats.snapshot()["ProcessWindow"]; st.Succeeded != 1 || st.InFlight != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestQueueFailureRetriesThenPoison(t *testing.T) {
	var calls atomic.Int32
	th, l := queueHost(t, `{"extensions":{"queues":{"maxDequeueCount":3}}}`, func(c captured, w http.ResponseWriter) {
		calls.Add(1)
		answer(w, 500, `{}`)
	})
	original := b64s(`{"window":"w1"}`)
	_ = th.queues.Enqueue(t.Context(), "cost-windows", original)

	var counts []string
	for deliver(t, l, th.queues) {
		reqs := th.handler.requests()
		counts = append(counts, string(reqs[len(reqs)-1].payload["Metadata"]["DequeueCount"]))
	}
	if got := strings.Join(counts, ","); got != `"1","2","3"` {
		t.Errorf("DequeueCounts = %s, want \"1\",\"2\",\"3\" (visibilityTimeout 0 makes it visible again at once)", got)
	}
	if got := th.queues.texts("cost-windows"); len(got) != 0 {
		t.Errorf("queue = %q, want empty", got)
	}
	if got := th.queues.texts("cost-windows-poison"); len(got) != 1 || got[0] != original {
		t.Errorf("poison = %q, want [%q] (same text, base64)", got, original)
	}
	if st := th.stats.snapshot()["ProcessWindow"]; st.Failed != 3 || st.Poisoned != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestQueueFailureUsesVisibilityTimeout(t *testing.T) {
	th, l := queueHost(t, `{"extensions":{"queues":{"visibilityTimeout":"00:00:30"}}}`, func(c captured, w http.ResponseWriter) {
		answer(w, 503, `{}`)
	})
	_ = th.queues.Enqueue(t.Context(), "cost-windows", b64s("x"))
	deliver(t, l, th.queues)
	if deliver(t, l, th.queues) {
		t.Fatal("the failed message must stay invisible for visibilityTimeout")
	}
	th.queues.now = func() time.Time { return time.Now().Add(31 * time.Second) }
	if !deliver(t, l, th.queues) {
		t.Fatal("the failed message must come back after visibilityTimeout")
	}
}

func TestQueueDecodingFailureGoesToPoisonWithoutInvocation(t *testing.T) {
	th, l := queueHost(t, `{}`, okEmpty)
	_ = th.queues.Enqueue(t.Context(), "cost-windows", `{"not":"base64"}`)
	deliver(t, l, th.queues)
	if n := len(th.handler.requests()); n != 0 {
		t.Errorf("%d invocations, want none", n)
	}
	if got := th.queues.texts("cost-windows-poison"); len(got) != 1 || got[0] != `{"not":"base64"}` {
		t.Errorf("poison = %q", got)
	}
	if !strings.Contains(th.logText(), "Message decoding has failed! Check MessageEncoding settings") {
		t.Errorf("log: %s", th.logText())
	}
	if strings.Contains(th.logText(), "base64\"}") {
		t.Errorf("the message body reached the log: %s", th.logText())
	}
}

func TestQueueEncodingNoneTakesTextAsIs(t *testing.T) {
	th, l := queueHost(t, `{"extensions":{"queues":{"messageEncoding":"none"}}}`, okEmpty)
	_ = th.queues.Enqueue(t.Context(), "cost-windows", `{"window":"w1"}`)
	deliver(t, l, th.queues)
	reqs := th.handler.requests()
	if len(reqs) != 1 || string(reqs[0].payload["Data"]["msg"]) != `"\"{\\\"window\\\":\\\"w1\\\"}\""` {
		t.Errorf("Data.msg = %s", reqs[0].payload["Data"]["msg"])
	}
}

func TestQueueListenerPollsAndRespectsConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int32
	release := make(chan struct{}, 100)
	var once sync.Once
	unblockAll := func() { once.Do(func() { close(release) }) }
	defer unblockAll()
	th, l := queueHost(t, `{"extensions":{"queues":{"batchSize":2,"newBatchThreshold":1,"maxPollingInterval":"00:00:00.200"}}}`,
		func(c captured, w http.ResponseWriter) {
			n := inFlight.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			inFlight.Add(-1)
			okEmpty(c, w)
		})
	for i := 0; i < 6; i++ {
		_ = th.queues.Enqueue(t.Context(), "cost-windows", b64s("m"))
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { l.run(ctx, t.Context()); close(done) }()
	// A batch of batchSize; the next batch comes only when in-flight work
	// drops to newBatchThreshold.
	eventually(t, "the first batch", func() bool { return inFlight.Load() == 2 })
	time.Sleep(150 * time.Millisecond)
	if n := inFlight.Load(); n != 2 {
		t.Errorf("%d in flight before any finished, want batchSize = 2", n)
	}
	release <- struct{}{}
	eventually(t, "batchSize+newBatchThreshold in flight", func() bool { return inFlight.Load() == 3 })
	time.Sleep(150 * time.Millisecond)
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want batchSize+newBatchThreshold = 3", p)
	}
	unblockAll()
	eventually(t, "all messages processed", func() bool { return len(th.queues.texts("cost-windows")) == 0 })
	cancel()
	<-done
	if st := th.stats.snapshot()["ProcessWindow"]; st.Succeeded != 6 {
		t.Errorf("stats = %+v", st)
	}
	// The stats endpoint reports the queues.
	rec := serveTest(newServer(th.host, t.Context()), "GET", "/admin/devhost/stats", "")
	var body struct {
		Functions map[string]functionStats `json:"functions"`
		Queues    map[string]queueStats    `json:"queues"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body.Queues["cost-windows-poison"]; !ok || body.Functions["ProcessWindow"].Succeeded != 6 || body.Queues["cost-windows"].Visible != 0 {
		t.Errorf("stats body = %s", rec.Body)
	}
}
