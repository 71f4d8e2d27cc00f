package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// rawDB opens path without the Store, for writing old or foreign states.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateFromVersion1KeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db := rawDB(t, path)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, conn, 1); err != nil {
		t.Fatalf("migrate(1) failed: %v", err)
	}
	// A log as version 1 stored it: no docs table.
	for _, q := range []string{
		`INSERT INTO repos (id, ns, name, last_seq, events) VALUES (1, 'ns', 'todos', 5, 5), (2, 'ns', 'notes', 1, 1)`,
		`INSERT INTO events (repo_id, seq, id, data_id, op, created_at_ms, data, meta) VALUES
			(1, 1, 'e1', 'a', 0, 1000, '{"id":"a","v":1}', NULL),
			(1, 2, 'e2', 'b', 0, 2000, '{"id":"b"}', NULL),
			(1, 3, 'e3', 'a', 1, 3000, '{"id":"a","v":2}', '{"m":1}'),
			(1, 4, 'e4', 'b', 2, 4000, NULL, NULL),
			(1, 5, 'e5', 'c', 0, 1500, '{"id":"c"}', NULL),
			(2, 1, 'n1', 'a', 0, 1000, '{"id":"a"}', NULL)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("failed to write version 1 data: %v", err)
		}
	}
	conn.Close()
	db.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(version 1 database) failed: %v", err)
	}
	defer s.Close()
	var version int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("schema version after Open = %d, %v; want %d", version, err, len(migrations))
	}
	latest, more, err := s.Latest(ctx, "ns", "todos", 0, 10)
	if err != nil || more {
		t.Fatalf("Latest() = more %v, %v", more, err)
	}
	if got := eventIDs(latest); got != "e3 e4 e5" {
		t.Fatalf("Latest() after migration = %s, want e3 e4 e5", got)
	}
	if string(latest[0].Meta) != `{"m":1}` || latest[1].Operation != protocol.OpDelete || latest[1].Data != nil {
		t.Fatalf("Latest() after migration lost fields: %+v", latest)
	}
	since, _, err := s.LatestSince(ctx, "ns", "todos", time.UnixMilli(1200), 10)
	if err != nil || eventIDs(since) != "e5 e3 e4" {
		t.Fatalf("LatestSince(1.2s) after migration = %s, %v; want e5 e3 e4", eventIDs(since), err)
	}
	if e, err := s.ByDataID(ctx, "ns", "notes", "a"); err != nil || e.ID != "n1" {
		t.Fatalf("ByDataID(notes, a) = %s, %v; want n1", e.ID, err)
	}
	res, err := s.Append(ctx, "ns", "todos", []protocol.Event{
		{ID: "e6", Operation: protocol.OpUpdate, CreatedAt: time.UnixMilli(6000), DataID: "c", Data: []byte(`{"id":"c","v":2}`)},
		{ID: "e1", Operation: protocol.OpInsert, CreatedAt: time.UnixMilli(1000), DataID: "a", Data: []byte(`{"id":"a"}`)},
	})
	if err != nil || res[0] != (server.Appended{ID: "e6", Sequence: 6, New: true}) || res[1] != (server.Appended{ID: "e1", Sequence: 1}) {
		t.Fatalf("Append() after migration = %+v, %v; want e6 at 6 new, e1 at 1 re-push", res, err)
	}
	if latest, _, err = s.Latest(ctx, "ns", "todos", 0, 10); err != nil || eventIDs(latest) != "e3 e4 e6" {
		t.Fatalf("Latest() after an append = %s, %v; want e3 e4 e6", eventIDs(latest), err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "future.db")
	db := rawDB(t, path)
	if _, err := db.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatal("Open(database from a newer build) succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open(newer database) error = %v, want it to say the schema is newer", err)
	}
}

func TestOpenRejectsBadPaths(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", ":memory:", filepath.Join(dir, "missing-dir", "x.db"), dir, garbage} {
		if s, err := Open(path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c%20d&e.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q) failed: %v", path, err)
	}
	defer s.Close()
	if _, err := s.Append(context.Background(), "", "r", []protocol.Event{{ID: "e", CreatedAt: time.Now(), DataID: "d", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database is not at %q: %v", path, err)
	}
}

// eventIDs joins the ids of events with spaces.
func eventIDs(events []protocol.Event) string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	return strings.Join(ids, " ")
}
