//go:build js && wasm

package idb

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall/js"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
)

func testName(t *testing.T) string {
	return "lfsync-internal-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + t.Name()
}

// withMigrations replaces the schema's migrations for the test.
func withMigrations(t *testing.T, ms []migration) {
	old := migrations
	migrations = ms
	t.Cleanup(func() { migrations = old })
}

func mustOpen(t *testing.T, name string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, name)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func deleteAfter(t *testing.T, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := Delete(ctx, name); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
}

// TestUpgradeKeepsData opens a database at the current version, writes to
// it, then opens it with one more migration: the open store closes itself on
// versionchange, the upgrade runs only the new migration, and everything
// written before is still there.
func TestUpgradeKeepsData(t *testing.T) {
	name := testName(t)
	deleteAfter(t, name)
	ctx := context.Background()
	old := mustOpen(t, name)
	defer old.Close()
	ev := core.OutboxEvent{Repo: "todos", Event: protocol.Event{ID: "e1", Operation: protocol.OpInsert,
		CreatedAt: time.UnixMilli(1_767_225_600_000).UTC(), DataID: "a", Data: []byte(`{"id":"a"}`)}}
	err := old.Write(ctx, &core.Batch{
		Docs:    []core.DocWrite{{Repo: "todos", Doc: core.Doc{ID: "a", Data: []byte(`{"id":"a"}`)}}},
		Events:  []core.OutboxEvent{ev},
		Cursors: map[string]int64{"todos": 5},
		Config:  map[string]string{"clientId": "c1"},
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}

	ran := 0
	withMigrations(t, append(migrations[:len(migrations):len(migrations)], func(db, tx js.Value) {
		ran++
		tx.Call("objectStore", storeOutbox).Call("createIndex", "by_repo", "repo")
	}))
	s := mustOpen(t, name)
	defer s.Close()
	if ran != 1 {
		t.Fatalf("new migration ran %d times, want 1", ran)
	}
	if v := s.db.Get("version").Int(); v != len(migrations) {
		t.Fatalf("version = %d, want %d", v, len(migrations))
	}
	if _, _, err := old.Doc(ctx, "todos", "a"); !errors.Is(err, ErrVersionChange) {
		t.Fatalf("old store after upgrade: %v, want ErrVersionChange", err)
	}
	if _, ok, err := s.Doc(ctx, "todos", "a"); err != nil || !ok {
		t.Fatalf("Doc after upgrade = %v, %v", ok, err)
	}
	if e, ok, err := s.Outbox(ctx, "e1"); err != nil || !ok || e.Order != 1 {
		t.Fatalf("Outbox after upgrade = %+v, %v, %v", e, ok, err)
	}
	if n, err := s.PendingCount(ctx); err != nil || n != 1 {
		t.Fatalf("PendingCount after upgrade = %d, %v", n, err)
	}
	if c, err := s.Cursor(ctx, "todos"); err != nil || c != 5 {
		t.Fatalf("Cursor after upgrade = %d, %v", c, err)
	}
	if v, ok, err := s.Config(ctx, "clientId"); err != nil || !ok || v != "c1" {
		t.Fatalf("Config after upgrade = %q, %v, %v", v, ok, err)
	}
	// The order counter survived too.
	ev.Event.ID = "e2"
	if err := s.Write(ctx, &core.Batch{Events: []core.OutboxEvent{ev}}); err != nil {
		t.Fatal(err)
	}
	if e, _, err := s.Outbox(ctx, "e2"); err != nil || e.Order != 2 {
		t.Fatalf("Outbox(e2) = %+v, %v, want Order 2", e, err)
	}
}

// TestOpenNewerVersion opens a database a newer release upgraded: Open fails
// with the browser's VersionError instead of touching it.
func TestOpenNewerVersion(t *testing.T) {
	name := testName(t)
	deleteAfter(t, name)
	current := migrations
	withMigrations(t, append(current[:len(current):len(current)], func(db, tx js.Value) {}))
	mustOpen(t, name).Close()
	migrations = current
	_, err := Open(context.Background(), name)
	var ex *Exception
	if !errors.As(err, &ex) || ex.Name != "VersionError" || !strings.HasPrefix(err.Error(), "idb: failed to open ") {
		t.Fatalf("Open of a newer database = %v, want a VersionError", err)
	}
}

// TestFailedMigrationKeepsOldVersion: a migration that throws aborts the
// upgrade; the database stays at its old version with its data.
func TestFailedMigrationKeepsOldVersion(t *testing.T) {
	name := testName(t)
	deleteAfter(t, name)
	ctx := context.Background()
	s := mustOpen(t, name)
	if err := s.Write(ctx, &core.Batch{Config: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	current := migrations
	withMigrations(t, append(current[:len(current):len(current)], func(db, tx js.Value) {
		db.Call("createObjectStore", storeDocs) // exists: ConstraintError
	}))
	_, err := Open(ctx, name)
	var ex *Exception
	if !errors.As(err, &ex) || ex.Name != "ConstraintError" {
		t.Fatalf("Open with a failing migration = %v, want ConstraintError", err)
	}
	migrations = current
	s = mustOpen(t, name)
	defer s.Close()
	if v, ok, err := s.Config(ctx, "k"); err != nil || !ok || v != "v" {
		t.Fatalf("Config after failed upgrade = %q, %v, %v", v, ok, err)
	}
}

// TestRequestErrors provokes real DOMExceptions: one thrown by a call (an
// invalid key) and one that aborts a transaction (a duplicate add), and
// checks both become named errors the way writes report them.
func TestRequestErrors(t *testing.T) {
	name := testName(t)
	deleteAfter(t, name)
	s := mustOpen(t, name)
	defer s.Close()

	tx := s.db.Call("transaction", storeConfig, "readwrite")
	done := listen(tx, "complete", "abort")
	defer done.release()
	st := tx.Call("objectStore", storeConfig)
	thrown := protect(func() { st.Call("put", "v", js.Null()) })
	var ex *Exception
	if !errors.As(thrown, &ex) || ex.Name != "DataError" || ex.Message == "" {
		t.Fatalf("put with a null key = %#v, want DataError", thrown)
	}
	st.Call("add", "v", "k")
	st.Call("add", "v", "k")
	if typ := <-done.ch; typ != "abort" {
		t.Fatalf("transaction ended with %q, want abort", typ)
	}
	err := failed("write batch", exceptionError(tx.Get("error")))
	if !strings.HasPrefix(err.Error(), "idb: failed to write batch: ConstraintError: ") || !errors.As(err, &ex) || ex.Name != "ConstraintError" {
		t.Fatalf("aborted transaction = %v, want a wrapped ConstraintError", err)
	}
	if errors.Is(err, core.ErrQuotaExceeded) {
		t.Fatalf("%v matches core.ErrQuotaExceeded", err)
	}
	quota := failed("write batch", exceptionError(js.Global().Get("DOMException").New("full", "QuotaExceededError")))
	if !errors.Is(quota, core.ErrQuotaExceeded) || quota.Error() != "idb: failed to write batch: QuotaExceededError: full" {
		t.Fatalf("quota error = %v", quota)
	}
	// The aborted transaction stored nothing.
	if _, ok, err := s.Config(context.Background(), "k"); err != nil || ok {
		t.Fatalf("Config(k) after abort = %v, %v, want not found", ok, err)
	}
}
