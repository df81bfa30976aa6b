package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/costsync/costsync/shared/invocation"
)

// Blob trigger constants of the host.
const (
	receiptContainer = "azure-webjobs-hosts"
	blobPoisonQueue  = "webjobs-blobtrigger-poison"
	blobScanInterval = time.Second
)

// blobPattern is a blob trigger path: a literal container and a name
// pattern with {token}s.
type blobPattern struct {
	container string
	prefix    string // literal start of the name, for listing
	re        *regexp.Regexp
	tokens    []string
}

var (
	pathToken = regexp.MustCompile(`\{([^{}]*)\}`)
	tokenName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// parseBlobPath parses "container/{name}", "container/in/{name}.json",
// "container/{blobname}.{blobextension}" or "container".
func parseBlobPath(path string) (*blobPattern, error) {
	path = strings.TrimPrefix(path, "/")
	cont, rest, _ := strings.Cut(path, "/")
	if cont == "" || strings.ContainsAny(cont, "{}") {
		return nil, fmt.Errorf("blob trigger path %q: want a literal container, as in container/{name}", path)
	}
	p := &blobPattern{container: cont}
	var re strings.Builder
	re.WriteString("^")
	last := 0
	for _, m := range pathToken.FindAllStringSubmatchIndex(rest, -1) {
		lit := rest[last:m[0]]
		if len(p.tokens) == 0 {
			p.prefix = lit
		}
		re.WriteString(regexp.QuoteMeta(lit))
		name := rest[m[2]:m[3]]
		if name == "" || !tokenName.MatchString(name) {
			return nil, fmt.Errorf("blob trigger path %q: bad token {%s}", path, name)
		}
		p.tokens = append(p.tokens, name)
		re.WriteString("(.+)")
		last = m[1]
	}
	if len(p.tokens) == 0 {
		p.prefix = rest
		if rest != "" {
			re.WriteString(regexp.QuoteMeta(rest))
		} else {
			re.WriteString(".+")
		}
	} else {
		re.WriteString(regexp.QuoteMeta(rest[last:]))
	}
	re.WriteString("$")
	var err error
	if p.re, err = regexp.Compile(re.String()); err != nil {
		return nil, fmt.Errorf("blob trigger path %q: %w", path, err)
	}
	return p, nil
}

// match returns the tokens of a blob name, or false.
func (p *blobPattern) match(name string) (map[string]string, bool) {
	m := p.re.FindStringSubmatch(name)
	if m == nil {
		return nil, false
	}
	tokens := make(map[string]string, len(p.tokens))
	for i, t := range p.tokens {
		tokens[t] = m[i+1]
	}
	return tokens, true
}

// blobListener scans one container for one function.
type blobListener struct {
	h       *host
	fn      *function
	conn    string
	store   blobStore  // the trigger's account
	queues  queueStore // the trigger's account, for the poison queue
	hostBS  blobStore  // AzureWebJobsStorage, for receipts
	pattern *blobPattern
	opts    blobOptions

	mu       sync.Mutex
	done     map[string]bool // name|etag with a receipt
	running  map[string]bool
	failures map[string]int
}

func newBlobListener(h *host, fn *function, store blobStore, queues queueStore, receipts blobStore) *blobListener {
	p, _ := parseBlobPath(fn.trigger.Path) // validated at load
	return &blobListener{
		h: h, fn: fn, conn: fn.trigger.connectionName(), store: store, queues: queues, hostBS: receipts,
		pattern: p, opts: h.app.host.blobs,
		done: map[string]bool{}, running: map[string]bool{}, failures: map[string]int{},
	}
}

// run scans every second until pollCtx ends; invocations run under workCtx.
func (l *blobListener) run(pollCtx, workCtx context.Context) {
	log := l.h.log.With("function", l.fn.name, "container", l.pattern.container)
	sem := make(chan struct{}, l.opts.maxDegreeOfParallelism)
	ready := false
	for {
		if !ready {
			err := errors.Join(
				l.h.ensureContainer(pollCtx, l.conn, l.store, l.pattern.container),
				l.h.ensureContainer(pollCtx, "AzureWebJobsStorage", l.hostBS, receiptContainer),
			)
			if err != nil && pollCtx.Err() == nil {
				log.Error("create containers", "error", err.Error())
			}
			ready = err == nil
		}
		if ready {
			l.scan(pollCtx, workCtx, sem)
		}
		select {
		case <-pollCtx.Done():
			return
		case <-time.After(blobScanInterval):
		}
	}
}

// scan lists the container once and starts an invocation for each new blob.
func (l *blobListener) scan(pollCtx, workCtx context.Context, sem chan struct{}) {
	items, err := l.store.List(pollCtx, l.pattern.container, l.pattern.prefix)
	if err != nil {
		if pollCtx.Err() == nil {
			l.h.log.Error("scan container", "function", l.fn.name, "container", l.pattern.container, "error", err.Error())
		}
		return
	}
	for _, it := range items {
		tokens, ok := l.pattern.match(it.Name)
		if !ok {
			continue
		}
		key := it.Name + "|" + it.ETag
		l.mu.Lock()
		skip := l.done[key] || l.running[key]
		l.mu.Unlock()
		if skip {
			continue
		}
		has, err := l.hostBS.Exists(pollCtx, receiptContainer, l.receiptName(it))
		if err != nil {
			if pollCtx.Err() == nil {
				l.h.log.Error("read blob receipt", "function", l.fn.name, "blob", it.Name, "error", err.Error())
			}
			continue
		}
		if has {
			l.mu.Lock()
			l.done[key] = true
			l.mu.Unlock()
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-pollCtx.Done():
			return
		}
		l.mu.Lock()
		l.running[key] = true
		l.mu.Unlock()
		go func() {
			defer func() { <-sem }()
			l.process(workCtx, it, tokens)
			l.mu.Lock()
			delete(l.running, key)
			l.mu.Unlock()
		}()
	}
}

// receiptName is the receipt blob of one blob version.
func (l *blobListener) receiptName(it blobItem) string {
	return fmt.Sprintf("blobreceipts/devhost/%s/%s/%s/%s", l.fn.name, l.pattern.container, it.Name, strings.Trim(it.ETag, `"`))
}

// process invokes the function for one blob and records the outcome.
func (l *blobListener) process(ctx context.Context, it blobItem, tokens map[string]string) {
	log := l.h.log.With("function", l.fn.name, "container", l.pattern.container, "blob", it.Name)
	key := it.Name + "|" + it.ETag
	content, err := l.store.Download(ctx, l.pattern.container, it.Name, it.ETag)
	if errors.Is(err, errBlobChanged) {
		return // the next scan sees the new version
	}
	if err != nil {
		log.Error("download triggering blob", "error", err.Error())
		return
	}
	res, err := l.h.invoke(ctx, l.fn, []any{"container", l.pattern.container, "blob", it.Name},
		func(sys invocation.Sys) *invocation.Request {
			return invocation.NewBlobRequest(l.fn.trigger.Name, invocation.BlobInfo{
				Content:       content,
				URI:           redactURL(l.store.URL(l.pattern.container, it.Name)),
				Tokens:        tokens,
				ContentType:   it.ContentType,
				ContentLength: it.ContentLength,
				LastModified:  it.LastModified,
				CreatedOn:     it.CreatedOn,
				Metadata:      it.Metadata,
			}, sys)
		})
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completionTimeout)
	defer cancel()
	if err == nil {
		l.writeReceipt(cctx, it, key, res.id, "succeeded")
		return
	}
	l.mu.Lock()
	l.failures[key]++
	n := l.failures[key]
	l.mu.Unlock()
	if n < l.opts.poisonBlobThreshold {
		return // retried at the next scan
	}
	msg, _ := json.Marshal(map[string]string{
		"FunctionId":    "Host.Functions." + l.fn.name,
		"BlobType":      "BlockBlob",
		"ContainerName": l.pattern.container,
		"BlobName":      it.Name,
		"ETag":          it.ETag,
	})
	if err := l.h.ensureQueue(cctx, l.conn, l.queues, blobPoisonQueue); err != nil {
		log.Error("create blob poison queue", "error", err.Error())
		return
	}
	if err := l.queues.Enqueue(cctx, blobPoisonQueue, l.h.encodeMessage(msg)); err != nil {
		log.Error("enqueue blob poison message", "error", err.Error())
		return
	}
	l.h.stats.poisoned(l.fn.name)
	log.Warn("blob moved to poison queue", "poison_queue", blobPoisonQueue, "attempts", n)
	l.writeReceipt(cctx, it, key, "", "poisoned")
}

func (l *blobListener) writeReceipt(ctx context.Context, it blobItem, key, invocationID, outcome string) {
	body, _ := json.Marshal(map[string]string{"invocationId": invocationID, "outcome": outcome, "etag": it.ETag})
	if err := l.hostBS.Upload(ctx, receiptContainer, l.receiptName(it), body); err != nil {
		l.h.log.Error("write blob receipt", "function", l.fn.name, "blob", it.Name, "error", err.Error())
		return
	}
	l.mu.Lock()
	l.done[key] = true
	delete(l.failures, key)
	l.mu.Unlock()
}
