// Package serverbench is the server half of `make bench`: ingest, fan-out,
// idle-connection memory and catch-up of the real lfsync server over real
// WebSockets, each figure measured beside a plain-Go baseline in the same
// run, on SQLite and, when a PostgreSQL database is at hand, on PostgreSQL.
//
// Servers run in the bench's own process on 127.0.0.1, with their clients,
// except for the idle-connection memory figure: there the server (ours or
// the baseline) runs in a child process (the bench binary re-executed, see
// init), so that its resident memory holds no client's.
package serverbench
