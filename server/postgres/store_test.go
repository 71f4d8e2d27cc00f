package postgres_test

import (
	"context"
	"testing"

	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/postgres"
	"github.com/lfsync/lfsync/server/postgres/pgtest"
	"github.com/lfsync/lfsync/server/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens the database at dsn and closes the store when t ends.
func open(t testing.TB, dsn string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open(%s) failed: %v", dsn, err)
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
		return open(t, pgtest.NewDB(t))
	})
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) func(t *testing.T) server.Store {
		dsn := pgtest.NewDB(t)
		return func(t *testing.T) server.Store { return open(t, dsn) }
	})
}
