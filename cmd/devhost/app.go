package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// app is a function app folder, read and validated.
type app struct {
	dir       string
	settings  settings
	host      hostConfig
	functions []*function
}

// function is one function folder.
type function struct {
	name     string
	dir      string
	trigger  *binding
	bindings []*binding
}

// outputs returns the output bindings, in function.json order.
func (f *function) outputs() []*binding {
	var out []*binding
	for _, b := range f.bindings {
		if strings.EqualFold(b.Direction, "out") {
			out = append(out, b)
		}
	}
	return out
}

// binding is one entry of function.json's bindings, with %NAME% expanded in
// every string property.
type binding struct {
	Type         string   `json:"type"`
	Direction    string   `json:"direction"`
	Name         string   `json:"name"`
	DataType     string   `json:"dataType"`
	Connection   string   `json:"connection"`
	QueueName    string   `json:"queueName"`
	Path         string   `json:"path"`
	Schedule     string   `json:"schedule"`
	RunOnStartup bool     `json:"runOnStartup"`
	Route        string   `json:"route"`
	Methods      []string `json:"methods"`
	AuthLevel    string   `json:"authLevel"`
}

// isTrigger reports whether the binding is the function's trigger.
func (b *binding) isTrigger() bool {
	return strings.HasSuffix(strings.ToLower(b.Type), "trigger")
}

// connectionName is the binding's connection, AzureWebJobsStorage by default.
func (b *binding) connectionName() string {
	if b.Connection == "" {
		return "AzureWebJobsStorage"
	}
	return b.Connection
}

// hostConfig is what devhost reads from host.json.
type hostConfig struct {
	// functionTimeout is 0 when unbounded ("-1").
	functionTimeout time.Duration
	functions       []string
	handlerPath     string
	handlerArgs     []string
	handlerWorkDir  string
	forwardHTTP     bool
	routePrefix     string
	queues          queueOptions
	blobs           blobOptions
}

// queueOptions is extensions.queues.
type queueOptions struct {
	batchSize          int
	newBatchThreshold  int
	maxDequeueCount    int64
	visibilityTimeout  time.Duration
	maxPollingInterval time.Duration
	base64             bool
}

// blobOptions is extensions.blobs.
type blobOptions struct {
	poisonBlobThreshold    int
	maxDegreeOfParallelism int
}

// defaultFunctionTimeout is devhost's functionTimeout when host.json has none.
const defaultFunctionTimeout = 5 * time.Minute

// settings are the app settings: the environment plus local.settings.json
// Values, the environment winning.
type settings map[string]string

// lookup finds a setting by exact name, then case-insensitively, and treats
// ':' and '__' as the same separator.
func (s settings) lookup(name string) (string, bool) {
	for _, n := range []string{name, strings.ReplaceAll(name, "__", ":")} {
		if v, ok := s[n]; ok {
			return v, true
		}
	}
	for k, v := range s {
		if strings.EqualFold(strings.ReplaceAll(k, ":", "__"), name) {
			return v, true
		}
	}
	return "", false
}

// get returns a setting or "".
func (s settings) get(name string) string {
	v, _ := s.lookup(name)
	return v
}

// environ returns the settings as KEY=VALUE pairs, sorted.
func (s settings) environ() []string {
	out := make([]string, 0, len(s))
	for k, v := range s {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

var percentName = regexp.MustCompile(`%([^%\s]+)%`)

// expand replaces %NAME% with the setting NAME; an unknown name is an error,
// as the host's name resolver reports it.
func (s settings) expand(v string) (string, error) {
	var missing []string
	out := percentName.ReplaceAllStringFunc(v, func(m string) string {
		name := m[1 : len(m)-1]
		if val, ok := s.lookup(name); ok {
			return val
		}
		missing = append(missing, name)
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%%%s%% does not resolve to an app setting", missing[0])
	}
	return out, nil
}

// expandLoose replaces the %NAME% that resolve and leaves the others, as
// Environment.ExpandEnvironmentVariables does for handler arguments.
func (s settings) expandLoose(v string) string {
	return percentName.ReplaceAllStringFunc(v, func(m string) string {
		if val, ok := s.lookup(m[1 : len(m)-1]); ok {
			return val
		}
		return m
	})
}

// loadSettings merges environ (KEY=VALUE) with the Values of
// DIR/local.settings.json, if present; environ wins. It also returns the
// names that came from the file only.
func loadSettings(dir string, environ []string) (settings, []string, error) {
	s := settings{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			s[k] = v
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "local.settings.json"))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read local.settings.json: %w", err)
	}
	var file struct {
		Values map[string]any `json:"Values"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, nil, fmt.Errorf("parse local.settings.json: %w", err)
	}
	var added []string
	for k, v := range file.Values {
		if _, ok := s[k]; ok {
			continue
		}
		switch v := v.(type) {
		case string:
			s[k] = v
		case nil:
			s[k] = ""
		default:
			b, _ := json.Marshal(v)
			s[k] = string(b)
		}
		added = append(added, k)
	}
	sort.Strings(added)
	return s, added, nil
}

// loadApp reads DIR: host.json, DIR/*/function.json and
// DIR/functions/*/function.json. Every problem found is reported at once.
func loadApp(dir string, s settings) (*app, error) {
	a := &app{dir: dir, settings: s}
	var errs []error
	h, err := loadHost(dir, s)
	if err != nil {
		return nil, err
	}
	a.host = *h

	var paths []string
	for _, pattern := range []string{"*/function.json", "functions/*/function.json"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, fmt.Errorf("list function folders: %w", err)
		}
		paths = append(paths, m...)
	}
	seen := map[string]string{}
	for _, p := range paths {
		fdir := filepath.Dir(p)
		name := filepath.Base(fdir)
		if prev, ok := seen[strings.ToLower(name)]; ok {
			errs = append(errs, fmt.Errorf("function %s is defined twice: %s and %s", name, prev, p))
			continue
		}
		seen[strings.ToLower(name)] = p
		if len(a.host.functions) > 0 && !slices.ContainsFunc(a.host.functions, func(n string) bool { return strings.EqualFold(n, name) }) {
			continue
		}
		f, disabled, err := loadFunction(p, name, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if disabled {
			continue
		}
		a.functions = append(a.functions, f)
	}
	if len(paths) == 0 {
		errs = append(errs, fmt.Errorf("no function.json under %s/*/ or %s/functions/*/", dir, dir))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Slice(a.functions, func(i, j int) bool { return a.functions[i].name < a.functions[j].name })
	return a, nil
}

// loadFunction reads one function.json. disabled is true when the function
// is disabled there or by the AzureWebJobs.{name}.Disabled setting.
func loadFunction(path, name string, s settings) (*function, bool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("function %s: %w", name, err)
	}
	var doc struct {
		Disabled any               `json:"disabled"`
		Bindings []json.RawMessage `json:"bindings"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, false, fmt.Errorf("function %s: parse %s: %w", name, path, err)
	}
	if truthy(doc.Disabled) || truthy(s.get("AzureWebJobs."+name+".Disabled")) {
		return nil, true, nil
	}
	f := &function{name: name, dir: filepath.Dir(path)}
	for i, rawB := range doc.Bindings {
		var props map[string]any
		if err := json.Unmarshal(rawB, &props); err != nil {
			return nil, false, fmt.Errorf("function %s: binding %d: %w", name, i, err)
		}
		if err := expandProps(props, s); err != nil {
			return nil, false, fmt.Errorf("function %s: binding %d: %w", name, i, err)
		}
		expanded, _ := json.Marshal(props)
		var b binding
		if err := json.Unmarshal(expanded, &b); err != nil {
			return nil, false, fmt.Errorf("function %s: binding %d: %w", name, i, err)
		}
		if b.Type == "" || b.Name == "" {
			return nil, false, fmt.Errorf("function %s: binding %d needs a type and a name", name, i)
		}
		if b.isTrigger() {
			if f.trigger != nil {
				return nil, false, fmt.Errorf("function %s: more than one trigger", name)
			}
			f.trigger = &b
		}
		f.bindings = append(f.bindings, &b)
	}
	if f.trigger == nil {
		return nil, false, fmt.Errorf("function %s: no trigger binding", name)
	}
	switch strings.ToLower(f.trigger.Type) {
	case "queuetrigger":
		if f.trigger.QueueName == "" {
			return nil, false, fmt.Errorf("function %s: queueTrigger needs queueName", name)
		}
	case "blobtrigger":
		if _, err := parseBlobPath(f.trigger.Path); err != nil {
			return nil, false, fmt.Errorf("function %s: %w", name, err)
		}
	case "timertrigger":
		if _, err := parseCron(f.trigger.Schedule); err != nil {
			return nil, false, fmt.Errorf("function %s: %w", name, err)
		}
	case "httptrigger":
		if _, err := parseRoute(f.routeTemplate()); err != nil {
			return nil, false, fmt.Errorf("function %s: %w", name, err)
		}
	default:
		return nil, false, fmt.Errorf("function %s: trigger type %s is not supported by devhost", name, f.trigger.Type)
	}
	for _, b := range f.bindings {
		if b != f.trigger && !strings.EqualFold(b.Direction, "out") {
			return nil, false, fmt.Errorf("function %s: input binding %s (%s) is not supported by devhost", name, b.Name, b.Type)
		}
		if strings.EqualFold(b.Type, "queue") && strings.EqualFold(b.Direction, "out") && b.QueueName == "" {
			return nil, false, fmt.Errorf("function %s: queue output %s needs queueName", name, b.Name)
		}
	}
	return f, false, nil
}

// routeTemplate is the function's route, its name by default.
func (f *function) routeTemplate() string {
	if f.trigger.Route != "" {
		return f.trigger.Route
	}
	return f.name
}

// expandProps expands %NAME% in every string value of a binding, nested or not.
func expandProps(props map[string]any, s settings) error {
	for k, v := range props {
		switch v := v.(type) {
		case string:
			e, err := s.expand(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			props[k] = e
		case []any:
			for i, item := range v {
				if str, ok := item.(string); ok {
					e, err := s.expand(str)
					if err != nil {
						return fmt.Errorf("%s: %w", k, err)
					}
					v[i] = e
				}
			}
		}
	}
	return nil
}

func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(strings.TrimSpace(v))
		return b
	}
	return false
}

// loadHost reads host.json and applies AzureFunctionsJobHost__* settings over it.
func loadHost(dir string, s settings) (*hostConfig, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "host.json"))
	if err != nil {
		return nil, fmt.Errorf("read host.json: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse host.json: %w", err)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	const prefix = "azurefunctionsjobhost__"
	for k, v := range s {
		key := strings.ReplaceAll(k, ":", "__")
		if len(key) > len(prefix) && strings.EqualFold(key[:len(prefix)], prefix) {
			setPath(doc, strings.Split(key[len(prefix):], "__"), v)
		}
	}
	t := tree{doc}
	var errs []error
	h := &hostConfig{routePrefix: "api"}

	h.functionTimeout = defaultFunctionTimeout
	if v, ok := t.str("functionTimeout"); ok {
		if strings.TrimSpace(v) == "-1" {
			h.functionTimeout = 0
		} else if d, err := parseTimeSpan(v); err != nil {
			errs = append(errs, fmt.Errorf("host.json functionTimeout: %w", err))
		} else {
			h.functionTimeout = d
		}
	}
	if list, ok := t.get("functions").([]any); ok {
		for _, n := range list {
			if s, ok := n.(string); ok {
				h.functions = append(h.functions, s)
			}
		}
	}
	handler := "customHandler"
	if t.get(handler) == nil && t.get("httpWorker") != nil {
		handler = "httpWorker"
	}
	h.handlerPath, _ = t.str(handler, "description", "defaultExecutablePath")
	h.handlerWorkDir, _ = t.str(handler, "description", "workingDirectory")
	if args, ok := t.get(handler, "description", "arguments").([]any); ok {
		for _, a := range args {
			h.handlerArgs = append(h.handlerArgs, s.expandLoose(fmt.Sprint(a)))
		}
	}
	h.forwardHTTP = truthy(t.get(handler, "enableForwardingHttpRequest"))
	if v, ok := t.str("extensions", "http", "routePrefix"); ok {
		h.routePrefix = strings.Trim(v, "/")
	}

	q := &h.queues
	q.batchSize = t.intOr(&errs, 16, "extensions", "queues", "batchSize")
	if q.batchSize < 1 || q.batchSize > 32 {
		errs = append(errs, fmt.Errorf("host.json extensions.queues.batchSize %d: must be 1 to 32", q.batchSize))
	}
	q.newBatchThreshold = t.intOr(&errs, q.batchSize/2, "extensions", "queues", "newBatchThreshold")
	q.maxDequeueCount = int64(t.intOr(&errs, 5, "extensions", "queues", "maxDequeueCount"))
	q.visibilityTimeout = t.spanOr(&errs, 0, "extensions", "queues", "visibilityTimeout")
	q.maxPollingInterval = t.spanOr(&errs, 2*time.Second, "extensions", "queues", "maxPollingInterval")
	if q.maxPollingInterval < 100*time.Millisecond {
		q.maxPollingInterval = 100 * time.Millisecond
	}
	q.base64 = true
	if v, ok := t.str("extensions", "queues", "messageEncoding"); ok {
		switch strings.ToLower(v) {
		case "base64":
		case "none":
			q.base64 = false
		default:
			errs = append(errs, fmt.Errorf("host.json extensions.queues.messageEncoding %q: must be base64 or none", v))
		}
	}
	h.blobs.poisonBlobThreshold = t.intOr(&errs, 5, "extensions", "blobs", "poisonBlobThreshold")
	h.blobs.maxDegreeOfParallelism = t.intOr(&errs, 8, "extensions", "blobs", "maxDegreeOfParallelism")
	if h.blobs.maxDegreeOfParallelism < 1 {
		h.blobs.maxDegreeOfParallelism = 1
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return h, nil
}

// setPath sets a value deep in a JSON tree, matching keys case-insensitively
// and creating objects on the way.
func setPath(doc map[string]any, path []string, v string) {
	cur := doc
	for i, p := range path {
		key := p
		for k := range cur {
			if strings.EqualFold(k, p) {
				key = k
				break
			}
		}
		if i == len(path)-1 {
			cur[key] = v
			return
		}
		next, ok := cur[key].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[key] = next
		}
		cur = next
	}
}

// tree reads values from a JSON object with case-insensitive keys, as the
// host's configuration binder does.
type tree struct{ root map[string]any }

func (t tree) get(path ...string) any {
	var cur any = t.root
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		var found any
		for k, v := range m {
			if strings.EqualFold(k, p) {
				found = v
				break
			}
		}
		if found == nil {
			return nil
		}
		cur = found
	}
	return cur
}

func (t tree) str(path ...string) (string, bool) {
	switch v := t.get(path...).(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

func (t tree) intOr(errs *[]error, def int, path ...string) int {
	v, ok := t.str(path...)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		f, ferr := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if ferr != nil || f != math.Trunc(f) {
			*errs = append(*errs, fmt.Errorf("host.json %s %q: not an integer", strings.Join(path, "."), v))
			return def
		}
		n = int(f)
	}
	return n
}

func (t tree) spanOr(errs *[]error, def time.Duration, path ...string) time.Duration {
	v, ok := t.str(path...)
	if !ok {
		return def
	}
	d, err := parseTimeSpan(v)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("host.json %s: %w", strings.Join(path, "."), err))
		return def
	}
	return d
}

var timeSpan = regexp.MustCompile(`^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$`)

// parseTimeSpan parses a .NET TimeSpan: [d.]hh:mm[:ss[.fffffff]].
func parseTimeSpan(s string) (time.Duration, error) {
	m := timeSpan.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a TimeSpan (hh:mm:ss)", s)
	}
	num := func(x string) time.Duration {
		n, _ := strconv.Atoi(x)
		return time.Duration(n)
	}
	d := num(m[1])*24*time.Hour + num(m[2])*time.Hour + num(m[3])*time.Minute + num(m[4])*time.Second
	if m[5] != "" {
		frac := (m[5] + "0000000")[:7]
		d += num(frac) * 100 // 100 ns ticks
	}
	return d, nil
}

// isType reports whether a binding has type t, case-insensitively.
func isType(b *binding, t string) bool { return strings.EqualFold(b.Type, t) }
