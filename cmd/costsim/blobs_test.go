package main

import (
	"encoding/xml"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSASLinks(t *testing.T) {
	e := newEnv(t, func(c *config) { c.blobRows = 20 })
	res := e.report(subScope, `{"timePeriod":{"start":"2026-11-01","end":"2026-11-02"}}`)
	if len(res.Manifest.Blobs) < 2 {
		t.Fatalf("want at least 2 blobs, got %d", len(res.Manifest.Blobs))
	}
	link := res.Manifest.Blobs[0].BlobLink
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, want := range map[string]string{"sv": "2020-05-31", "sr": "b", "sp": "r"} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	se, err := time.Parse(time.RFC3339, q.Get("se"))
	if err != nil {
		t.Fatalf("se %q: %v", q.Get("se"), err)
	}
	if vt, _ := time.Parse(validTillLayout, res.ValidTill); !vt.Equal(se) || !se.Equal(e.clock.now().Add(time.Hour)) {
		t.Errorf("se %v, validTill %v, want both one link-ttl after completion", se, res.ValidTill)
	}
	if !strings.HasPrefix(u.Path, "/armreports/"+res.Name+"/part_0.csv") {
		t.Errorf("path %s", u.Path)
	}

	with := func(edit func(url.Values, *url.URL)) string {
		v := u.Query()
		c := *u
		edit(v, &c)
		c.RawQuery = v.Encode()
		return c.String()
	}
	other, _ := url.Parse(res.Manifest.Blobs[1].BlobLink)
	tests := []struct {
		name   string
		link   string
		status int
		code   string
		detail string
	}{
		{"valid", link, 200, "", ""},
		{"bearer not needed but tolerated", link, 200, "", ""},
		{"tampered sig", with(func(v url.Values, _ *url.URL) { v.Set("sig", "AAAA"+v.Get("sig")[4:]) }), 403, "AuthenticationFailed", "Signature did not match"},
		{"extended expiry", with(func(v url.Values, _ *url.URL) { v.Set("se", se.Add(24*time.Hour).Format(time.RFC3339)) }), 403, "AuthenticationFailed", "Signature did not match"},
		{"write permission", with(func(v url.Values, _ *url.URL) { v.Set("sp", "rw") }), 403, "AuthenticationFailed", "Signature did not match"},
		{"other part with this sig", with(func(v url.Values, c *url.URL) { c.Path = other.Path }), 403, "AuthenticationFailed", "Signature did not match"},
		{"no sig", with(func(v url.Values, _ *url.URL) { v.Del("sig") }), 404, "ResourceNotFound", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h map[string]string
			if strings.HasPrefix(tt.name, "bearer") {
				h = map[string]string{"Authorization": "Bearer x.y.z"}
			}
			resp, b := e.do("GET", tt.link, "", h)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, b)
			}
			if tt.status == 200 {
				if resp.Header.Get("Content-Type") != "text/csv" || !strings.HasPrefix(string(b), utf8BOM) {
					t.Errorf("served %v %q", resp.Header, b[:10])
				}
				return
			}
			checkStorageError(t, resp.Header.Get("x-ms-error-code"), b, tt.code, tt.detail)
		})
	}

	t.Run("range and head", func(t *testing.T) {
		full := e.download(link)
		resp, b := e.do("GET", link, "", map[string]string{"x-ms-range": "bytes=3-12"})
		if resp.StatusCode != 206 || string(b) != string(full[3:13]) {
			t.Errorf("x-ms-range: %d %q", resp.StatusCode, b)
		}
		resp, b = e.do("HEAD", link, "", nil)
		if resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != int64(len(full)) {
			t.Errorf("HEAD: %d, %d bytes, Content-Length %d", resp.StatusCode, len(b), resp.ContentLength)
		}
	})

	t.Run("expired", func(t *testing.T) {
		e.clock.advance(time.Hour)
		resp, b := e.do("GET", link, "", nil)
		if resp.StatusCode != 403 {
			t.Fatalf("status %d (%s)", resp.StatusCode, b)
		}
		checkStorageError(t, resp.Header.Get("x-ms-error-code"), b, "AuthenticationFailed", "Signed expiry time")
		if !strings.Contains(string(b), "expired") {
			t.Errorf("no 'expired' in %s", b)
		}
		// The operation result still answers, with the same (expired) links.
		again := e.report(subScope, `{"timePeriod":{"start":"2026-11-01","end":"2026-11-02"}}`)
		if again.Name == res.Name {
			t.Errorf("a new request reused the operation")
		}
	})

	t.Run("dropped after twice the ttl", func(t *testing.T) {
		e.clock.advance(90 * time.Minute)
		resp, _ := e.do("GET", "/"+subScope+"/providers/Microsoft.CostManagement/costDetailsOperationResults/"+res.Name+"?api-version=2024-08-01", "", e.armHeaders())
		if resp.StatusCode != 404 {
			t.Errorf("poll of a dropped operation: %d, want 404", resp.StatusCode)
		}
		e.sim.mu.Lock()
		n := len(e.sim.ops)
		e.sim.mu.Unlock()
		if n != 1 {
			t.Errorf("%d operations kept, want 1 (the recent one)", n)
		}
	})
}

func checkStorageError(t *testing.T, header string, body []byte, code, detail string) {
	t.Helper()
	var se storageError
	if err := xml.Unmarshal(body, &se); err != nil {
		t.Fatalf("storage error body %q: %v", body, err)
	}
	if se.Code != code || header != code || !strings.Contains(se.AuthenticationErrorDetail+se.Message, detail) {
		t.Errorf("storage error %+v (x-ms-error-code %q), want code %q and %q", se, header, code, detail)
	}
}
