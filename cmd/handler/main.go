// Command handler is the Azure Functions custom handler: the executable that
// host.json names. The host starts it with FUNCTIONS_CUSTOMHANDLER_PORT and
// POSTs each invocation to /{FunctionName}. Configuration is loaded and
// validated before it listens; start-up makes no network calls.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/costsync/costsync/handlers"
	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/telemetry"
)

func main() {
	// JSON on stdout: the host logs stderr lines as errors.
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := run(log); err != nil {
		log.Error("handler stopped", "error", err.Error())
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn("configuration warning", "warning", w)
	}
	// Traces and metrics over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or a
	// signal's own endpoint) is set; otherwise off, at no cost.
	tel, shutdownTelemetry, err := telemetry.Setup(context.Background(), os.Getenv)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTelemetry(ctx); err != nil {
			log.Warn("telemetry shutdown failed", "telemetry", tel.Where(), "error", err.Error())
		}
	}()
	deps, err := build(cfg, tel, log)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handlers.New(*deps),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+cfg.Port)
	if err != nil {
		return fmt.Errorf("listen on port %s: %w", cfg.Port, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("handler listening", "port", cfg.Port, "scopes", len(cfg.Scopes), "telemetry", tel.Where())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Serve returns at once on Shutdown: wait for the invocations in flight
	// to finish, so that their telemetry is flushed below.
	<-drained
	return nil
}

// build makes every client once. Managed identity is used for every Azure
// call: ManagedIdentityCredential, user-assigned when AZURE_CLIENT_ID is set.
func build(cfg *config.Config, tel *telemetry.Telemetry, log *slog.Logger) (*handlers.Deps, error) {
	var mi *azidentity.ManagedIdentityCredentialOptions
	if cfg.ClientID != "" {
		mi = &azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(cfg.ClientID)}
	}
	cred, err := azidentity.NewManagedIdentityCredential(mi)
	if err != nil {
		return nil, fmt.Errorf("managed identity: %w", err)
	}
	d, err := deps(cfg, tel.Credential(cred), log)
	if err != nil {
		return nil, err
	}
	d.Telemetry = tel
	return d, nil
}

// deps builds the handlers' dependencies on a credential.
func deps(cfg *config.Config, cred azcore.TokenCredential, log *slog.Logger) (*handlers.Deps, error) {
	cost, err := costapi.New(cred, &costapi.Options{Cloud: cfg.Cloud, Endpoint: cfg.ARMEndpoint, AllowedHosts: cfg.AllowedHosts, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	blobs, err := azblob.NewClient(cfg.BlobServiceURL, cred, nil)
	if err != nil {
		return nil, fmt.Errorf("blob client: %w", err)
	}
	q, err := queue.New(cfg.QueueServiceURL, cred, nil)
	if err != nil {
		return nil, err
	}
	co := &store.CosmosOptions{Database: cfg.CosmosDatabase, EmulatorCompat: cfg.CosmosEmulator}
	if cfg.CosmosEmulator {
		// The emulator runs on one JavaScript thread: more requests at once
		// only queue TLS handshakes behind each other.
		co.Concurrency = 4
	}
	db, err := store.NewCosmos(cfg.CosmosEndpoint, cred, co)
	if err != nil {
		return nil, err
	}
	services, err := handlers.LoadServices(cfg.ServicesFile)
	if err != nil {
		return nil, err
	}
	land := landing.New(blobs)
	return &handlers.Deps{Config: cfg, Cost: cost, Landing: land, Store: db, Queue: q, Log: log, Services: services,
		Sources: &handlers.Sources{API: cost, Landing: land, Store: db}}, nil
}
