package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/costsync/costsync/handlers"
	"github.com/costsync/costsync/internal/inproc"
	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/costapi"
	"github.com/costsync/costsync/shared/invocation"
	"github.com/costsync/costsync/shared/store"
)

// connection holds the flags of the verbs that reach Cosmos DB and Cost
// Management from a laptop (ingest, backfill, status, verify). Every flag
// defaults to the app setting of the same meaning, so the same
// local.settings values work for the command line.
type connection struct {
	scopes     multiFlag
	metrics    string
	cosmos     string
	database   string
	emulator   bool
	cloud      string
	arm        string
	allowed    string
	credential string
}

// multiFlag collects a repeatable flag; each value may itself list several,
// separated by commas or semicolons.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ";") }

func (m *multiFlag) Set(v string) error {
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' }) {
		if s = strings.TrimSpace(s); s != "" {
			*m = append(*m, s)
		}
	}
	return nil
}

// register adds the connection flags; withScopes adds --scope and --metric.
func (c *connection) register(fs *flag.FlagSet, withScopes bool) {
	if withScopes {
		fs.Var(&c.scopes, "scope", "scope to work on, repeatable (default: "+config.KeyScopes+")")
		fs.StringVar(&c.metrics, "metric", "", "ActualCost, AmortizedCost or both, comma-separated (default: "+config.KeyMetrics+", else ActualCost)")
	}
	fs.StringVar(&c.cosmos, "cosmos-endpoint", "", "Cosmos DB endpoint (default: "+config.KeyCosmosEndpoint+")")
	fs.StringVar(&c.database, "database", "", "Cosmos DB database (default: "+config.KeyCosmosDatabase+", else costsync)")
	fs.BoolVar(&c.emulator, "cosmos-emulator", false, "work around the local Cosmos DB emulator's bugs (never against Azure)")
	fs.StringVar(&c.cloud, "cloud", "", "public, china or usgov (default: "+config.KeyCloud+", else public)")
	fs.StringVar(&c.arm, "arm-endpoint", "", "Cost Management endpoint instead of the cloud's (a simulator)")
	fs.StringVar(&c.allowed, "allowed-hosts", "", "extra host[:port] values report links may point at (a simulator)")
	fs.StringVar(&c.credential, "credential", "default", "default: DefaultAzureCredential (environment, managed identity, Azure CLI, ...); cli: the Azure CLI's sign-in only (az login)")
}

// config loads the settings: the flags over the environment. The storage
// account of the function app is not needed.
func (c *connection) config() (*config.Config, error) {
	over := map[string]string{
		config.KeyCosmosEndpoint: c.cosmos, config.KeyCosmosDatabase: c.database, config.KeyCloud: c.cloud,
		config.KeyARMEndpoint: c.arm, config.KeyAllowedHosts: c.allowed, config.KeyMetrics: c.metrics,
		config.KeyScopes: strings.Join(c.scopes, ";"),
	}
	if c.emulator {
		over[config.KeyCosmosEmulator] = "true"
	}
	return config.LoadTool(func(k string) string {
		if v := over[k]; v != "" {
			return v
		}
		return os.Getenv(k)
	})
}

// azureCredential is the laptop's credential.
func (c *connection) azureCredential() (azcore.TokenCredential, error) {
	switch c.credential {
	case "cli":
		return azidentity.NewAzureCLICredential(nil)
	case "default", "":
		return azidentity.NewDefaultAzureCredential(nil)
	}
	return nil, usagef("--credential %q: use default or cli", c.credential)
}

// open builds the configuration, credential and store.
func (c *connection) open() (*config.Config, azcore.TokenCredential, *store.Cosmos, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, nil, nil, err
	}
	cred, err := c.azureCredential()
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := store.NewCosmos(cfg.CosmosEndpoint, cred, &store.CosmosOptions{Database: cfg.CosmosDatabase, EmulatorCompat: cfg.CosmosEmulator})
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, cred, db, nil
}

// appRun is the function app in this process: the handler's functions on
// an in-memory queue, landing report parts in a folder.
type appRun struct {
	cfg  *config.Config
	db   *store.Cosmos
	host *inproc.Host
}

// newPipeline builds the pipeline; work is the folder for report parts.
func (c *connection) newPipeline(work string, concurrency int, stderr io.Writer) (*appRun, error) {
	cfg, cred, db, err := c.open()
	if err != nil {
		return nil, err
	}
	cost, err := costapi.New(cred, &costapi.Options{Cloud: cfg.Cloud, Endpoint: cfg.ARMEndpoint, AllowedHosts: cfg.AllowedHosts})
	if err != nil {
		return nil, err
	}
	host, err := inproc.New(&inproc.Options{Concurrency: concurrency})
	if err != nil {
		return nil, err
	}
	services, err := handlers.LoadServices(cfg.ServicesFile)
	if err != nil {
		return nil, err
	}
	host.Serve(handlers.New(handlers.Deps{Config: cfg, Cost: cost, Landing: host.Landing(work), Store: db, Queue: host, Now: host.Now, Log: quietLog(stderr), Services: services}))
	return &appRun{cfg: cfg, db: db, host: host}, nil
}

// reader is the handlers on the ledger alone, for the verbs that only read.
func (c *connection) reader() (*appRun, error) {
	cfg, _, db, err := c.open()
	if err != nil {
		return nil, err
	}
	host, err := inproc.New(nil)
	if err != nil {
		return nil, err
	}
	host.Serve(handlers.New(handlers.Deps{Config: cfg, Store: db, Queue: host, Now: host.Now}))
	return &appRun{cfg: cfg, db: db, host: host}, nil
}

// get calls an http function of the pipeline and decodes its JSON answer.
func (p *appRun) get(ctx context.Context, function, url string, params, query map[string]string, v any) error {
	res, body, err := p.host.HTTP(ctx, function, invocation.HTTP{URL: url, Method: "GET", Params: params, Query: query})
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("%s: %s", function, apiError(body))
	}
	return json.Unmarshal(body, v)
}

// apiError is the error message of a JSON error body.
func apiError(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return string(body)
}

// parseDay parses a --from or --to flag.
func parseDay(name, v string) (time.Time, error) {
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		return time.Time{}, usagef("--%s %q: want YYYY-MM-DD", name, v)
	}
	return t, nil
}

var errFailed = errors.New("some windows failed")

// quietLog passes the handlers' warnings and errors (retries, alerts) to
// stderr as text; their per-invocation lines would drown the progress.
func quietLog(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
