// Package pgtest runs throwaway PostgreSQL clusters for tests and
// benchmarks: initdb in a temporary directory, the server on a free
// 127.0.0.1 port, no Docker and no system service.
//
// The binaries are found on PATH (initdb) or in the newest
// /usr/lib/postgresql/<version>/bin. initdb and postgres refuse to run as
// root, so as root they run as the "postgres" OS user (which the
// postgresql package creates) and the cluster's directory is handed to it.
//
// The server is started directly as a child process (not daemonized by
// pg_ctl) with a parent-death signal: it shuts down when the process that
// started it ends, even when a test binary crashes, times out or never
// calls Stop, so no postgres processes are left behind. Main stops the
// shared cluster of NewDB and removes its directory; directories left by a
// killed run are removed by the next run's first NewDB.
//
// Start keeps PostgreSQL's durability defaults (fsync and synchronous_commit
// on): a commit it acknowledges is on disk. New and NewDB turn fsync and
// full_page_writes off for speed (see New); synchronous_commit stays on,
// so only an operating system crash could lose an acknowledged commit.
package pgtest
