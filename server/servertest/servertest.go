// Package servertest runs a real lfsync server for tests: the real
// server.Server with a real SQLite database in a temporary directory, on a
// real 127.0.0.1 listener, so clients talk to it over real WebSockets.
package servertest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lfsync/lfsync/server"
	"github.com/lfsync/lfsync/server/sqlite"
)

// Server is a running test server. Its methods are safe for concurrent use.
type Server struct {
	tb   testing.TB
	opts options
	path string // SQLite database file

	mu      sync.Mutex
	addr    string // host:port, kept across restarts
	srv     *server.Server
	store   *sqlite.Store
	httpSrv *http.Server
	ln      net.Listener
	done    chan struct{} // closed when Serve returns
}

type options struct {
	dir      string
	tokens   map[string]server.Principal
	secret   []byte
	open     bool
	verifier server.Verifier
	config   []func(*server.Config)
	logger   *slog.Logger
}

// Option configures Start.
type Option func(*options)

// WithTokens authenticates with static tokens (token → principal).
func WithTokens(tokens map[string]server.Principal) Option {
	return func(o *options) {
		if o.tokens == nil {
			o.tokens = make(map[string]server.Principal)
		}
		for k, v := range tokens {
			o.tokens[k] = v
		}
	}
}

// WithJWTSecret authenticates HS256 JWTs signed with secret (see
// server.SignJWT).
func WithJWTSecret(secret []byte) Option { return func(o *options) { o.secret = secret } }

// WithOpen disables authentication: everyone is "anonymous" with full
// access to namespace "default". It is the default when no other
// authentication option is given.
func WithOpen() Option { return func(o *options) { o.open = true } }

// WithVerifier sets a custom verifier.
func WithVerifier(v server.Verifier) Option { return func(o *options) { o.verifier = v } }

// WithDir keeps the database in dir (default: a fresh t.TempDir()), so a
// later Start with the same dir reopens it.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithConfig edits the server.Config before the server is made (limits,
// ping intervals, origins...). Store, Verifier and Logger are already set.
func WithConfig(fn func(*server.Config)) Option {
	return func(o *options) { o.config = append(o.config, fn) }
}

// WithLogger sets the server's logger (default: errors only, to the test
// log; LFSYNC_TEST_LOG=debug|info|warn raises the level).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Start starts a server on 127.0.0.1:0 with a temporary SQLite database and
// registers its shutdown with tb.Cleanup.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	if o.dir == "" {
		o.dir = tb.TempDir()
	}
	if o.logger == nil {
		o.logger = testLogger(tb)
	}
	s := &Server{tb: tb, opts: o, path: filepath.Join(o.dir, "lfsync.db"), addr: "127.0.0.1:0"}
	if err := s.start(); err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) verifier() server.Verifier {
	o := s.opts
	var vs server.Verifiers
	if o.verifier != nil {
		vs = append(vs, o.verifier)
	}
	if len(o.tokens) > 0 {
		vs = append(vs, server.NewStaticTokens(o.tokens))
	}
	if len(o.secret) > 0 {
		vs = append(vs, &server.JWTVerifier{Secret: o.secret})
	}
	if o.open || len(vs) == 0 {
		return server.OpenVerifier()
	}
	if len(vs) == 1 {
		return vs[0]
	}
	return vs
}

func (s *Server) start() error {
	store, err := sqlite.Open(s.path)
	if err != nil {
		return err
	}
	cfg := server.Config{Store: store, Verifier: s.verifier(), Logger: s.opts.logger}
	for _, fn := range s.opts.config {
		fn(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		store.Close()
		return err
	}
	s.mu.Lock()
	addr := s.addr
	s.mu.Unlock()
	var ln net.Listener
	// The port of a socket just closed may take a moment to be free again.
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 50 || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		store.Close()
		return err
	}
	httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.opts.logger.Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	s.mu.Lock()
	s.addr, s.srv, s.store, s.httpSrv, s.ln, s.done = ln.Addr().String(), srv, store, httpSrv, ln, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.logger.Error("servertest: serve failed", "err", err)
		}
	}()
	return nil
}

// URL returns the server's base URL, http://127.0.0.1:port.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

// WSURL returns the WebSocket endpoint, ws://127.0.0.1:port/sync.
func (s *Server) WSURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "ws://" + s.addr + "/sync"
}

// Addr returns host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Server returns the running server.Server (a new one after Restart).
func (s *Server) Server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Store returns the running server's store; nil while stopped.
func (s *Server) Store() server.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil
	}
	return s.store
}

// Stop closes the listener and every socket and closes the database (which
// stays on disk). In-flight batches finish first. Stop is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, store, httpSrv, done := s.srv, s.store, s.httpSrv, s.done
	s.srv, s.store, s.httpSrv, s.ln, s.done = nil, nil, nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	httpSrv.SetKeepAlivesEnabled(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if err := httpSrv.Shutdown(ctx2); err != nil {
		httpSrv.Close()
	}
	<-done
	if err := store.Close(); err != nil {
		s.opts.logger.Error("servertest: failed to close the store", "err", err)
	}
}

// Restart stops the server and starts it again on the same port with the
// same database.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.tb.Fatalf("servertest: failed to restart: %v", err)
	}
}

// CloseConnections drops every WebSocket abruptly and keeps serving.
func (s *Server) CloseConnections() {
	if srv := s.Server(); srv != nil {
		srv.CloseConnections()
	}
}

// DropAcks makes the next n WebSocket acks go missing: the events commit,
// then the socket is closed instead of acking (a crash between commit and
// ack).
func (s *Server) DropAcks(n int) {
	if srv := s.Server(); srv != nil {
		srv.DropAcks(n)
	}
}

// Connections returns the number of live WebSocket connections.
func (s *Server) Connections() int {
	if srv := s.Server(); srv != nil {
		return srv.Connections()
	}
	return 0
}

// testLogger logs to tb while the test runs, at the level named by
// LFSYNC_TEST_LOG (default error).
func testLogger(tb testing.TB) *slog.Logger {
	level := slog.LevelError
	switch strings.ToLower(os.Getenv("LFSYNC_TEST_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	}
	w := &tbWriter{tb: tb}
	tb.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// tbWriter writes to tb.Log until the test ends.
type tbWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
