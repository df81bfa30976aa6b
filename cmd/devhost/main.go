package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// shutdownGrace is how long devhost waits for in-flight invocations once it
// is asked to stop.
const shutdownGrace = 10 * time.Second

func main() {
	var cfg runConfig
	flag.StringVar(&cfg.appDir, "app", "", "function app folder: host.json and function folders (required)")
	flag.IntVar(&cfg.port, "port", 7071, "HTTP port for triggers and admin endpoints (0 picks a free port)")
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1", "address to listen on")
	flag.StringVar(&cfg.handler, "handler", "", "custom handler executable (default: host.json customHandler.description.defaultExecutablePath)")
	flag.Parse()
	if cfg.appDir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg.environ = os.Environ()
	cfg.stdout = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "devhost:", err)
		os.Exit(1)
	}
}

// runConfig is what run needs; main fills it from the flags.
type runConfig struct {
	appDir  string
	port    int
	listen  string
	handler string
	environ []string
	stdout  io.Writer
	// transport, when set, is used for storage and identity requests
	// (tests trust their own certificate this way).
	transport policy.Transporter
	// onListening, when set, is called with the base URL once devhost serves.
	onListening func(baseURL string)
}

// run is devhost from start to stop: it returns nil after a clean shutdown
// when ctx ends.
func run(ctx context.Context, cfg runConfig) error {
	out := &lockedWriter{w: cfg.stdout}
	log := slog.New(slog.NewJSONHandler(out, nil))

	appDir, err := filepath.Abs(cfg.appDir)
	if err != nil {
		return fmt.Errorf("app folder: %w", err)
	}
	s, added, err := loadSettings(appDir, cfg.environ)
	if err != nil {
		return err
	}
	// Core Tools puts local.settings.json Values in the host's environment;
	// the Azure SDK reads IDENTITY_ENDPOINT and AZURE_* from there.
	for _, k := range added {
		if err := os.Setenv(k, s[k]); err != nil {
			return fmt.Errorf("set %s from local.settings.json: %w", k, err)
		}
	}
	a, err := loadApp(appDir, s)
	if err != nil {
		return err
	}
	accts := newAccounts(s, cfg.transport)
	if err := checkConnections(a, accts); err != nil {
		return err
	}

	handlerPath := a.host.handlerPath
	if cfg.handler != "" {
		handlerPath = cfg.handler
	}
	exe, err := resolveHandler(appDir, handlerPath)
	if err != nil {
		return err
	}
	workDir := appDir
	if d := a.host.handlerWorkDir; d != "" {
		workDir = d
		if !filepath.IsAbs(d) {
			workDir = filepath.Join(appDir, d)
		}
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.listen, strconv.Itoa(cfg.port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()

	w := newWorker(workerConfig{path: exe, args: a.host.handlerArgs, dir: workDir, env: s.environ(), appRoot: appDir}, log, out)
	if err := w.start(ctx); err != nil {
		return err
	}
	defer w.stop()

	h := newHost(a, log, w, accts)
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	srv := &http.Server{Handler: newServerWithTimers(h, workCtx), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	port := ln.Addr().(*net.TCPAddr).Port
	base := "http://" + net.JoinHostPort(cfg.listen, strconv.Itoa(port))
	fmt.Fprintln(out, "devhost listening on "+base)
	if cfg.onListening != nil {
		cfg.onListening(base)
	}
	log.Info("devhost started", "app", appDir, "functions", len(a.functions), "handler", exe)

	var listeners sync.WaitGroup
	srvHandler := srv.Handler.(*server)
	for _, f := range a.functions {
		start := func(run func(pollCtx, workCtx context.Context)) {
			listeners.Add(1)
			go func() { defer listeners.Done(); run(ctx, workCtx) }()
		}
		switch {
		case isType(f.trigger, "queueTrigger"):
			acc, _ := accts.get(f.trigger.connectionName()) // checked above
			qs, _ := acc.queueStore()
			start(newQueueListener(h, f, qs).run)
		case isType(f.trigger, "blobTrigger"):
			acc, _ := accts.get(f.trigger.connectionName())
			bs, _ := acc.blobStore()
			qs, _ := acc.queueStore()
			hostAcc, _ := accts.get("AzureWebJobsStorage")
			receipts, _ := hostAcc.blobStore()
			start(newBlobListener(h, f, bs, qs, receipts).run)
		case isType(f.trigger, "timerTrigger"):
			start(srvHandler.timers[strings.ToLower(f.name)].run)
		}
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		log.Error("http server stopped", "error", err.Error())
	}
	log.Info("devhost stopping: polling stopped, waiting for in-flight invocations", "grace", shutdownGrace.String())
	shutCtx, cancelShut := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancelShut()
	shutDone := make(chan struct{})
	go func() { _ = srv.Shutdown(shutCtx); close(shutDone) }()
	if !h.waitIdle(shutdownGrace) {
		log.Warn("in-flight invocations still running after the grace period; cancelling them")
	}
	cancelWork()
	listeners.Wait()
	<-shutDone
	_ = srv.Close()
	w.stop()
	log.Info("devhost stopped")
	return nil
}

// newServerWithTimers builds the server and one timer listener per timer
// function (the admin API can fire them).
func newServerWithTimers(h *host, workCtx context.Context) *server {
	s := newServer(h, workCtx)
	for _, f := range h.app.functions {
		if isType(f.trigger, "timerTrigger") {
			s.timers[strings.ToLower(f.name)] = newTimerListener(h, f)
		}
	}
	return s
}

// checkConnections resolves every storage connection the functions use,
// without network calls, and reports all problems at once.
func checkConnections(a *app, accts *accounts) error {
	var errs []error
	need := func(conn string, blob, queue bool, why string) {
		acc, err := accts.get(conn)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", why, err))
			return
		}
		if blob {
			if _, err := acc.blobStore(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", why, err))
			}
		}
		if queue {
			if _, err := acc.queueStore(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", why, err))
			}
		}
	}
	for _, f := range a.functions {
		switch {
		case isType(f.trigger, "queueTrigger"):
			need(f.trigger.connectionName(), false, true, "function "+f.name)
		case isType(f.trigger, "blobTrigger"):
			need(f.trigger.connectionName(), true, true, "function "+f.name)
			need("AzureWebJobsStorage", true, false, "function "+f.name+" (blob receipts)")
		}
		for _, b := range f.outputs() {
			if isType(b, "queue") {
				need(b.connectionName(), false, true, "function "+f.name+" output "+b.Name)
			}
		}
	}
	return errors.Join(errs...)
}
