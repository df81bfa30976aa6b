package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Cost Details API: generateCostDetailsReport (create) and
// costDetailsOperationResults (poll), cost-apis.md §1.

// apiVersions are the api-versions that have the operation (cost-apis.md §0).
var apiVersions = []string{
	"2022-05-01", "2022-10-01", "2023-03-01", "2023-07-01-preview", "2023-08-01", "2023-09-01",
	"2023-11-01", "2024-08-01", "2025-03-01",
}

// reportRequest is GenerateCostDetailsReportRequestDefinition.
type reportRequest struct {
	Metric        string      `json:"metric,omitempty"`
	TimePeriod    *timePeriod `json:"timePeriod,omitempty"`
	BillingPeriod string      `json:"billingPeriod,omitempty"`
	InvoiceID     string      `json:"invoiceId,omitempty"`
}

type timePeriod struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// operation is one report generation.
type operation struct {
	id         string
	sc         scope
	apiVersion string
	request    reportRequest // echoed in requestContext.requestBody
	metric     string
	start, end time.Time
	revs       map[string]int // date → revision at request time
	today      time.Time
	created    time.Time

	mu        sync.Mutex
	polls     int
	done      bool
	status    string // Completed, NoDataFound, Failed
	completed time.Time
	expiry    time.Time
	blobs     [][]byte
}

// reportKey names a logical report (one window: scope × metric × period)
// for the once-only faults.
func (op *operation) reportKey() string {
	return op.sc.key + "|" + op.metric + "|" + op.start.Format(time.DateOnly) + "|" + op.end.Format(time.DateOnly)
}

// Operation results (CostDetailsOperationResults), field order as in the
// spec example.
type operationResult struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Status    string        `json:"status"`
	Manifest  *manifest     `json:"manifest,omitempty"`
	ValidTill string        `json:"validTill,omitempty"`
	Error     *errorDetails `json:"error,omitempty"`
}

type manifest struct {
	ManifestVersion string         `json:"manifestVersion"`
	DataFormat      string         `json:"dataFormat"`
	BlobCount       int            `json:"blobCount"`
	ByteCount       int64          `json:"byteCount"`
	CompressData    bool           `json:"compressData"`
	RequestContext  requestContext `json:"requestContext"`
	Blobs           []blobInfo     `json:"blobs"`
}

type requestContext struct {
	RequestScope string        `json:"requestScope"`
	RequestBody  reportRequest `json:"requestBody"`
}

type blobInfo struct {
	BlobLink  string `json:"blobLink"`
	ByteCount int64  `json:"byteCount"`
}

type errorDetails struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// validTillLayout is the service's timestamp layout (7 fractional digits).
const validTillLayout = "2006-01-02T15:04:05.0000000Z"

// checkARM does what ARM does before the provider sees a request: api-version
// and bearer token. It answers and returns false when the request stops here.
func (s *sim) checkARM(w http.ResponseWriter, r *http.Request) (string, bool) {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		writeARMError(w, http.StatusBadRequest, "MissingApiVersionParameter",
			"The api-version query parameter (?api-version=) is required for all requests.")
		return "", false
	}
	if !slices.Contains(apiVersions, v) {
		writeARMError(w, http.StatusBadRequest, "InvalidApiVersionParameter",
			fmt.Sprintf("The api-version '%s' is invalid. The supported versions are '%s'.", v, strings.Join(apiVersions, ",")))
		return "", false
	}
	if msg := s.checkBearer(r); msg != "" {
		writeARMError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		return "", false
	}
	return v, true
}

// serveCreate is POST {scope}/providers/Microsoft.CostManagement/generateCostDetailsReport.
func (s *sim) serveCreate(w http.ResponseWriter, r *http.Request, rawScope string) {
	if r.Method != http.MethodPost {
		writeARMError(w, http.StatusMethodNotAllowed, "HttpMethodNotAllowed", "The requested method is not allowed; use POST.")
		return
	}
	apiVersion, ok := s.checkARM(w, r)
	if !ok {
		return
	}
	sc, err := parseScope(rawScope)
	if err != nil {
		var se *scopeError
		errors.As(err, &se)
		writeARMError(w, http.StatusBadRequest, se.code, se.message)
		return
	}
	if status := s.faults.settings().ScopeErrors[sc.key]; status != 0 {
		s.stats.add(func(st *stats) { st.ScopeErrors++ })
		s.scopeError(w, r, sc, status)
		return
	}
	if s.quota.enforce(s, w, "scope|"+sc.key) {
		return
	}
	if sc.payg {
		writeARMError(w, http.StatusUnprocessableEntity, "422", unsupportedOfferMessage)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeARMError(w, http.StatusBadRequest, "400", "Invalid request payload: could not read the request body.")
		return
	}
	today := s.today()
	req, start, end, msg := validateRequest(body, sc, today, s.gen)
	if msg != "" {
		writeARMError(w, http.StatusBadRequest, "400", msg)
		return
	}
	now := s.now().UTC()
	op := &operation{
		id: newGUID(), sc: sc, apiVersion: apiVersion, request: req, metric: req.Metric,
		start: start, end: end, revs: map[string]int{}, today: today, created: now,
	}
	s.mu.Lock()
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		op.revs[d.Format(time.DateOnly)] = s.revs.get(sc.key, req.Metric, d)
	}
	s.sweepLocked(now)
	s.mu.Unlock()

	if s.faults.settings().NoDataAs == "204" && s.rowCount(op) == 0 {
		s.stats.add(func(st *stats) { st.NoContent++ })
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.mu.Lock()
	s.ops[op.id] = op
	s.mu.Unlock()
	s.stats.add(func(st *stats) { st.Operations++ })
	if s.faults.settings().CompleteOnCreate {
		// The spec's immediate 200: the result comes with the create.
		op.mu.Lock()
		defer op.mu.Unlock()
		if err := s.complete(op, now); err != nil {
			writeARMError(w, http.StatusInternalServerError, "InternalServerError", err.Error())
			return
		}
		s.stats.add(func(st *stats) { st.CompletedOnCreate++ })
		writeJSON(w, http.StatusOK, s.result(r, op))
		return
	}
	s.accepted(w, r, op)
}

// linkHost is the host put in Location headers and blob links: the
// request's, unless the linkHost fault points them elsewhere.
func (s *sim) linkHost(r *http.Request) string {
	if h := s.faults.settings().LinkHost; h != "" {
		s.stats.add(func(st *stats) { st.ForeignLinks++ })
		return h
	}
	return r.Host
}

// scopeError answers a create at a scope the scopeErrors fault names: 401
// (ARM's text for a token of another tenant), 403 (ARM's text for a missing
// role) or 422 (the unsupported offer text of cost-apis.md §1.3).
func (s *sim) scopeError(w http.ResponseWriter, r *http.Request, sc scope, status int) {
	c, _ := parseJWT(strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer")))
	switch status {
	case http.StatusUnauthorized:
		other := stableGUID(s.cfg.seed, "other-tenant", sc.key)
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri="https://login.windows.net/%s", error="invalid_token", error_description="The access token is from the wrong issuer."`, other))
		writeARMError(w, status, "InvalidAuthenticationTokenTenant", fmt.Sprintf(
			"The access token is from the wrong issuer '%s'. It must match the tenant 'https://sts.windows.net/%s/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/%s' to get the token. Note, if the subscription is transferred to another tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). If you just transferred your subscription and see this error message, please try back later.",
			c.Iss, other, other))
	case http.StatusForbidden:
		writeARMError(w, status, "AuthorizationFailed", fmt.Sprintf(
			"The client '%s' with object id '%s' does not have authorization to perform action 'Microsoft.CostManagement/generateCostDetailsReport/action' over scope '/%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
			c.Oid, c.Oid, sc.path))
	default:
		writeARMError(w, status, "422", "Unsupported request. offer type: WebDirect for get detailed report request is not supported.")
	}
}

// accepted answers 202 with Location and Retry-After.
func (s *sim) accepted(w http.ResponseWriter, r *http.Request, op *operation) {
	loc := fmt.Sprintf("https://%s/%s/providers/Microsoft.CostManagement/costDetailsOperationResults/%s?api-version=%s",
		s.linkHost(r), op.sc.path, op.id, op.apiVersion)
	w.Header().Set("Location", loc)
	w.Header().Set("Retry-After", strconv.Itoa(s.cfg.retryAfter))
	w.WriteHeader(http.StatusAccepted)
}

var (
	reDate          = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}`)
	reBillingPeriod = regexp.MustCompile(`^\d{6}$`)
)

// parseDate accepts YYYY-MM-DD and date-times, keeping the date.
func parseDate(s string) (time.Time, bool) {
	if !reDate.MatchString(s) {
		return time.Time{}, false
	}
	if len(s) > 10 {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t, err = time.Parse("2006-01-02T15:04:05", s)
		}
		if err != nil {
			return time.Time{}, false
		}
		return truncateDay(t), true
	}
	t, err := time.Parse(time.DateOnly, s)
	return t, err == nil
}

// earliestStart is the oldest start date allowed: the first day of the month
// 13 months before today's month.
func earliestStart(today time.Time) time.Time { return monthStart(today).AddDate(0, -13, 0) }

// validateRequest applies the spec's rules to a create body. It returns the
// normalized request and the inclusive period, or ARM's message.
func validateRequest(body []byte, sc scope, today time.Time, g *generator) (reportRequest, time.Time, time.Time, string) {
	const invalidPayload = "Invalid Request Payload. Request payload provided is not in a json format or had an invalid member not accepted in the request payload."
	var req reportRequest
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || dec.More() {
			return req, time.Time{}, time.Time{}, invalidPayload
		}
	}
	switch strings.ToLower(req.Metric) {
	case "", "actualcost":
		req.Metric = actualCost
	case "amortizedcost":
		req.Metric = amortizedCost
	default:
		return req, time.Time{}, time.Time{}, fmt.Sprintf("Invalid request payload: metric '%s' is not supported; use ActualCost or AmortizedCost.", req.Metric)
	}
	n := 0
	if req.TimePeriod != nil {
		n++
	}
	if req.BillingPeriod != "" {
		n++
	}
	if req.InvoiceID != "" {
		n++
	}
	if n > 1 {
		return req, time.Time{}, time.Time{}, "Invalid request payload: can only have either timePeriod or invoiceId or billingPeriod. API only allows data to be pulled for either timePeriod or invoiceId or billingPeriod. Customer should provide only one of these parameters."
	}
	earliest := earliestStart(today)
	tooOld := fmt.Sprintf("Start date must be after %s. API only allows data to be pulled no older than 13 months from now.", earliest.AddDate(0, 0, -1).Format(time.DateOnly))
	var start, end time.Time
	switch {
	case req.TimePeriod != nil:
		var ok1, ok2 bool
		start, ok1 = parseDate(req.TimePeriod.Start)
		end, ok2 = parseDate(req.TimePeriod.End)
		if !ok1 || !ok2 {
			return req, time.Time{}, time.Time{}, "Invalid request payload: timePeriod start and end must be dates in the format yyyy-MM-dd."
		}
		if end.Before(start) {
			return req, time.Time{}, time.Time{}, "Invalid request payload: the end date of timePeriod must not be before its start date."
		}
		if !end.Before(addMonthClamped(start, 1)) {
			return req, time.Time{}, time.Time{}, "The maximum allowed date range is 1 months. API only allows data to be pulled for 1 month or less."
		}
		if start.Before(earliest) {
			return req, time.Time{}, time.Time{}, tooOld
		}
	case req.BillingPeriod != "":
		if sc.mca {
			return req, time.Time{}, time.Time{}, "Invalid request payload: billingPeriod can be used only by Enterprise Agreement customers."
		}
		t, err := time.Parse("200601", req.BillingPeriod)
		if !reBillingPeriod.MatchString(req.BillingPeriod) || err != nil {
			return req, time.Time{}, time.Time{}, "Invalid request payload: billingPeriod must use the YearMonth format, e.g. 202008."
		}
		start, end = t, monthEnd(t)
		if start.Before(earliest) {
			return req, time.Time{}, time.Time{}, tooOld
		}
	case req.InvoiceID != "":
		if !sc.mca || !sc.invoiceScope() {
			return req, time.Time{}, time.Time{}, "Invalid request payload: invoiceId can only be used by Microsoft Customer Agreement customers, at the Billing Profile or Customer scope."
		}
		start = g.invoiceMonth(sc, req.InvoiceID, today)
		end = monthEnd(start)
	default:
		// The open month to date.
		start, end = monthStart(today), today
	}
	return req, start, end, ""
}

// invoiceMonth finds the month of an invoice costsim issued for the scope's
// billing profile(s); an unknown invoice maps to the last closed month.
func (g *generator) invoiceMonth(sc scope, invoiceID string, today time.Time) time.Time {
	p := g.population(sc)
	for m := monthStart(today).AddDate(0, -1, 0); !m.Before(earliestStart(today)); m = m.AddDate(0, -1, 0) {
		for _, sub := range p.subs {
			if strings.EqualFold(g.invoiceID(sub.billingProfileID, m, today), invoiceID) {
				return m
			}
		}
	}
	return monthStart(today).AddDate(0, -1, 0)
}

// rev is the revision lookup of an operation's snapshot.
func (op *operation) rev(d time.Time) int { return op.revs[d.Format(time.DateOnly)] }

// rowCount counts the rows an operation's report will have.
func (s *sim) rowCount(op *operation) int {
	_, rows := s.gen.reportRows(op.sc, op.metric, op.start, op.end, op.today, op.rev)
	return len(rows)
}

// servePoll is GET {scope}/providers/Microsoft.CostManagement/costDetailsOperationResults/{id}.
func (s *sim) servePoll(w http.ResponseWriter, r *http.Request, rawScope, id string) {
	if r.Method != http.MethodGet {
		writeARMError(w, http.StatusMethodNotAllowed, "HttpMethodNotAllowed", "The requested method is not allowed; use GET.")
		return
	}
	if _, ok := s.checkARM(w, r); !ok {
		return
	}
	now := s.now().UTC()
	s.mu.Lock()
	s.sweepLocked(now)
	op := s.ops[strings.ToLower(id)]
	s.mu.Unlock()
	if op == nil || !strings.EqualFold(strings.Trim(rawScope, "/"), op.sc.path) {
		writeARMError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The operation '%s' was not found.", id))
		return
	}
	if s.quota.enforce(s, w, "operation|"+op.id) {
		return
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if !op.done {
		op.polls++
		if op.polls <= s.cfg.polls {
			s.accepted(w, r, op)
			return
		}
		if err := s.complete(op, now); err != nil {
			writeARMError(w, http.StatusInternalServerError, "InternalServerError", err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, s.result(r, op))
}

// complete generates the report of op (content at the revisions of its
// request) and decides its status.
func (s *sim) complete(op *operation, now time.Time) error {
	expiry := now.Add(s.cfg.linkTTL).Truncate(time.Second)
	status := "Completed"
	var parts [][]byte
	if s.faults.failOnce(op.reportKey()) {
		status = "Failed"
		s.stats.add(func(st *stats) { st.FailedReports++ })
	} else {
		schema, rows := s.gen.reportRows(op.sc, op.metric, op.start, op.end, op.today, op.rev)
		if len(rows) == 0 {
			status = "NoDataFound"
			s.stats.add(func(st *stats) { st.NoDataFound++ })
		} else {
			b, err := blobs(schema, rows, s.cfg.blobRows)
			if err != nil {
				return fmt.Errorf("write report %s: %w", op.id, err)
			}
			parts = b
			if s.faults.pastValidTillOnce(op.reportKey()) {
				// Read long after it completed: the links are already dead.
				expiry = now.Add(-time.Minute).Truncate(time.Second)
				s.stats.add(func(st *stats) { st.PastValidTill++ })
			}
		}
	}
	op.done, op.completed, op.expiry, op.status, op.blobs = true, now, expiry, status, parts
	return nil
}

// result is the 200 body for a finished operation.
func (s *sim) result(r *http.Request, op *operation) operationResult {
	res := operationResult{
		ID:     op.sc.path + "/providers/Microsoft.CostManagement/costDetailsOperationResults/" + op.id,
		Name:   op.id,
		Status: op.status,
	}
	if op.status == "Failed" {
		res.Error = &errorDetails{Code: "InternalServerError", Message: "An error occurred while generating the cost details report. Please request the report again."}
		return res
	}
	m := &manifest{
		ManifestVersion: op.apiVersion, DataFormat: "Csv", CompressData: false,
		RequestContext: requestContext{RequestScope: op.sc.path, RequestBody: op.request},
		Blobs:          []blobInfo{},
	}
	for i, b := range op.blobs {
		m.Blobs = append(m.Blobs, blobInfo{BlobLink: s.blobLink(s.linkHost(r), op.id, i, op.expiry), ByteCount: int64(len(b))})
		m.ByteCount += int64(len(b))
	}
	m.BlobCount = len(m.Blobs)
	res.Manifest = m
	res.ValidTill = op.expiry.UTC().Format(validTillLayout)
	return res
}

// sweepLocked drops operations 2 × link-ttl after they completed (or were
// created, if they never completed). s.mu must be held.
func (s *sim) sweepLocked(now time.Time) {
	keep := 2 * s.cfg.linkTTL
	for id, op := range s.ops {
		if !op.mu.TryLock() {
			continue // in use right now
		}
		since := op.created
		if op.done {
			since = op.completed
		}
		op.mu.Unlock()
		if now.Sub(since) > keep {
			delete(s.ops, id)
		}
	}
}
