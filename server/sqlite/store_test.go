package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/sqlite"
	"github.com/lfsync/lfsync/server/storetest"
)

// open opens the database at path and closes it when t ends.
func open(t testing.TB, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%s) failed: %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() failed: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) server.Store {
		return open(t, filepath.Join(t.TempDir(), "lfsync.db"))
	})
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) func(t *testing.T) server.Store {
		path := filepath.Join(t.TempDir(), "lfsync.db")
		return func(t *testing.T) server.Store { return open(t, path) }
	})
}
