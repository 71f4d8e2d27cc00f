//go:build js && wasm

package idb

import "syscall/js"

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
)

// migration upgrades a database by one version inside the versionchange
// transaction tx. It runs synchronously in the upgradeneeded event; a
// migration that must rewrite records issues its requests on tx, which stays
// open until they finish. A thrown exception aborts the upgrade.
type migration func(db, tx js.Value)

// migrations[i] upgrades a database from version i to version i+1; the
// schema's version is len(migrations). Append, never edit a released one:
// a database at version n runs only migrations[n:], so data is kept.
var migrations = []migration{
	migrateV1,
}

// migrateV1 creates the stores of the first schema.
func migrateV1(db, tx js.Value) {
	db.Call("createObjectStore", storeDocs) // out-of-line keys [repo, id]
	outbox := db.Call("createObjectStore", storeOutbox, map[string]any{"keyPath": "id"})
	outbox.Call("createIndex", indexStatusOrder, []any{"status", "order"})
	db.Call("createObjectStore", storeCursors)
	db.Call("createObjectStore", storeConfig)
	db.Call("createObjectStore", storeMeta)
}

// upgrade runs the migrations from oldVersion to the current version.
func upgrade(db, tx js.Value, oldVersion int) error {
	return protect(func() {
		for v := oldVersion; v < len(migrations); v++ {
			migrations[v](db, tx)
		}
	})
}
