// Package integration tests the engine of package core against the real
// lfsync server started in-process (server/servertest: real SQLite, real
// WebSocket): convergence, faults, restarts, auth, watch and status.
//
// It holds only tests. It is native-only because it links the server and
// SQLite, which do not build for GOOS=js; keeping it apart lets core itself
// stay free of build tags and compile everywhere.
package integration
