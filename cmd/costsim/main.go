// Command costsim is a simulated Azure Cost Management and App Service
// managed-identity endpoint for local runs and integration tests. It serves
// one HTTPS listener (certificate and key given by flags) and prints exactly
// one plain line when it listens:
//
//	costsim listening on https://127.0.0.1:PORT
//
// after which it writes one JSON log line (log/slog) per request to stdout.
// SIGINT and SIGTERM shut it down gracefully.
//
// # Endpoints
//
//	GET  /msi/token?api-version=2019-08-01&resource=R[&client_id=X]      App Service identity endpoint
//	POST /{scope}/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=V
//	GET  /{scope}/providers/Microsoft.CostManagement/costDetailsOperationResults/{id}?api-version=V
//	GET  /armreports/{id}/part_{n}.csv?sv=…&sr=b&sp=r&se=…&sig=…          report blobs (SAS, no bearer)
//	POST /{scope}/providers/Microsoft.CostManagement/query?api-version=V[&$top=N][&$skiptoken=T]   Query API (query.go)
//	GET  /{scope}/providers/Microsoft.Consumption/usageDetails?api-version=V&metric=M&$filter=…    usage details (consumption.go)
//	GET  /subscriptions/{id}/providers/Microsoft.Commerce/UsageAggregates?api-version=2015-06-01-preview&reportedStartTime=…
//	                                                                       usage aggregates (commerce.go)
//	PUT  /{scope}/providers/Microsoft.CostManagement/exports/{name}, POST …/exports/{name}/run,
//	GET  …/exports/{name}/runHistory                                       native exports (exports.go)
//	GET  /_sim/truth?scope=S&metric=M&from=D&to=D                          ground truth per day
//	GET  /_sim/stats, DELETE /_sim/stats                                   counters / reset them
//	GET  /_sim/faults, POST /_sim/faults                                   fault settings
//	POST /_sim/restate                                                     bump a revision (restatement)
//	POST /_sim/storage                                                     register an export destination account
//	GET  /_sim/clock, POST /_sim/clock                                     the simulated clock (-clock)
//	GET  /_sim/report?scope=S&metric=M&from=D&to=D&part=N                  part N of the report as served now
//
// # What is faithful
//
//   - The Cost Details protocol: 202 + Location + Retry-After on create, 202
//     while in progress, then 200 with a CostDetailsOperationResults body shaped
//     like the 2024-08-01 spec example (status Completed, NoDataFound or Failed
//     with an error object); 204 on create for an empty report (fault setting).
//   - Validation errors of the spec's GenerateCostDetailsReportErrorResponse:
//     one of timePeriod/billingPeriod/invoiceId, at most one month, no older
//     than 13 months, billingPeriod for EA only, invoiceId for MCA billing
//     profiles and customers only; resource group and management group scopes
//     refused; missing api-version refused like ARM; case-insensitive paths.
//   - ARM bearer tokens must carry the management audience; report blobs are
//     downloaded without a token through a SAS link that can be tampered with
//     (403 AuthenticationFailed) or expire (403 with Azure Storage's wording),
//     with Azure Storage XML error bodies, Range and HEAD support.
//   - Report files: the real EA and MCA column sets (see schema.go), UTF-8 BOM
//     at the start of every blob, a header in every blob, RFC 4180 quoting, LF
//     line ends, MM/dd/yyyy dates (M/d/yy for some MCA exchangeRateDate values),
//     EA tag fragments without braces and MCA tag objects, AdditionalInfo JSON,
//     mixed-case resource ids, reservation and savings plan purchases, usage and
//     unused reservation rows, refunds, zero-cost rows, long and exponent-form
//     decimals, lines identical in every column, amortized versus actual cost.
//   - Throttling with Retry-After and the costmanagement entity/tenant/clienttype
//     and consumption retry-after headers; 500 and 503 errors; connection resets.
//
// # What is simplified
//
//   - Tokens are JWT-shaped but their signature is not verifiable; ARM checks
//     only the audience and nbf/exp. Any tenant is accepted. With
//     -identity-header empty, any non-empty X-IDENTITY-HEADER is accepted.
//   - Report content is a pure function of (seed, scope, metric, date,
//     revision) and -today (late data, open-month invoices). Reports of
//     different scopes are not consistent with each other: a subscription's
//     lines at subscription scope differ from its lines in its billing
//     account's report (its resources are the same).
//   - Subscriptions are EA, except ids whose fourth group is "8ca0": costsim
//     gives those to the subscriptions of MCA scopes, and answers them with the
//     MCA layout when asked at subscription scope.
//   - "At most one month": the end must be before the same day of the next
//     month (clamped to that month's end), so a calendar month always passes.
//     "13 months": the start must not be before the first day of the month 13
//     months before -today's month.
//   - An invoiceId costsim issued (the invoiceId column of closed months)
//     selects its month; any other invoiceId selects the last closed month.
//   - Restatements only happen through POST /_sim/restate, and late data (the
//     day before -today and -today itself are ~70% complete at revision 0)
//     only completes when the revision is bumped.
//   - Faults: a report fails (failReportOnce), the links of its first
//     downloaded report expire (expireLinksOnce), or it is served with a
//     validTill already past (pastValidTillOnce) once per window (scope,
//     metric, period), so a client that requests the report again succeeds;
//     POST /_sim/faults resets that memory. On blob downloads a throttle is
//     Azure Storage's 503 ServerBusy and a server error its 500 InternalError.
//     A timeout (timeoutRate) holds an ARM request for hangSeconds and then
//     answers 504 GatewayTimeout; a download sends half its body, stalls and
//     is reset. scopeErrors answers creates at a scope with 401 (ARM's text
//     for a token of another tenant), 403 (ARM's AuthorizationFailed text,
//     for billing scopes too, where the real service may word it otherwise)
//     or 422 (the WebDirect text of cost-apis.md §1.3). completeOnCreate
//     answers a create 200 with the result; linkHost puts another host in
//     Location and blobLink.
//   - The documented rate limits are not enforced unless -enforce-quota is set
//     (see quota.go for which ones and how); -quota-scale divides their periods
//     so that local runs can scale time down. With -clock, time is simulated:
//     it starts at the given instant and moves only by POST /_sim/clock.
//   - The Query API, Consumption usage details, Commerce usage aggregates and
//     native exports serve the same lines as Cost Details (sources.go and the
//     files it names say what each simplifies: Query sums are exact decimals,
//     where the service rounds; export runs are synchronous). Subscriptions
//     whose fourth group is "9a96" are pay-as-you-go: Cost Details answers
//     them 422 (offer type WebDirect), as it answers the scopes of the
//     scopeErrors fault. There is no 413 for oversized reports.
//   - Reports and operations live in memory and are dropped 2 × -link-ttl after
//     they complete (or after they are created, if never polled to the end).
//     Generation costs roughly 30 µs of CPU per line.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "costsim:", err)
		os.Exit(1)
	}
}

// config is costsim's configuration, from flags.
type config struct {
	listen         string
	certFile       string
	keyFile        string
	seed           uint64
	identityHeader string // "" accepts any non-empty X-IDENTITY-HEADER
	tenant         string
	today          time.Time // zero: the real UTC date at each request
	rowsPerDay     int
	blobRows       int
	retryAfter     int
	polls          int
	linkTTL        time.Duration
	faults         faultSettings
	enforceQuota   bool
	quotaScale     int
	clock          time.Time // zero: the real clock
	pageRows       int       // rows per page of the Query, Consumption and Commerce APIs
}

// parseFlags parses the command line into a config.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("costsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var today, faults string
	fs.StringVar(&c.listen, "listen", "127.0.0.1:0", "address to listen on")
	fs.StringVar(&c.certFile, "cert", "", "TLS certificate (PEM), required")
	fs.StringVar(&c.keyFile, "key", "", "TLS private key (PEM), required")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of all generated data and fault randomness")
	fs.StringVar(&c.identityHeader, "identity-header", "", "secret expected in X-IDENTITY-HEADER (empty: any non-empty value)")
	fs.StringVar(&c.tenant, "tenant", "", "tenant id put in tokens (default: derived from the seed)")
	fs.StringVar(&today, "today", "", "simulated current date YYYY-MM-DD (default: the real UTC date)")
	fs.IntVar(&c.rowsPerDay, "rows-per-day", 120, "approximate usage lines per scope and day (±20%)")
	fs.IntVar(&c.blobRows, "blob-rows", 0, "maximum data rows per report blob (0: one blob)")
	fs.IntVar(&c.retryAfter, "retry-after", 1, "seconds in Retry-After headers")
	fs.IntVar(&c.polls, "polls", 2, "polls answered 202 before a report is ready")
	fs.DurationVar(&c.linkTTL, "link-ttl", time.Hour, "lifetime of report blob links")
	fs.StringVar(&faults, "faults", "", `fault settings as JSON, e.g. '{"throttleRate":0.3}'`)
	fs.IntVar(&c.pageRows, "page-rows", 1000, "rows per page of the Query, usage details and usage aggregates APIs (a request's $top wins)")
	fs.BoolVar(&c.enforceQuota, "enforce-quota", false, "enforce the documented Cost Details rate limits (per scope, tenant, billing account, client, operation)")
	fs.IntVar(&c.quotaScale, "quota-scale", 1, "divide the rate limits' periods by this (60: a minute lasts a second)")
	var clock string
	fs.StringVar(&clock, "clock", "", "simulated clock start, RFC 3339; it then moves only by POST /_sim/clock (default: the real clock)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	if c.certFile == "" || c.keyFile == "" {
		errs = append(errs, errors.New("-cert and -key are required"))
	}
	if c.tenant == "" {
		c.tenant = stableGUID(c.seed, "tenant")
	} else if !isGUID(c.tenant) {
		errs = append(errs, fmt.Errorf("-tenant %q is not a GUID", c.tenant))
	}
	if today != "" {
		t, err := time.Parse(time.DateOnly, today)
		if err != nil {
			errs = append(errs, fmt.Errorf("-today %q is not YYYY-MM-DD", today))
		}
		c.today = t
	}
	if c.rowsPerDay < 0 || c.blobRows < 0 || c.retryAfter < 0 || c.polls < 0 || c.pageRows < 0 {
		errs = append(errs, errors.New("-rows-per-day, -blob-rows, -retry-after, -polls and -page-rows must not be negative"))
	}
	if c.quotaScale < 1 {
		errs = append(errs, errors.New("-quota-scale must be at least 1"))
	}
	if clock != "" {
		t, err := time.Parse(time.RFC3339, clock)
		if err != nil {
			errs = append(errs, fmt.Errorf("-clock %q is not an RFC 3339 time", clock))
		}
		c.clock = t
	}
	if c.linkTTL <= 0 {
		errs = append(errs, errors.New("-link-ttl must be positive"))
	}
	if faults != "" {
		f, err := decodeFaults([]byte(faults))
		if err != nil {
			errs = append(errs, fmt.Errorf("-faults: %w", err))
		}
		c.faults = f
	}
	return c, errors.Join(errs...)
}

// run starts costsim and serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(cfg.certFile, cfg.keyFile)
	if err != nil {
		return fmt.Errorf("load certificate: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil))
	s, err := newSim(cfg, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if _, err := fmt.Fprintf(stdout, "costsim listening on https://%s\n", ln.Addr()); err != nil {
		ln.Close()
		return fmt.Errorf("print address: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
