package landing_test

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/costsync/costsync/internal/localstack"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/window"
)

func newLanding(t *testing.T) *landing.Store {
	t.Helper()
	st := localstack.StartT(t, localstack.Options{Components: localstack.Components{Storage: true, Costsim: true}})
	cred, err := st.Credential() // managed identity from costsim's endpoint
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := azblob.NewClient(st.BlobURL, cred, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: st.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	l := landing.New(blobs)
	for range 2 { // provisioning twice is harmless
		if err := l.Provision(t.Context()); err != nil {
			t.Fatalf("Provision: %v", err)
		}
	}
	return l
}

// TestIDs keeps the ids of two parts of one day and one part of another on
// Azurite, and reads each day's back; a day without ids reads none, and ids
// of another generation stay apart.
func TestIDs(t *testing.T) {
	l := newLanding(t)
	ctx := t.Context()
	w := window.Window{Scope: "subscriptions/1caaa5a3-2b66-438e-8ab4-bce37d518c5d", Metric: "ActualCost", From: "2026-01-01", To: "2026-01-02"}
	ids := func(tag byte, n int) [][16]byte {
		out := make([][16]byte, n)
		for i := range out {
			out[i][0], out[i][1], out[i][15] = tag, byte(i), byte(i>>8)
		}
		return out
	}
	put := func(gen int64, part int, date string, v [][16]byte) {
		t.Helper()
		if err := l.PutIDs(ctx, w, gen, part, date, v); err != nil {
			t.Fatalf("PutIDs: %v", err)
		}
	}
	put(1, 0, "2026-01-01", ids('a', 300))
	put(1, 1, "2026-01-01", ids('b', 20000))
	put(1, 1, "2026-01-02", ids('c', 5))
	put(2, 0, "2026-01-01", ids('z', 7))
	put(1, 0, "2026-01-01", ids('a', 300)) // a retried part writes its ids again

	read := func(gen int64, date string) [][16]byte {
		t.Helper()
		var got [][16]byte
		if err := l.ReadIDs(ctx, w, gen, date, func(id [16]byte) { got = append(got, id) }); err != nil {
			t.Fatalf("ReadIDs: %v", err)
		}
		slices.SortFunc(got, func(a, b [16]byte) int { return strings.Compare(string(a[:]), string(b[:])) })
		return got
	}
	sorted := func(parts ...[][16]byte) [][16]byte {
		out := slices.Concat(parts...)
		slices.SortFunc(out, func(a, b [16]byte) int { return strings.Compare(string(a[:]), string(b[:])) })
		return out
	}
	if got, want := read(1, "2026-01-01"), sorted(ids('a', 300), ids('b', 20000)); !slices.Equal(got, want) {
		t.Errorf("ids of 2026-01-01: %d read, want %d", len(got), len(want))
	}
	if got := read(1, "2026-01-02"); !slices.Equal(got, sorted(ids('c', 5))) {
		t.Errorf("ids of 2026-01-02: %v", got)
	}
	if got := read(1, "2026-01-03"); len(got) != 0 {
		t.Errorf("a day without ids read %d", len(got))
	}
	if got := read(2, "2026-01-01"); !slices.Equal(got, sorted(ids('z', 7))) {
		t.Errorf("ids of generation 2: %d read, want 7", len(got))
	}
}

// TestOpenPartMissing reports a part that is not in storage as permanent.
func TestOpenPartMissing(t *testing.T) {
	l := newLanding(t)
	_, err := l.OpenPart(t.Context(), landing.Part{Blob: "nowhere/part_00000.csv"})
	if err == nil || !landing.IsPermanent(err) {
		t.Fatalf("OpenPart of a missing blob: %v, want a permanent error", err)
	}
	w := window.Window{Scope: "subscriptions/1caaa5a3-2b66-438e-8ab4-bce37d518c5d", Metric: "ActualCost", From: "2026-01-01", To: "2026-01-01"}
	p, err := l.PutPart(t.Context(), w, 5, 0, strings.NewReader("a,b\n1,2\n"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.OpenPart(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if string(b) != "a,b\n1,2\n" || p.Bytes != int64(len(b)) {
		t.Errorf("part read back %q (%d bytes recorded)", b, p.Bytes)
	}
}
