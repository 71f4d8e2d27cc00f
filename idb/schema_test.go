//go:build js && wasm

package idb

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"syscall/js"
	"testing"
	"time"

	goidb "github.com/hack-pad/go-indexeddb/idb"

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
	withMigrations(t, append(migrations[:len(migrations):len(migrations)], func(db *goidb.Database, tx js.Value) error {
		ran++
		tx.Call("objectStore", storeOutbox).Call("createIndex", "by_repo", "repo")
		_, err := db.CreateObjectStore("added", goidb.ObjectStoreOptions{})
		return err
	}))
	s := mustOpen(t, name)
	defer s.Close()
	if ran != 1 {
		t.Fatalf("new migration ran %d times, want 1", ran)
	}
	if v, err := s.db.Version(); err != nil || int(v) != len(migrations) {
		t.Fatalf("version = %d, %v; want %d", v, err, len(migrations))
	}
	if names, err := s.db.ObjectStoreNames(); err != nil || !slices.Contains(names, "added") || slices.Contains(names, storeScratch) {
		t.Fatalf("object stores = %q, %v; want the new one and no scratch store", names, err)
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
	withMigrations(t, append(current[:len(current):len(current)], func(*goidb.Database, js.Value) error { return nil }))
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
	withMigrations(t, append(current[:len(current):len(current)], func(db *goidb.Database, tx js.Value) error {
		_, err := db.CreateObjectStore(storeDocs, goidb.ObjectStoreOptions{}) // exists: ConstraintError
		return err
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
	if v, err := s.db.Version(); err != nil || int(v) != len(migrations) {
		t.Fatalf("version after failed upgrade = %d, %v; want %d", v, err, len(migrations))
	}
}

// TestFailedMigrationThrows: a JavaScript exception thrown by a call on the
// versionchange transaction aborts the upgrade too, with its name.
func TestFailedMigrationThrows(t *testing.T) {
	name := testName(t)
	deleteAfter(t, name)
	mustOpen(t, name).Close()
	current := migrations
	withMigrations(t, append(current[:len(current):len(current)], func(db *goidb.Database, tx js.Value) error {
		tx.Call("objectStore", "missing") // NotFoundError
		return nil
	}))
	_, err := Open(context.Background(), name)
	var ex *Exception
	if !errors.As(err, &ex) || ex.Name != "NotFoundError" {
		t.Fatalf("Open with a throwing migration = %v, want NotFoundError", err)
	}
	migrations = current
	s := mustOpen(t, name)
	defer s.Close()
	if v, err := s.db.Version(); err != nil || int(v) != len(migrations) {
		t.Fatalf("version after failed upgrade = %d, %v; want %d", v, err, len(migrations))
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

	txn, err := s.db.Transaction(goidb.TransactionReadWrite, storeConfig)
	if err != nil {
		t.Fatal(err)
	}
	st, err := txn.ObjectStore(storeConfig)
	if err != nil {
		t.Fatal(err)
	}
	_, thrown := st.PutKey(js.Null(), js.ValueOf("v"))
	var ex *Exception
	if thrown = exception(thrown); !errors.As(thrown, &ex) || ex.Name != "DataError" || ex.Message == "" {
		t.Fatalf("put with a null key = %#v, want DataError", thrown)
	}
	for range 2 {
		if _, err := st.AddKey(js.ValueOf("k"), js.ValueOf("v")); err != nil {
			t.Fatal(err)
		}
	}
	err = failed("write batch", exception(txn.Await(context.Background())))
	if !strings.HasPrefix(err.Error(), "idb: failed to write batch: ConstraintError: ") || !errors.As(err, &ex) || ex.Name != "ConstraintError" {
		t.Fatalf("aborted transaction = %v, want a wrapped ConstraintError", err)
	}
	if !errors.Is(err, goidb.NewDOMException("ConstraintError")) || errors.Is(err, goidb.NewDOMException("DataError")) {
		t.Fatalf("%v does not match go-indexeddb's ConstraintError alone", err)
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
