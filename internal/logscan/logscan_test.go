package logscan

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A costsim-shaped JWT: header {"typ":"JWT","alg":"RS256","kid":"costsim"}.
const jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6ImNvc3RzaW0ifQ.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuYXp1cmUuY29tLyJ9.c2lnbmF0dXJlLWJ5dGVz"

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`{"msg":"invocation done","scope":"subscriptions/x","duration_ms":3}`, nil},
		{`{"error":"download report: refused link to https://evil.example.com/armreports/x/part_0.csv: not https"}`, nil},
		{`{"error":"GET \"https://h/armreports/x?REDACTED\": EOF","other":"sig=REDACTED"}`, nil},
		{`{"msg":"signature checked","signed":true}`, nil},
		{`{"token":"` + jwt + `"}`, []string{"bearer token (JWT)"}},
		{`GET https://h/armreports/a/part_0.csv?sv=2020-05-31&sr=b&sp=r&se=2026&sig=abc%2Bdef%3D`, []string{"SAS signature"}},
		{`{"url":"https://h/x?sv=1\u0026sig=abc"}`, []string{"SAS signature"}},
		{`link=https%3A%2F%2Fh%2Fx%3Fsig%3Dabcdef`, []string{"SAS signature"}},
		{`{"headers":{"Authorization":"Bearer abc.def"}}`, []string{"Authorization header"}},
		{`{"msg":"{\"Authorization\": \"Bearer x\"}"}`, []string{"Authorization header"}},
		{`Authorization: SharedKey devstoreaccount1:abc=`, []string{"Authorization header"}},
		{`curl -H "bearer 0123456789abcdefXYZ"`, []string{"bearer credential"}},
	} {
		if got := Line(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("Line(%s) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	os.WriteFile(filepath.Join(dir, "logs", "clean.log"), []byte("a\nb\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "logs", "leaky.log"), []byte("ok\n{\"access_token\":\""+jwt+"\"}\n"), 0o644)
	leaks, st, err := Dir(dir)
	if err != nil || st.Files != 2 || st.Lines != 4 || len(leaks) != 1 {
		t.Fatalf("leaks %v, stats %+v, err %v", leaks, st, err)
	}
	l := leaks[0]
	if l.File != filepath.Join("logs", "leaky.log") || l.Line != 2 || strings.Contains(l.Excerpt, jwt) || !strings.Contains(l.String(), "leaky.log:2") {
		t.Errorf("leak %+v", l)
	}
}
