// Package postgres is lfsync's server store on PostgreSQL (pgx v5), for
// several server nodes sharing one database.
//
// Each repository has a row in lfsync_repos holding its last sequence. An
// Append's transaction locks that row (SELECT ... FOR UPDATE) and then, in
// one statement, looks up which events are stored already, inserts the new
// ones with the next sequences and advances the row; so appends to one
// repository are serialized across every node, sequences are gap-free,
// duplicate-free and in input order, and a re-pushed id keeps its first
// sequence even when two nodes race it. Appends to different repositories
// run in parallel. Appends to one repository arriving at one node together
// are committed in one transaction (group commit), two groups at a time:
// the lock, that statement and COMMIT go to the server in one pipeline, so
// the lock is held only while the server works, and the next group waits
// at the lock while the current one commits. lfsync_docs keeps the latest
// sequence of each document, so Latest and LatestSince are index range
// scans.
//
// Durability: an Append returns once its transaction is committed with the
// server's synchronous_commit setting (on by default: the WAL is flushed).
// A failure before COMMIT was sent stores nothing and is retried on another
// connection when the connection was dropped. When the connection dies
// while COMMIT may be under way, Append asks the server (txid_status)
// whether the transaction committed and answers accordingly; only when the
// server cannot be asked within a minute does it return an error saying
// the outcome is unknown, and pushing the events again is then safe (ids
// are deduplicated). Once Append has returned, nothing of its batch is
// written later.
//
// Fan-out across nodes (server.Watcher): after each commit the node sends
// pg_notify('lfsync', ...) with the repository and its new last sequence.
// The notification is sent after the commit on a connection of its own
// with synchronous_commit off, not inside the append transaction, because
// PostgreSQL serializes the commits of all notifying transactions of a
// cluster on one lock, held through the WAL flush; a node that dies between
// its commit and the notification loses that notification. Watch listens on
// a dedicated connection, reconnecting with backoff when it drops, and
// after every (re)connect and every second (WithPollInterval) it reads the
// last sequence of every repository and reports those that grew, so lost
// notifications, dropped connections and node restarts leave no gap.
//
// The schema is versioned in lfsync_schema; Open applies missing
// migrations in one transaction under an advisory lock, so nodes starting
// together migrate once. Tables are prefixed lfsync_ and may share a
// database with the application.
//
// The pool's size is pool_max_conns in the DSN (default: 4 per CPU, at
// least 8). Prepared statements are cached per connection, so a pgbouncer
// in front must run in session mode.
package postgres
