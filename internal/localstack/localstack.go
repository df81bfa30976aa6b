// Package localstack starts and stops the local stand-ins for costsync's
// Azure dependencies: Azurite (Blob and Queue, HTTPS with --oauth basic), the
// Cosmos DB emulator (@vercel/cosmosdb-server behind tools/npm/cosmos-tls.js),
// costsim (Cost Management and the managed-identity endpoint) and devhost
// (the Functions host stand-in that runs the handler). It serves make run,
// make test and integration tests.
//
// All components listen on 127.0.0.1 on ports chosen by the system, share
// one generated self-signed certificate and run in their own process groups.
// The emulators come from tools/npm/node_modules (make deps) and need node on
// PATH; costsim, devhost and the handler are the binaries in bin/ (make
// build). See reference/local-stack.md for what the emulators do and do not
// imitate. The package runs on Unix only.
package localstack

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Component names, as used in log file names, progress lines and Restart.
const (
	nameBlob    = "azurite-blob"
	nameQueue   = "azurite-queue"
	nameCosmos  = "cosmos"
	nameCostsim = "costsim"
	nameDevhost = "devhost"
)

// Components selects the components Start runs.
type Components struct {
	Storage bool // Azurite Blob and Queue
	Cosmos  bool // the Cosmos DB emulator
	Costsim bool // costsim: Cost Management and the managed-identity endpoint
	Devhost bool // devhost, which runs bin/handler
}

// Options configures Start.
type Options struct {
	// Dir is the state directory: certs/ holds the certificate, reused while
	// it is valid, and logs/ one log per component. "" means a new temporary
	// directory, removed by Close. Two stacks running at the same time must
	// not share a Dir.
	Dir string
	// RepoRoot is the repository root, holding tools/npm and bin. "" means
	// the nearest directory at or above the working directory with a go.mod.
	RepoRoot string
	// Components selects what to start.
	Components Components
	// CostsimArgs are extra flags for costsim, e.g. -rows-per-day 50.
	CostsimArgs []string
	// DevhostPort is devhost's port; 0 means any free port.
	DevhostPort int
	// Env holds extra settings for devhost and the handler. They are added
	// last and win over the stack's own settings.
	Env map[string]string
	// Log receives one progress line per component; nil discards them.
	Log io.Writer
}

// Stack is a running set of local components. Its fields are filled in for
// the components that were started. Close stops everything.
type Stack struct {
	// CertFile and KeyFile are the PEM certificate every HTTPS component
	// serves, and its key.
	CertFile, KeyFile string
	// BlobURL and QueueURL are Azurite's service URLs,
	// https://127.0.0.1:PORT/devstoreaccount1.
	BlobURL, QueueURL string
	// CosmosURL is the Cosmos DB emulator's endpoint, https://127.0.0.1:PORT/.
	CosmosURL string
	// CostsimURL is costsim's base URL, https://127.0.0.1:PORT.
	CostsimURL string
	// DevhostURL is devhost's base URL, http://127.0.0.1:PORT.
	DevhostURL string
	// IdentityEndpoint and IdentityHeader are costsim's App Service
	// managed-identity endpoint (CostsimURL/msi/token) and its secret.
	IdentityEndpoint, IdentityHeader string
	// Env is the list of settings, KEY=VALUE, that the stack adds to devhost's
	// environment (and through devhost to the handler's): SSL_CERT_FILE, the
	// identity endpoint, AzureWebJobsStorage__*, COSTSYNC_* and Options.Env.
	// devhost's full environment is this process's environment without
	// AZURE_*, IDENTITY_*, MSI_* and AzureWebJobsStorage*, plus Env.
	Env []string

	dir, repoRoot string
	removeDir     bool                             // Dir was created by Start
	logf          func(format string, args ...any) // progress lines
	transport     *http.Transport

	mu       sync.Mutex
	specs    map[string]spec
	procs    map[string]*process
	order    []string // start order of procs
	closed   bool
	closeErr error
	savedEnv map[string]*string // process environment replaced by Credential
}

// Start starts the selected components and returns once all of them are
// ready. ctx bounds the start-up only; the components run until Close. On
// error, Start stops whatever it started. An error about a missing
// prerequisite names the command that installs or builds it.
func Start(ctx context.Context, o Options) (*Stack, error) {
	return start(ctx, o, writerLogf(o.Log))
}

// start is Start with progress lines going to logf.
func start(ctx context.Context, o Options, logf func(format string, args ...any)) (*Stack, error) {
	s, err := newStack(o, logf)
	if err != nil {
		return nil, err
	}
	if err := s.start(ctx, o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// newStack resolves the directories, checks the prerequisites and prepares
// the certificate, starting nothing.
func newStack(o Options, logf func(format string, args ...any)) (*Stack, error) {
	root := o.RepoRoot
	if root == "" {
		r, err := findRepoRoot()
		if err != nil {
			return nil, err
		}
		root = r
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("localstack: repo root: %w", err)
	}
	if err := checkPrerequisites(root, o.Components); err != nil {
		return nil, err
	}
	s := &Stack{
		repoRoot: root,
		logf:     logf,
		specs:    map[string]spec{},
		procs:    map[string]*process{},
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "costsync-stack-")
		if err != nil {
			return nil, fmt.Errorf("localstack: state dir: %w", err)
		}
		s.dir, s.removeDir = d, true
	} else if s.dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, fmt.Errorf("localstack: state dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "logs"), 0o755); err != nil {
		s.cleanupDir()
		return nil, fmt.Errorf("localstack: state dir: %w", err)
	}
	s.CertFile, s.KeyFile, err = ensureCert(filepath.Join(s.dir, "certs"), time.Now())
	if err != nil {
		s.cleanupDir()
		return nil, fmt.Errorf("localstack: %w", err)
	}
	pem, err := os.ReadFile(s.CertFile)
	if err != nil {
		s.cleanupDir()
		return nil, fmt.Errorf("localstack: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		s.cleanupDir()
		return nil, fmt.Errorf("localstack: no certificate in %s", s.CertFile)
	}
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	s.transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return s, nil
}

// start runs the components: the emulators and costsim at the same time,
// then devhost, which needs all their addresses.
func (s *Stack) start(ctx context.Context, o Options) error {
	npm := filepath.Join(s.repoRoot, "tools", "npm")
	bin := filepath.Join(s.repoRoot, "bin")
	var first []spec
	if o.Components.Storage {
		for _, svc := range []struct {
			name, flag string
			ready      readyLine
		}{{nameBlob, "blob", readyBlob}, {nameQueue, "queue", readyQueue}} {
			first = append(first, spec{
				name: svc.name,
				path: filepath.Join(npm, "node_modules", ".bin", svc.name),
				args: func(port int) []string {
					return []string{
						"--" + svc.flag + "Host", "127.0.0.1", "--" + svc.flag + "Port", strconv.Itoa(port),
						"--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
						"--oauth", "basic", "--cert", s.CertFile, "--key", s.KeyFile,
					}
				},
				dir:   s.dir,
				ready: svc.ready,
			})
		}
	}
	if o.Components.Cosmos {
		first = append(first, spec{
			name: nameCosmos,
			path: lookPath("node"),
			args: func(port int) []string {
				return []string{filepath.Join(npm, "cosmos-tls.js"), strconv.Itoa(port), s.CertFile, s.KeyFile}
			},
			dir:   s.dir,
			ready: readyCosmos,
		})
	}
	if o.Components.Costsim {
		header, err := randomHex(16)
		if err != nil {
			return err
		}
		s.IdentityHeader = header
		extra := slices.Clone(o.CostsimArgs)
		first = append(first, spec{
			name: nameCostsim,
			path: filepath.Join(bin, "costsim"),
			args: func(port int) []string {
				return append([]string{
					"-listen", "127.0.0.1:" + strconv.Itoa(port),
					"-cert", s.CertFile, "-key", s.KeyFile,
					"-identity-header", header,
				}, extra...)
			},
			env:   append(childEnviron(os.Environ(), nil), "SSL_CERT_FILE="+s.CertFile),
			dir:   s.dir,
			ready: readyCostsim,
		})
	}

	if err := s.startAll(ctx, first); err != nil {
		return err
	}
	s.Env = s.settings(o)
	if o.Components.Devhost {
		return s.startAll(ctx, []spec{{
			name: nameDevhost,
			path: filepath.Join(bin, "devhost"),
			args: func(port int) []string {
				return []string{
					"-app", s.repoRoot, "-port", strconv.Itoa(port), "-listen", "127.0.0.1",
					"-handler", filepath.Join(bin, "handler"),
				}
			},
			env:   childEnviron(os.Environ(), s.Env),
			dir:   s.dir,
			ready: readyDevhost,
			port:  o.DevhostPort,
		}})
	}
	return nil
}

// startAll starts specs concurrently and records the ones that come up. It
// returns every start error.
func (s *Stack) startAll(ctx context.Context, specs []spec) error {
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, sp := range specs {
		wg.Go(func() {
			begin := time.Now()
			proc, err := startProcess(ctx, sp, sp.port, s.logPath(sp.name), false)
			if err != nil {
				errs[i] = fmt.Errorf("localstack: %w", err)
				return
			}
			s.mu.Lock()
			s.specs[sp.name] = sp
			s.procs[sp.name] = proc
			s.order = append(s.order, sp.name)
			s.setURL(sp.name, proc.port)
			url := s.url(sp.name)
			s.mu.Unlock()
			s.logf("localstack: %s ready at %s (%.2fs)\n", sp.name, url, time.Since(begin).Seconds())
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// setURL fills in the Stack fields of component name listening on port.
// Called with s.mu held.
func (s *Stack) setURL(name string, port int) {
	base := "https://127.0.0.1:" + strconv.Itoa(port)
	switch name {
	case nameBlob:
		s.BlobURL = base + "/devstoreaccount1"
	case nameQueue:
		s.QueueURL = base + "/devstoreaccount1"
	case nameCosmos:
		s.CosmosURL = base + "/"
	case nameCostsim:
		s.CostsimURL = base
		s.IdentityEndpoint = base + "/msi/token"
	case nameDevhost:
		s.DevhostURL = "http://127.0.0.1:" + strconv.Itoa(port)
	}
}

// url returns the base URL of component name. Called with s.mu held.
func (s *Stack) url(name string) string {
	scheme := s.specs[name].ready.scheme
	return scheme + "://127.0.0.1:" + strconv.Itoa(s.procs[name].port)
}

func (s *Stack) logPath(name string) string {
	return filepath.Join(s.dir, "logs", name+".log")
}

// settings returns the settings the stack hands to devhost and the handler,
// in a fixed order, with o.Env last (sorted by key) replacing equal keys.
func (s *Stack) settings(o Options) []string {
	type kv struct{ k, v string }
	list := []kv{{"SSL_CERT_FILE", s.CertFile}}
	if s.IdentityEndpoint != "" {
		list = append(list, kv{"IDENTITY_ENDPOINT", s.IdentityEndpoint}, kv{"IDENTITY_HEADER", s.IdentityHeader})
	}
	if s.BlobURL != "" {
		list = append(list,
			kv{"AzureWebJobsStorage__blobServiceUri", s.BlobURL},
			kv{"AzureWebJobsStorage__queueServiceUri", s.QueueURL},
			kv{"AzureWebJobsStorage__credential", "managedidentity"})
	}
	if s.CosmosURL != "" {
		list = append(list, kv{"COSTSYNC_COSMOS_ENDPOINT", s.CosmosURL}, kv{"COSTSYNC_COSMOS_EMULATOR", "true"})
	}
	if s.CostsimURL != "" {
		list = append(list,
			kv{"COSTSYNC_ARM_ENDPOINT", s.CostsimURL},
			kv{"COSTSYNC_ALLOWED_HOSTS", strings.TrimPrefix(s.CostsimURL, "https://")})
	}
	// The FinOps toolkit's Services.csv, read in place from the team's real
	// data next to the repository (never copied into it), when it is there.
	if p := filepath.Join(s.repoRoot, "..", "shared", "testdata", "real", "finops-toolkit", "open-data", "Services.csv"); fileExists(p) {
		list = append(list, kv{"COSTSYNC_SERVICES_FILE", p})
	}
	keys := make([]string, 0, len(o.Env))
	for k := range o.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		i := slices.IndexFunc(list, func(e kv) bool { return e.k == k })
		if i >= 0 {
			list[i].v = o.Env[k]
		} else {
			list = append(list, kv{k, o.Env[k]})
		}
	}
	env := make([]string, len(list))
	for i, e := range list {
		env[i] = e.k + "=" + e.v
	}
	return env
}

// childEnviron returns base without the caller's Azure identity and storage
// settings (AZURE_*, IDENTITY_*, MSI_*, AzureWebJobsStorage*) and without the
// keys of settings, followed by settings.
func childEnviron(base, settings []string) []string {
	set := map[string]bool{}
	for _, kv := range settings {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	var env []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case set[k],
			strings.HasPrefix(k, "AZURE_"),
			strings.HasPrefix(k, "IDENTITY_"),
			strings.HasPrefix(k, "MSI_"),
			k == "AzureWebJobsStorage",
			strings.HasPrefix(k, "AzureWebJobsStorage__"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, settings...)
}

// Close stops every component: devhost first, then the others together.
// Each process group gets SIGTERM, and SIGKILL if it is still there after 5
// seconds. Close then restores the environment variables Credential set and
// removes a temporary state directory. It is safe to call more than once.
func (s *Stack) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	var errs []error
	stop := func(names []string) {
		var wg sync.WaitGroup
		var emu sync.Mutex
		for _, name := range names {
			p := s.procs[name]
			if p == nil {
				continue
			}
			wg.Go(func() {
				begin := time.Now()
				killed, err := p.stop(stopGrace)
				emu.Lock()
				defer emu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("localstack: %w", err))
					return
				}
				how := "stopped"
				if killed {
					how = "killed after " + stopGrace.String()
				}
				s.logf("localstack: %s %s (%.2fs)\n", name, how, time.Since(begin).Seconds())
			})
		}
		wg.Wait()
	}
	stop([]string{nameDevhost})
	var rest []string
	for _, name := range s.order {
		if name != nameDevhost {
			rest = append(rest, name)
		}
	}
	stop(rest)
	for k, v := range s.savedEnv {
		if v == nil {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, *v)
		}
	}
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	if err := s.cleanupDir(); err != nil {
		errs = append(errs, err)
	}
	s.closeErr = errors.Join(errs...)
	return s.closeErr
}

// cleanupDir removes the state directory if Start created it.
func (s *Stack) cleanupDir() error {
	if !s.removeDir {
		return nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("localstack: remove state dir: %w", err)
	}
	return nil
}

// Credential returns a ManagedIdentityCredential that gets its tokens from
// costsim's identity endpoint, trusting the stack's certificate. costsim
// must have been started.
//
// azidentity reads IDENTITY_ENDPOINT and IDENTITY_HEADER from the process
// environment at every token request, so Credential sets them (and unsets
// IDENTITY_SERVER_THUMBPRINT) in this process until Close restores them. Do
// not use it in parallel tests that change those variables, or with two
// stacks at once. msal-go also caches managed-identity tokens for the whole
// process by resource, not by endpoint, so a later stack in the same process
// may be handed a token an earlier costsim minted (it still has the right
// audience and expiry, which is all Azurite and costsim check).
func (s *Stack) Credential() (azcore.TokenCredential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("localstack: credential: stack is closed")
	}
	if s.IdentityEndpoint == "" || s.IdentityHeader == "" {
		return nil, errors.New("localstack: credential: no identity endpoint (start Components.Costsim)")
	}
	set := map[string]string{
		"IDENTITY_ENDPOINT":          s.IdentityEndpoint,
		"IDENTITY_HEADER":            s.IdentityHeader,
		"IDENTITY_SERVER_THUMBPRINT": "",
	}
	if s.savedEnv == nil {
		s.savedEnv = map[string]*string{}
		for k := range set {
			if v, ok := os.LookupEnv(k); ok {
				s.savedEnv[k] = &v
			} else {
				s.savedEnv[k] = nil
			}
		}
	}
	for k, v := range set {
		var err error
		if v == "" {
			err = os.Unsetenv(k)
		} else {
			err = os.Setenv(k, v)
		}
		if err != nil {
			return nil, fmt.Errorf("localstack: credential: set %s: %w", k, err)
		}
	}
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: &http.Client{Transport: s.transport}},
	})
	if err != nil {
		return nil, fmt.Errorf("localstack: credential: %w", err)
	}
	return cred, nil
}

// Transport returns an HTTP client that trusts the stack's certificate as
// well as the system's roots. Use it as azcore.ClientOptions.Transport. The
// clients share one connection pool; each call returns a new *http.Client,
// so setting its Timeout affects no other caller.
func (s *Stack) Transport() *http.Client {
	return &http.Client{Transport: s.transport}
}

// Restart kills a component's process group with SIGKILL, as a crash would,
// and starts it again on the same port with the same arguments and
// environment; its log continues in the same file. Components: "devhost",
// "costsim", "cosmos", "azurite-blob" and "azurite-queue". The emulators and
// costsim keep their data in memory, so restarting them loses it.
func (s *Stack) Restart(ctx context.Context, component string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("localstack: restart %s: stack is closed", component)
	}
	p, ok := s.procs[component]
	if !ok {
		return fmt.Errorf("localstack: restart %s: not running (started: %s)", component, strings.Join(s.order, ", "))
	}
	begin := time.Now()
	p.kill()
	np, err := startProcess(ctx, s.specs[component], p.port, p.logPath, true)
	if err != nil {
		delete(s.procs, component)
		s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == component })
		return fmt.Errorf("localstack: restart: %w", err)
	}
	s.procs[component] = np
	s.logf("localstack: %s restarted at %s (%.2fs)\n", component, s.url(component), time.Since(begin).Seconds())
	return nil
}

// missingError is a prerequisite that is not installed or not built.
type missingError struct {
	what []string // what is missing, with the command that fixes each
}

func (e *missingError) Error() string {
	return "localstack: missing prerequisites:\n\t" + strings.Join(e.what, "\n\t")
}

// checkPrerequisites reports everything the selected components need that is
// missing from root, or nil.
func checkPrerequisites(root string, c Components) error {
	var missing []string
	need := func(path, fix string) {
		if _, err := os.Stat(path); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %s", path, fix))
		}
	}
	const deps = "run make deps (npm ci --no-audit --no-fund in tools/npm)"
	npm := filepath.Join(root, "tools", "npm")
	if c.Storage || c.Cosmos {
		if _, err := exec.LookPath("node"); err != nil {
			missing = append(missing, "node is not on PATH: install Node.js 20 or later")
		}
	}
	if c.Storage {
		need(filepath.Join(npm, "node_modules", ".bin", nameBlob), deps)
		need(filepath.Join(npm, "node_modules", ".bin", nameQueue), deps)
	}
	if c.Cosmos {
		need(filepath.Join(npm, "cosmos-tls.js"), "missing from the repository")
		need(filepath.Join(npm, "node_modules", "@vercel", "cosmosdb-server", "package.json"), deps)
	}
	bin := func(name string) {
		need(filepath.Join(root, "bin", name), fmt.Sprintf("run make build (go build -o bin/%s ./cmd/%s)", name, name))
	}
	if c.Costsim {
		bin("costsim")
	}
	if c.Devhost {
		bin("devhost")
		bin("handler")
	}
	if len(missing) > 0 {
		return &missingError{missing}
	}
	return nil
}

// findRepoRoot returns the nearest directory at or above the working
// directory that holds a go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("localstack: find repo root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("localstack: find repo root: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// lookPath returns the path of an executable on PATH, or name itself when it
// is not there (checkPrerequisites has reported that already).
func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return name // exec reports the error when it starts
	}
	return p
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("localstack: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// writerLogf returns a printf to w that is safe for concurrent use; nil w
// discards.
func writerLogf(w io.Writer) func(format string, args ...any) {
	if w == nil {
		return func(string, ...any) {}
	}
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, format, args...)
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
