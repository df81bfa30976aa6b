package main

import (
	"sort"
	"sync"
)

// functionStats are the counters of one function.
type functionStats struct {
	Trigger     string `json:"trigger"`
	Invocations int64  `json:"invocations"`
	Succeeded   int64  `json:"succeeded"`
	Failed      int64  `json:"failed"`
	InFlight    int64  `json:"inFlight"`
	Poisoned    int64  `json:"poisoned"`
}

// queueStats are the message counts of one queue. Visible is counted by
// peeking and is at most 32; Approximate is the service's count, which
// includes invisible (in-flight or delayed) messages.
type queueStats struct {
	Connection  string `json:"connection"`
	Visible     int    `json:"visible"`
	Approximate int    `json:"approximate"`
	Error       string `json:"error,omitempty"`
}

// stats counts invocations per function.
type stats struct {
	mu sync.Mutex
	fn map[string]*functionStats
}

func newStats(fns []*function) *stats {
	s := &stats{fn: map[string]*functionStats{}}
	for _, f := range fns {
		s.fn[f.name] = &functionStats{Trigger: f.trigger.Type}
	}
	return s
}

func (s *stats) get(name string) *functionStats {
	f, ok := s.fn[name]
	if !ok {
		f = &functionStats{}
		s.fn[name] = f
	}
	return f
}

func (s *stats) begin(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.get(name)
	f.Invocations++
	f.InFlight++
}

func (s *stats) end(name string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.get(name)
	f.InFlight--
	if ok {
		f.Succeeded++
	} else {
		f.Failed++
	}
}

func (s *stats) poisoned(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(name).Poisoned++
}

// snapshot copies the counters.
func (s *stats) snapshot() map[string]functionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]functionStats, len(s.fn))
	for k, v := range s.fn {
		out[k] = *v
	}
	return out
}

// watchedQueue is a queue the stats endpoint reports on.
type watchedQueue struct {
	conn, name string
}

// watchedQueues lists the trigger queues, their poison queues, the queue
// outputs and, with blob triggers, webjobs-blobtrigger-poison.
func watchedQueues(fns []*function) []watchedQueue {
	seen := map[watchedQueue]bool{}
	var out []watchedQueue
	add := func(conn, name string) {
		q := watchedQueue{conn, name}
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	for _, f := range fns {
		switch {
		case isType(f.trigger, "queueTrigger"):
			add(f.trigger.connectionName(), f.trigger.QueueName)
			add(f.trigger.connectionName(), f.trigger.QueueName+"-poison")
		case isType(f.trigger, "blobTrigger"):
			add(f.trigger.connectionName(), blobPoisonQueue)
		}
		for _, b := range f.outputs() {
			if isType(b, "queue") {
				add(b.connectionName(), b.QueueName)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
