// Package serverbench is the server half of `make bench`: the real lfsync
// server over real WebSockets, each figure beside a plain-Go baseline
// measured in the same run.
//
//   - ingest with 1, 10 and 100 pushers (push_event of one event, each
//     waiting for its ack), and 100 pushers with push_events_batch of 10,
//     beside plain database/sql INSERTs of as many events in transactions of
//     the server's mean group-commit size with the same durability (WAL,
//     synchronous=FULL); each Note adds a plain WebSocket echo of the same
//     frames over as many connections, the transport's own limit;
//   - the SQLite store alone under 100 appenders (no server, no network);
//   - ingest with 100 pushers that also read the repository, beside the
//     same pushers write-only: the cost of fan-out while ingesting;
//   - fan-out latency p50/p99 from one push to 1,000 subscribed clients,
//     beside a plain coder/websocket broadcast of the same frame;
//   - memory per idle connection at 5,000 connections, beside a plain
//     coder/websocket echo server;
//   - catch-up through request_events (latest per document, and every
//     event), beside plain SELECTs of the same rows;
//   - ingest and fan-out on PostgreSQL when Options.PostgresDSN is set,
//     beside plain pgx single-row transactions and the plain broadcast.
//
// Servers run in the bench's own process on 127.0.0.1, with their clients,
// except for the idle-connection memory figure: there the server (ours or
// the baseline) runs in a child process (the bench binary re-executed, see
// init), so that its resident memory holds no client's.
package serverbench
