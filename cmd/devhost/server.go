package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/costsync/costsync/shared/invocation"
)

// maxRequestBody bounds an HTTP trigger's request body (the host's limit is
// 100 MB).
const maxRequestBody = 100 << 20

// server answers HTTP triggers and the admin endpoints.
type server struct {
	h      *host
	routes []*route
	timers map[string]*timerListener // by lower-case function name
	queues []watchedQueue
	// workCtx is the context of invocations started here.
	workCtx context.Context
}

func newServer(h *host, workCtx context.Context) *server {
	s := &server{h: h, timers: map[string]*timerListener{}, queues: watchedQueues(h.app.functions), workCtx: workCtx}
	for _, f := range h.app.functions {
		if !isType(f.trigger, "httpTrigger") {
			continue
		}
		r, _ := parseRoute(f.routeTemplate()) // validated at load
		r.fn = f
		for _, m := range f.trigger.Methods {
			r.methods = append(r.methods, strings.ToUpper(m))
		}
		s.routes = append(s.routes, r)
	}
	sortRoutes(s.routes)
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/admin/host/status" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]string{"id": "devhost", "state": "Running", "version": hostVersion})
	case p == "/admin/devhost/stats" && r.Method == http.MethodGet:
		s.serveStats(w, r)
	case p == "/admin/devhost/kill-handler" && r.Method == http.MethodPost:
		s.serveKillHandler(w, r)
	case strings.HasPrefix(p, "/admin/functions/") && r.Method == http.MethodPost:
		s.serveAdminInvoke(w, r, strings.TrimPrefix(p, "/admin/functions/"))
	default:
		s.serveTrigger(w, r)
	}
}

// serveAdminInvoke runs a timer function now, as the host's admin API does.
func (s *server) serveAdminInvoke(w http.ResponseWriter, r *http.Request, name string) {
	var body struct {
		Input string `json:"input"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil && err != io.EOF {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be {\"input\":\"...\"}"})
		return
	}
	t, ok := s.timers[strings.ToLower(name)]
	if !ok {
		for _, f := range s.h.app.functions {
			if strings.EqualFold(f.name, name) {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "devhost runs only timer functions from the admin API; " + f.name + " has a " + f.trigger.Type})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no function " + name})
		return
	}
	go t.fire(s.workCtx, false)
	w.WriteHeader(http.StatusAccepted)
}

// serveStats reports the counters per function and the message counts of
// every queue devhost reads or writes.
func (s *server) serveStats(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	queues := map[string]queueStats{}
	names := map[string]int{}
	for _, q := range s.queues {
		names[q.name]++
	}
	for _, q := range s.queues {
		key := q.name
		if names[q.name] > 1 {
			key = q.conn + "/" + q.name
		}
		st := queueStats{Connection: q.conn}
		acc, err := s.h.accounts.get(q.conn)
		var qs queueStore
		if err == nil {
			qs, err = acc.queueStore()
		}
		if err == nil {
			st.Visible, st.Approximate, err = qs.Counts(ctx, q.name)
		}
		if err != nil {
			st.Error = err.Error()
		}
		queues[key] = st
	}
	writeJSON(w, http.StatusOK, map[string]any{"functions": s.h.stats.snapshot(), "queues": queues})
}

// serveTrigger routes a request to an HTTP-triggered function.
func (s *server) serveTrigger(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	prefix := s.h.app.host.routePrefix
	if prefix != "" {
		lp := "/" + strings.ToLower(prefix)
		lower := strings.ToLower(path)
		if lower != lp && !strings.HasPrefix(lower, lp+"/") {
			http.NotFound(w, r)
			return
		}
		path = path[len(lp):]
	}
	if path == "" {
		path = "/"
	}
	var allowed []string
	for _, rt := range s.routes {
		params, ok := rt.match(path)
		if !ok {
			continue
		}
		if len(rt.methods) > 0 && !containsFold(rt.methods, r.Method) {
			allowed = append(allowed, rt.methods...)
			continue
		}
		s.invokeHTTP(w, r, rt.fn, params)
		return
	}
	if len(allowed) > 0 {
		sort.Strings(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	http.NotFound(w, r)
}

// invokeHTTP runs an HTTP-triggered function and writes its answer; a
// failed invocation answers 500 with no body, as the host does.
func (s *server) invokeHTTP(w http.ResponseWriter, r *http.Request, fn *function, params map[string]string) {
	if s.h.app.host.forwardHTTP && isHTTPOnly(fn) {
		s.forward(w, r, fn)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	req := invocation.HTTP{
		URL:     requestURL(r),
		Method:  r.Method,
		Query:   map[string]string{},
		Headers: map[string][]string{},
		Params:  params,
	}
	for k, v := range r.URL.Query() {
		req.Query[k] = strings.Join(v, ",")
	}
	for k, v := range r.Header {
		req.Headers[k] = v
	}
	req.Headers["Host"] = []string{r.Host}
	if len(body) > 0 {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "application/octet-stream" || strings.HasPrefix(mt, "multipart/") {
			req.Body = base64.StdEncoding.EncodeToString(body)
		} else {
			req.Body = string(body)
		}
	}
	res, err := s.h.invoke(r.Context(), fn, []any{"method", r.Method, "path", r.URL.Path},
		func(sys invocation.Sys) *invocation.Request {
			return invocation.NewHTTPRequest(fn.trigger.Name, req, sys)
		})
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if res.http == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	res.http.write(w)
}

// forward proxies an HTTP-only function to the handler at the original path
// (enableForwardingHttpRequest).
func (s *server) forward(w http.ResponseWriter, r *http.Request, fn *function) {
	s.h.inflight.Add(1)
	defer s.h.inflight.Add(-1)
	s.h.stats.begin(fn.name)
	start := time.Now()
	base, err := s.h.handler.baseURL(r.Context())
	if err != nil {
		s.h.stats.end(fn.name, false)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	target, _ := url.Parse(base)
	id := newUUID()
	status := 0
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path, pr.Out.URL.RawPath = r.URL.Path, r.URL.RawPath
			pr.Out.Header.Set("X-Azure-Functions-InvocationId", id)
			pr.Out.Header.Set("X-Azure-Functions-HostVersion", hostVersion)
			pr.Out.Header.Set("User-Agent", "Azure-Functions-Host/"+hostVersion)
		},
		ModifyResponse: func(resp *http.Response) error { status = resp.StatusCode; return nil },
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			w.WriteHeader(http.StatusInternalServerError)
		},
	}
	proxy.ServeHTTP(w, r)
	s.h.stats.end(fn.name, status != 0)
	s.h.log.Info("invocation", "function", fn.name, "invocation_id", id, "trigger", fn.trigger.Type,
		"duration_ms", float64(time.Since(start).Microseconds())/1000, "outcome", map[bool]string{true: "succeeded", false: "failed"}[status != 0],
		"status", status, "mode", "forwarded")
}

// isHTTPOnly is the host's IsHttpInAndOutFunction: one httpTrigger in and
// one http out.
func isHTTPOnly(fn *function) bool {
	return len(fn.bindings) == 2 && isType(fn.trigger, "httpTrigger") && len(fn.outputs()) == 1 && isType(fn.outputs()[0], "http")
}

// requestURL is the host's Url: scheme, Host header, path and query.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
