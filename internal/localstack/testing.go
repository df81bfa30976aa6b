package localstack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// StartT starts a stack for a test with Start and registers Close with
// t.Cleanup. Progress lines go to t.Log unless o.Log is set, and an empty
// o.Dir becomes t.TempDir(). In -short mode (make unit) the test is skipped.
// When a prerequisite is missing (node, the npm packages, a binary in bin/),
// the test is skipped with the command that fixes it, or fails if the CI
// environment variable is non-empty. When the test has failed, Cleanup logs
// the end of every component's log before the directory goes.
func StartT(t testing.TB, o Options) *Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("localstack: skipped in -short mode")
	}
	logf := t.Logf
	if o.Log != nil {
		logf = writerLogf(o.Log)
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := start(context.Background(), o, logf)
	if err != nil {
		if missing := (*missingError)(nil); errors.As(err, &missing) && os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.logTails(t)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// logTails logs the end of every component log.
func (s *Stack) logTails(t testing.TB) {
	s.mu.Lock()
	names := slices.Clone(s.order)
	s.mu.Unlock()
	for _, name := range names {
		path := filepath.Join(s.dir, "logs", name+".log")
		t.Logf("localstack: %s log%s", name, logTail(path, tailLines))
	}
}
