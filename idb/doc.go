//go:build js && wasm

// Package idb is lfsync's local store in the browser: a core.Store on
// IndexedDB, for Go compiled to WebAssembly (GOOS=js GOARCH=wasm).
//
// One database holds five object stores:
//
//   - documents: key [repo, id], value the document as one JSON string;
//     a repository's documents are the key range [repo] .. [repo, []]
//     (an array sorts after every string), in id order, so the compound
//     primary key serves as the index by repository.
//   - outbox: key the event id, value an object {id, order, status, error,
//     repo, event} whose event field is the event as one JSON string; the
//     index status_order on [status, order] lists pending events in push order (Pending,
//     PendingCount) and acked ones oldest first (Acked, for pruning).
//   - cursors: key the repository, value the pull cursor (a number).
//   - config: key and value strings.
//   - meta: the outbox order counter, so Order keeps increasing across
//     removals, reopenings and tabs; and each repository's generation
//     (key "generation:"+repo), advanced in the transaction of every write
//     that puts documents of it and checked there against Batch.Expect, so
//     a tab's write computed from a read another tab overtook fails with
//     core.ErrStale instead of overwriting.
//
// Every Write is one readwrite transaction; concurrent Writes are committed
// together in one transaction (group commit), and a failed group is retried
// batch by batch so one bad batch fails alone. Reads use readonly
// transactions of one request each.
//
// The store talks to IndexedDB through github.com/hack-pad/go-indexeddb:
// opening with its Upgrader running the schema's migrations, deleting,
// single-key reads, counts, and its DOMException errors, which become
// *Exception. syscall/js remains where go-indexeddb v0.3.2 has no API: the
// versionchange transaction a migration needs to reach existing stores, the
// connection's versionchange and close events, getAll (Docs, Pending), and
// building the values stored; and on the write path, where go-indexeddb
// measured about 10% slower per transaction (see Store.commit).
//
// Another tab that upgrades or deletes the database makes this connection
// close; later calls fail with ErrVersionChange, which also matches
// core.ErrClosed. A full quota fails the write with an error matching
// core.ErrQuotaExceeded; the transaction aborts, so nothing of it is kept.
package idb
