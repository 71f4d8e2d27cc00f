// Package server is lfsync's sync server: the local_first_websocket protocol
// at /sync (as the Dart client speaks it, plus lfsync's ignorable
// extensions), its REST mirror under /api/, and Prometheus metrics at
// /metrics. docs/protocol.md describes the wire behaviour.
//
// The pieces, one file each:
//   - server.go: New, ServeHTTP, Shutdown, Connections, CloseConnections.
//   - conn.go: one WebSocket: a read loop that handles frames in order, a
//     writer draining a reply queue and a bounded fan-out queue that also
//     keeps the heartbeat.
//   - messages.go: what each client frame does.
//   - hub.go: per-repository broadcasters that fan committed events out in
//     sequence order, reading the log from the last sequence sent, so
//     concurrent commits, other nodes' commits (Watcher) and lost
//     notifications leave no gap and no duplicate.
//   - auth.go, tokens.go, jwt.go: Principal, Verifier, static tokens, HS256 JWTs.
//   - rest.go, metrics.go, limits.go, config.go.
//
// Storage is a Store (server/sqlite; server/storetest is the conformance
// suite). server/servertest runs a real server for tests; server/serve is the
// lfsync serve program.
package server
