//go:build js && wasm

package idb

import (
	"errors"
	"syscall/js"

	goidb "github.com/hack-pad/go-indexeddb/idb"
)

// Object store and index names.
const (
	storeDocs    = "documents"
	storeOutbox  = "outbox"
	storeCursors = "cursors"
	storeConfig  = "config"
	storeMeta    = "meta"

	indexStatusOrder = "status_order"

	// metaOrder is the meta key of the last outbox Order assigned.
	metaOrder = "outboxOrder"
	// metaGeneration prefixes a repository's name to form the meta key of
	// its generation (core.Store.Generation); absent means 0.
	metaGeneration = "generation:"

	// storeScratch is created and deleted inside an upgrade to reach its
	// versionchange transaction; it never outlives the upgrade.
	storeScratch = "lfsync-upgrade-scratch"
)

// migration upgrades a database by one version inside the versionchange
// transaction. It runs synchronously in the upgradeneeded event: db creates
// and deletes object stores; tx, the IDBTransaction of the upgrade, reaches
// the stores that exist already (an index on one, records to rewrite: tx
// stays open until such requests finish). go-indexeddb has no API for that
// transaction, hence a js.Value. An error, or a JavaScript exception thrown
// by a call on tx, aborts the upgrade.
type migration func(db *goidb.Database, tx js.Value) error

// migrations[i] upgrades a database from version i to version i+1; the
// schema's version is len(migrations). Append, never edit a released one:
// a database at version n runs only migrations[n:], so data is kept.
var migrations = []migration{
	migrateV1,
}

// migrateV1 creates the stores of the first schema.
func migrateV1(db *goidb.Database, _ js.Value) error {
	if _, err := db.CreateObjectStore(storeDocs, goidb.ObjectStoreOptions{}); err != nil { // out-of-line keys [repo, id]
		return err
	}
	outbox, err := db.CreateObjectStore(storeOutbox, goidb.ObjectStoreOptions{KeyPath: js.ValueOf("id")})
	if err != nil {
		return err
	}
	if _, err := outbox.CreateIndex(indexStatusOrder, js.ValueOf([]any{"status", "order"}), goidb.IndexOptions{}); err != nil {
		return err
	}
	for _, name := range []string{storeCursors, storeConfig, storeMeta} {
		if _, err := db.CreateObjectStore(name, goidb.ObjectStoreOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// upgrader returns the go-indexeddb Upgrader that runs the migrations from
// oldVersion to the current version. rawDB returns the IDBDatabase being
// upgraded. A failed migration's error goes to *failed and the upgrade is
// aborted here, and the Upgrader returns nil: go-indexeddb panics inside
// the upgradeneeded handler on an Upgrader's error, which ends the Go
// program.
func upgrader(rawDB func() js.Value, failed *error) goidb.Upgrader {
	return func(db *goidb.Database, oldVersion, _ uint) error {
		var tx js.Value
		err := protect(func() { tx = versionChangeTx(rawDB()) })
		if err == nil && !tx.Truthy() {
			err = errors.New("no versionchange transaction")
		}
		if err != nil {
			*failed = err
			db.Close() // without the transaction to abort, fail the open
			return nil
		}
		for v := int(oldVersion); v < len(migrations) && err == nil; v++ {
			if perr := protect(func() { err = migrations[v](db, tx) }); perr != nil {
				err = perr
			}
		}
		if err != nil {
			*failed = exception(err)
			protect(func() { tx.Call("abort") })
		}
		return nil
	}
}

// versionChangeTx returns the versionchange transaction running on db,
// which go-indexeddb's Upgrader is not given: a store created during an
// upgrade belongs to it, and creating and deleting one within the same
// transaction leaves no trace.
func versionChangeTx(db js.Value) js.Value {
	tx := db.Call("createObjectStore", storeScratch).Get("transaction")
	db.Call("deleteObjectStore", storeScratch)
	return tx
}
