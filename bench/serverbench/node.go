package serverbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/postgres"
	"github.com/lfsync/lfsync/server/sqlite"
)

// Tokens the bench's clients authenticate with.
const (
	tokenReadWrite = "bench-rw" // reads and writes every repository
	tokenWriteOnly = "bench-w"  // writes only: its pushes subscribe it to nothing
)

// node is one lfsync server on a 127.0.0.1 listener.
type node struct {
	store server.Store
	srv   *server.Server
	hs    *http.Server
	url   string // ws://.../sync
	done  chan struct{}
}

// startNode serves store on a fresh 127.0.0.1 port. logf receives the
// server's warnings and errors.
func startNode(store server.Store, logf func(string, ...any), edit func(*server.Config)) (*node, error) {
	cfg := server.Config{
		Store: store,
		Verifier: server.NewStaticTokens(map[string]server.Principal{
			tokenReadWrite: {User: "bench", Read: []string{"*"}, Write: []string{"*"}},
			tokenWriteOnly: {User: "pusher", Write: []string{"*"}},
		}),
		Logger: slog.New(slog.NewTextHandler(logWriter{logf}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to make the server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to listen: %w", err)
	}
	n := &node{store: store, srv: srv, url: "ws://" + ln.Addr().String() + "/sync", done: make(chan struct{})}
	n.hs = &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(n.done)
		if err := n.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("serverbench: server stopped: %v", err)
		}
	}()
	return n, nil
}

// close shuts the server down and closes its store.
func (n *node) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.srv.Shutdown(ctx)
	if cerr := n.hs.Close(); cerr != nil && err == nil {
		err = cerr
	}
	<-n.done
	return errors.Join(err, n.store.Close())
}

// openSQLite opens a fresh SQLite store in a new file under dir.
func openSQLite(dir, name string) (*sqlite.Store, error) {
	return sqlite.Open(freshPath(dir, name))
}

// logWriter turns the server's log lines into Logf calls.
type logWriter struct{ logf func(string, ...any) }

func (w logWriter) Write(p []byte) (int, error) {
	w.logf("server: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = logWriter{}

// storeStats are the group-commit counters of a store; Busy and Sync are
// SQLite's only.
type storeStats struct {
	Commits, Events int64
	Busy, Sync      time.Duration
}

// stats returns the store's group-commit counters, zero for a store that
// keeps none.
func (n *node) stats() storeStats {
	switch st := n.store.(type) {
	case *sqlite.Store:
		s := st.Stats()
		return storeStats{Commits: s.Commits, Events: s.Events, Busy: s.Busy, Sync: s.Sync}
	case *postgres.Store:
		s := st.Stats()
		return storeStats{Commits: s.Commits, Events: s.Events}
	}
	return storeStats{}
}
