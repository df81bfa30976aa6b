package landing_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/window"
)

// TestPagesOnAzurite: pages land in order, are listed in order, and a part
// reads back whole and by ranges (the Parquet reader's access pattern).
func TestPagesOnAzurite(t *testing.T) {
	st := localstack.StartT(t, localstack.Options{Components: localstack.Components{Storage: true, Costsim: true}})
	cred, err := st.Credential()
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := azblob.NewClient(st.BlobURL, cred, &azblob.ClientOptions{ClientOptions: policy.ClientOptions{Transport: st.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	s := landing.New(blobs)
	if err := s.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := window.Window{Scope: "subscriptions/00000000-0000-0000-0000-000000000001", Metric: "Query:ActualCost:ab", From: "2026-10-01", To: "2026-10-31"}
	for _, i := range []int{2, 0, 10, 1} {
		if _, err := s.PutPage(t.Context(), w, 7, i, landing.FormatJSON, bytes.NewReader([]byte(fmt.Sprintf(`{"page":%d}`, i)))); err != nil {
			t.Fatal(err)
		}
	}
	// Another generation's pages are not listed.
	if _, err := s.PutPage(t.Context(), w, 8, 0, landing.FormatCSV, bytes.NewReader([]byte("a,b\n"))); err != nil {
		t.Fatal(err)
	}
	parts, err := s.ListPages(t.Context(), w, 7)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range parts {
		if p.Format != landing.FormatJSON || p.Bytes == 0 {
			t.Errorf("part %+v", p)
		}
		rc, err := s.OpenPart(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		got = append(got, string(b))
	}
	if fmt.Sprint(got) != `[{"page":0} {"page":1} {"page":2} {"page":10}]` {
		t.Fatalf("pages in order: %v", got)
	}

	ra, size, err := s.OpenPartAt(t.Context(), parts[3])
	if err != nil || size != int64(len(`{"page":10}`)) {
		t.Fatalf("OpenPartAt: size %d, %v", size, err)
	}
	buf := make([]byte, 4)
	if n, err := ra.ReadAt(buf, 2); n != 4 || err != nil || string(buf) != `page` {
		t.Errorf("ReadAt(4, 2) = %d %q %v", n, buf, err)
	}
	if n, err := ra.ReadAt(buf, size-2); n != 2 || err != io.EOF || string(buf[:2]) != `0}` {
		t.Errorf("ReadAt at the end = %d %q %v, want 2 bytes and io.EOF", n, buf[:n], err)
	}
	if _, _, err := s.OpenPartAt(t.Context(), landing.Part{Blob: "no/such/part"}); err == nil {
		t.Error("OpenPartAt of a missing part: no error")
	}
}
