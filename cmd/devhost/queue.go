package main

import (
	"context"
	"sync"
	"time"

	"github.com/costsync/costsync/shared/invocation"
)

// Queue listener timings.
const (
	// dequeueVisibility is how long a dequeued message stays invisible: the
	// storage service's default that the host relies on if it crashes.
	dequeueVisibility = 10 * time.Minute
	minPollInterval   = 100 * time.Millisecond
	// completionTimeout bounds the delete/update after an invocation, which
	// runs even while devhost stops.
	completionTimeout = 30 * time.Second
)

// queueListener polls one queue for one function.
type queueListener struct {
	h      *host
	fn     *function
	conn   string
	store  queueStore
	queue  string
	poison string
	opts   queueOptions
}

func newQueueListener(h *host, fn *function, store queueStore) *queueListener {
	return &queueListener{
		h: h, fn: fn, conn: fn.trigger.connectionName(), store: store,
		queue: fn.trigger.QueueName, poison: fn.trigger.QueueName + "-poison", opts: h.app.host.queues,
	}
}

// run polls until pollCtx ends; invocations run under workCtx, which
// outlives pollCtx by the shutdown grace period.
func (l *queueListener) run(pollCtx, workCtx context.Context) {
	log := l.h.log.With("function", l.fn.name, "queue", l.queue)
	capacity := l.opts.batchSize + l.opts.newBatchThreshold
	var (
		mu       sync.Mutex
		inFlight int
		freed    = make(chan struct{}, 1)
	)
	interval := minPollInterval
	sleep := func(d time.Duration) bool {
		select {
		case <-pollCtx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for {
		if err := l.h.ensureQueue(pollCtx, l.conn, l.store, l.queue); err != nil {
			if pollCtx.Err() != nil {
				return
			}
			log.Error("create trigger queue", "error", err.Error())
			if !sleep(l.opts.maxPollingInterval) {
				return
			}
			continue
		}
		break
	}
	for {
		// Fetch a new batch once in-flight work drops to newBatchThreshold.
		mu.Lock()
		n := min(l.opts.batchSize, capacity-inFlight)
		busy := inFlight > l.opts.newBatchThreshold || n <= 0
		mu.Unlock()
		if busy {
			select {
			case <-pollCtx.Done():
				return
			case <-freed:
			}
			continue
		}
		msgs, err := l.store.Dequeue(pollCtx, l.queue, n, dequeueVisibility)
		if err != nil {
			if pollCtx.Err() != nil {
				return
			}
			log.Error("poll queue", "error", err.Error())
			if !sleep(l.opts.maxPollingInterval) {
				return
			}
			continue
		}
		if len(msgs) == 0 {
			if !sleep(interval) {
				return
			}
			interval = min(interval*2, l.opts.maxPollingInterval)
			continue
		}
		interval = minPollInterval
		mu.Lock()
		inFlight += len(msgs)
		mu.Unlock()
		for _, m := range msgs {
			go func() {
				defer func() {
					mu.Lock()
					inFlight--
					mu.Unlock()
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
				l.process(workCtx, m)
			}()
		}
	}
}

// process handles one dequeued message.
func (l *queueListener) process(ctx context.Context, m queueMessage) {
	log := l.h.log.With("function", l.fn.name, "queue", l.queue, "message_id", m.ID, "dequeue_count", m.DequeueCount)
	text := m.Text
	if l.opts.base64 {
		b, ok := dotnetBase64(m.Text)
		if !ok {
			log.Warn("Message decoding has failed! Check MessageEncoding settings. MessageId=" + m.ID + ".")
			l.moveToPoison(ctx, m)
			return
		}
		text = string(b)
	}
	if m.DequeueCount > l.opts.maxDequeueCount {
		// Left over by a crash after its last allowed attempt.
		l.moveToPoison(ctx, m)
		return
	}
	_, err := l.h.invoke(ctx, l.fn, []any{"queue", l.queue, "message_id", m.ID, "dequeue_count", m.DequeueCount},
		func(sys invocation.Sys) *invocation.Request {
			return invocation.NewQueueRequest(l.fn.trigger.Name, invocation.QueueMessage{
				Text:            text,
				DequeueCount:    m.DequeueCount,
				ID:              m.ID,
				PopReceipt:      m.PopReceipt,
				InsertionTime:   m.InsertionTime,
				ExpirationTime:  m.ExpirationTime,
				NextVisibleTime: m.NextVisibleTime,
			}, sys)
		})
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completionTimeout)
	defer cancel()
	switch {
	case err == nil:
		if err := l.store.Delete(cctx, l.queue, m.ID, m.PopReceipt); err != nil {
			log.Error("delete processed message", "error", err.Error())
		}
	case m.DequeueCount >= l.opts.maxDequeueCount:
		l.moveToPoison(ctx, m)
	default:
		if err := l.store.SetVisibility(cctx, l.queue, m.ID, m.PopReceipt, m.Text, l.opts.visibilityTimeout); err != nil {
			log.Error("release failed message", "error", err.Error())
		}
	}
}

// moveToPoison copies the message, as stored, to {queue}-poison and deletes
// the original.
func (l *queueListener) moveToPoison(ctx context.Context, m queueMessage) {
	log := l.h.log.With("function", l.fn.name, "queue", l.queue, "message_id", m.ID, "dequeue_count", m.DequeueCount)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completionTimeout)
	defer cancel()
	if err := l.h.ensureQueue(cctx, l.conn, l.store, l.poison); err != nil {
		log.Error("create poison queue", "error", err.Error())
		return
	}
	if err := l.store.Enqueue(cctx, l.poison, m.Text); err != nil {
		log.Error("move message to poison queue", "error", err.Error())
		return
	}
	if err := l.store.Delete(cctx, l.queue, m.ID, m.PopReceipt); err != nil {
		log.Error("delete poisoned message", "error", err.Error())
	}
	l.h.stats.poisoned(l.fn.name)
	log.Warn("message moved to poison queue", "poison_queue", l.poison, "max_dequeue_count", l.opts.maxDequeueCount)
}
