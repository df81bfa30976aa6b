package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// Report blobs behind SAS links, imitating ccmreportstorage<region>.blob.core.windows.net/armreports.

const sasVersion = "2020-05-31"

var reBlobPath = regexp.MustCompile(`^/armreports/([0-9a-f-]{36})/part_(\d+)\.csv$`)

// sasSignature signs the permissions, expiry, resource and version of a link.
func (s *sim) sasSignature(path, sp, se, sv, sr string) string {
	mac := hmac.New(sha256.New, s.secret)
	fmt.Fprintf(mac, "%s\n%s\n/blob/costsim%s\n%s\n%s", sp, se, path, sv, sr)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// blobLink is the SAS URL of part n of an operation's report.
func (s *sim) blobLink(host, opID string, n int, expiry time.Time) string {
	path := fmt.Sprintf("/armreports/%s/part_%d.csv", opID, n)
	se := expiry.UTC().Format(time.RFC3339)
	sig := s.sasSignature(path, "r", se, sasVersion, "b")
	return fmt.Sprintf("https://%s%s?sv=%s&sr=b&sp=r&se=%s&sig=%s", host, path, sasVersion, url.QueryEscape(se), url.QueryEscape(sig))
}

// storageError is Azure Storage's XML error body.
type storageError struct {
	XMLName                   xml.Name `xml:"Error"`
	Code                      string   `xml:"Code"`
	Message                   string   `xml:"Message"`
	AuthenticationErrorDetail string   `xml:"AuthenticationErrorDetail,omitempty"`
}

func (s *sim) writeStorageError(w http.ResponseWriter, r *http.Request, status int, code, message, detail string) {
	reqID := newGUID()
	body, err := xml.Marshal(storageError{
		Code:                      code,
		Message:                   fmt.Sprintf("%s\nRequestId:%s\nTime:%s", message, reqID, s.now().UTC().Format(validTillLayout)),
		AuthenticationErrorDetail: detail,
	})
	if err != nil {
		http.Error(w, "encode storage error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("x-ms-error-code", code)
	h.Set("x-ms-request-id", reqID)
	h.Set("x-ms-version", sasVersion)
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(xml.Header))
		w.Write(body)
	}
}

const authFailedMessage = "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature."

// serveDownload serves a report blob. No bearer token is needed; the SAS
// signature and expiry are checked the way Azure Storage does.
func (s *sim) serveDownload(w http.ResponseWriter, r *http.Request) {
	content, modified, ok := s.openBlob(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("ETag", fmt.Sprintf(`"0x%X"`, hash64(0, r.URL.Path, modified.String())&0xFFFFFFFFFFFFFF))
	h.Set("Accept-Ranges", "bytes")
	if xr := r.Header.Get("x-ms-range"); xr != "" && r.Header.Get("Range") == "" {
		r.Header.Set("Range", xr)
	}
	http.ServeContent(w, r, "", modified, bytes.NewReader(content))
}

// serveStalled starts to serve a blob, stalls after half of it for wait (or
// until the client gives up), and resets the connection.
func (s *sim) serveStalled(rec *recorder, r *http.Request, wait time.Duration) {
	content, _, ok := s.openBlob(rec, r)
	if !ok {
		return
	}
	rec.Header().Set("Content-Length", strconv.Itoa(len(content)))
	rec.WriteHeader(http.StatusOK)
	rec.Write(content[:len(content)/2])
	http.NewResponseController(rec).Flush()
	select {
	case <-time.After(wait):
	case <-r.Context().Done():
	}
	rec.reset = true
	resetConnection(rec)
}

// openBlob checks a download's method, SAS signature and expiry the way
// Azure Storage does and finds the blob. When it returns false it has
// answered with Azure Storage's error.
func (s *sim) openBlob(w http.ResponseWriter, r *http.Request) ([]byte, time.Time, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeStorageError(w, r, http.StatusMethodNotAllowed, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.", "")
		return nil, time.Time{}, false
	}
	q := r.URL.Query()
	sig, se, sp, sv, sr := q.Get("sig"), q.Get("se"), q.Get("sp"), q.Get("sv"), q.Get("sr")
	if sig == "" {
		// Anonymous access to a private container.
		s.writeStorageError(w, r, http.StatusNotFound, "ResourceNotFound", "The specified resource does not exist.", "")
		return nil, time.Time{}, false
	}
	want := s.sasSignature(r.URL.Path, sp, se, sv, sr)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		s.writeStorageError(w, r, http.StatusForbidden, "AuthenticationFailed", authFailedMessage,
			fmt.Sprintf("Signature did not match. String to sign used was %s\n%s\n/blob/costsim%s\n%s\n%s", sp, se, r.URL.Path, sv, sr))
		return nil, time.Time{}, false
	}
	expiry, err := time.Parse(time.RFC3339, se)
	if err != nil {
		s.writeStorageError(w, r, http.StatusForbidden, "AuthenticationFailed", authFailedMessage, "se is mandatory. Cannot be empty")
		return nil, time.Time{}, false
	}
	now := s.now().UTC()
	m := reBlobPath.FindStringSubmatch(r.URL.Path)
	expiredOnce := m != nil && r.Method == http.MethodGet && s.faults.expireOnce(s.reportKey(m[1]), m[1])
	if !now.Before(expiry) || expiredOnce {
		s.stats.add(func(st *stats) { st.ExpiredLinks++ })
		start := now
		if expiredOnce {
			start = expiry.Add(time.Second)
		}
		s.writeStorageError(w, r, http.StatusForbidden, "AuthenticationFailed", authFailedMessage,
			fmt.Sprintf("Signed expiry time [%s] has to be after signed start time [%s]. The SAS link has expired.",
				expiry.Format(http.TimeFormat), start.Format(http.TimeFormat)))
		return nil, time.Time{}, false
	}
	var content []byte
	var modified time.Time
	if m != nil {
		n, _ := strconv.Atoi(m[2])
		s.mu.Lock()
		op := s.ops[m[1]]
		s.mu.Unlock()
		if op != nil {
			op.mu.Lock()
			if n < len(op.blobs) {
				content, modified = op.blobs[n], op.completed
			}
			op.mu.Unlock()
		}
	}
	if content == nil {
		s.writeStorageError(w, r, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
		return nil, time.Time{}, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv")
	h.Set("x-ms-blob-type", "BlockBlob")
	h.Set("x-ms-version", sasVersion)
	h.Set("x-ms-server-encrypted", "true")
	return content, modified, true
}

// reportKey names the logical report (the window) of an operation, for
// expireLinksOnce: a re-requested report of the same window does not expire.
func (s *sim) reportKey(opID string) string {
	s.mu.Lock()
	op := s.ops[opID]
	s.mu.Unlock()
	if op == nil {
		return opID
	}
	return op.reportKey()
}
