// Package sqlite is lfsync's embedded default server store: the event log in
// one SQLite file (modernc.org/sqlite, pure Go).
//
// The database runs in WAL mode with synchronous=FULL, so an Append returns
// only once its events are durable. Reads go through a pool of query-only
// connections that WAL lets run beside the writer. Every Append is queued to
// a single writer goroutine that commits all queued requests in one
// transaction (group commit). When a request fails, the writer rolls the
// group back and runs it again with each request inside its own SAVEPOINT,
// so that a failing request stores nothing and does not affect the others.
//
// The schema is versioned with PRAGMA user_version; Open applies the missing
// migrations in one transaction.
package sqlite
