// Package serve runs the whole lfsync server program: configuration from
// flags and environment, the store (a SQLite file, or PostgreSQL shared by
// several nodes), the sync server, the optional static demo files, TLS and
// graceful shutdown. cmd/lfsync is a thin wrapper; tests start a Main
// in-process on port 0.
package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lfsync/lfsync/server"
)

// Main is the lfsync server program.
type Main struct {
	// Settings, filled by ParseFlags (environment first, flags override).
	Listen        string
	DB            string // SQLite path or postgres:// URL
	Node          string // this node's name; default the hostname
	WatchPoll     time.Duration
	TokensFile    string
	Tokens        []string // TOKEN, TOKEN=user or TOKEN=user@namespace
	JWTSecret     string
	Open          bool
	Origins       []string
	Proxies       []string // trusted proxies: IPs or CIDR prefixes
	TLSCert       string
	TLSKey        string
	Web           string
	RatePerSecond float64
	RateBurst     int
	MaxFrameBytes int64
	MaxBatch      int
	PingInterval  time.Duration
	PongTimeout   time.Duration
	LogLevel      string
	LogFormat     string
	ShutdownWait  time.Duration

	// Stderr receives the logs (default os.Stderr); Getenv reads the
	// environment (default os.Getenv).
	Stderr io.Writer
	Getenv func(string) string

	log      *slog.Logger
	store    server.Store
	srv      *server.Server
	httpSrv  *http.Server
	ln       net.Listener
	ready    chan struct{}
	done     chan struct{}
	serveMu  sync.Mutex
	err      error
	close    sync.Once
	closeErr error
}

// NewMain returns a Main with the defaults.
func NewMain() *Main {
	return &Main{
		Listen:        ":8080",
		DB:            "./data/lfsync.db",
		WatchPoll:     server.DefaultWatchPoll,
		RatePerSecond: 200,
		RateBurst:     400,
		MaxFrameBytes: server.DefaultMaxFrameBytes,
		MaxBatch:      server.DefaultMaxBatch,
		PingInterval:  server.DefaultPingInterval,
		PongTimeout:   server.DefaultPongTimeout,
		LogLevel:      "info",
		LogFormat:     "text",
		ShutdownWait:  15 * time.Second,
		Stderr:        os.Stderr,
		Getenv:        os.Getenv,
		ready:         make(chan struct{}),
		done:          make(chan struct{}),
	}
}

// listFlag is a repeatable string flag.
type listFlag struct{ dst *[]string }

func (l listFlag) String() string {
	if l.dst == nil {
		return ""
	}
	return strings.Join(*l.dst, ",")
}

// Set appends v, split at commas.
func (l listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l.dst = append(*l.dst, p)
		}
	}
	return nil
}

// ParseFlags reads the environment (LFSYNC_*), then the flags of `lfsync
// serve`, which override it.
func (m *Main) ParseFlags(args []string) error {
	if err := m.fromEnv(); err != nil {
		return err
	}
	fs := flag.NewFlagSet("lfsync serve", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.Listen, "addr", m.Listen, "listen address (env LFSYNC_ADDR)")
	fs.StringVar(&m.DB, "db", m.DB, "SQLite database file (its directory is created), or a postgres:// or postgresql:// URL of a PostgreSQL database that several nodes may share (env LFSYNC_DB)")
	fs.StringVar(&m.Node, "node", m.Node, "name of this server node in logs, /api/health and /metrics; default the hostname (env LFSYNC_NODE)")
	fs.DurationVar(&m.WatchPoll, "watch-poll", m.WatchPoll, "with PostgreSQL: how often subscribed repositories are re-read in case a notification of another node's append was lost (env LFSYNC_WATCH_POLL)")
	fs.StringVar(&m.TokensFile, "tokens", m.TokensFile, "static tokens file, a JSON array of {token,user,namespace,read,write} (env LFSYNC_TOKENS)")
	envTokens := m.Tokens
	m.Tokens = nil
	fs.Var(listFlag{&m.Tokens}, "token", "static tokens TOKEN, TOKEN=user or TOKEN=user@namespace with full access, comma-separated; repeatable (env LFSYNC_TOKEN)")
	fs.StringVar(&m.JWTSecret, "jwt-secret", m.JWTSecret, "HS256 secret for JWTs (env LFSYNC_JWT_SECRET)")
	fs.BoolVar(&m.Open, "open", m.Open, "DEVELOPMENT ONLY: no authentication, everyone has full access (env LFSYNC_OPEN)")
	envOrigins := m.Origins
	m.Origins = nil
	fs.Var(listFlag{&m.Origins}, "origin", "allowed browser Origin host patterns, comma-separated (e.g. app.example.com, *.example.com, https://x.example.com, * for all); repeatable (env LFSYNC_ORIGINS)")
	fs.Var(listFlag{&m.Origins}, "origins", "same as --origin")
	envProxies := m.Proxies
	m.Proxies = nil
	fs.Var(listFlag{&m.Proxies}, "trusted-proxy", "load balancers or reverse proxies (IP addresses or CIDR prefixes, comma-separated; repeatable) whose X-Forwarded-For names the client, for rate limits and logs (env LFSYNC_TRUSTED_PROXIES)")
	fs.StringVar(&m.TLSCert, "tls-cert", m.TLSCert, "TLS certificate file (env LFSYNC_TLS_CERT)")
	fs.StringVar(&m.TLSKey, "tls-key", m.TLSKey, "TLS key file (env LFSYNC_TLS_KEY)")
	fs.StringVar(&m.Web, "web", m.Web, "directory of static files to serve at / (env LFSYNC_WEB)")
	fs.Float64Var(&m.RatePerSecond, "rate", m.RatePerSecond, "frames per second per connection, 0 = unlimited (env LFSYNC_RATE)")
	fs.IntVar(&m.RateBurst, "rate-burst", m.RateBurst, "burst of the per-connection rate limit (env LFSYNC_RATE_BURST)")
	fs.Int64Var(&m.MaxFrameBytes, "max-frame", m.MaxFrameBytes, "maximum frame and REST body size in bytes (env LFSYNC_MAX_FRAME)")
	fs.IntVar(&m.MaxBatch, "max-batch", m.MaxBatch, "maximum events per batch (env LFSYNC_MAX_BATCH)")
	fs.DurationVar(&m.PingInterval, "ping-interval", m.PingInterval, "server ping interval (env LFSYNC_PING_INTERVAL)")
	fs.DurationVar(&m.PongTimeout, "pong-timeout", m.PongTimeout, "pong deadline (env LFSYNC_PONG_TIMEOUT)")
	fs.StringVar(&m.LogLevel, "log-level", m.LogLevel, "debug, info, warn or error (env LFSYNC_LOG_LEVEL)")
	fs.StringVar(&m.LogFormat, "log-format", m.LogFormat, "text or json (env LFSYNC_LOG_FORMAT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if len(m.Tokens) == 0 {
		m.Tokens = envTokens
	}
	if len(m.Origins) == 0 {
		m.Origins = envOrigins
	}
	if len(m.Proxies) == 0 {
		m.Proxies = envProxies
	}
	if m.Node == "" {
		m.Node, _ = os.Hostname()
	}
	return nil
}

func (m *Main) fromEnv() error {
	get := m.Getenv
	if get == nil {
		get = os.Getenv
	}
	str := func(key string, dst *string) {
		if v := get(key); v != "" {
			*dst = v
		}
	}
	list := func(key string, dst *[]string) {
		if v := get(key); v != "" {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					*dst = append(*dst, p)
				}
			}
		}
	}
	str("LFSYNC_ADDR", &m.Listen)
	str("LFSYNC_DB", &m.DB)
	str("LFSYNC_NODE", &m.Node)
	str("LFSYNC_TOKENS", &m.TokensFile)
	list("LFSYNC_TOKEN", &m.Tokens)
	str("LFSYNC_JWT_SECRET", &m.JWTSecret)
	list("LFSYNC_ORIGINS", &m.Origins)
	list("LFSYNC_TRUSTED_PROXIES", &m.Proxies)
	str("LFSYNC_TLS_CERT", &m.TLSCert)
	str("LFSYNC_TLS_KEY", &m.TLSKey)
	str("LFSYNC_WEB", &m.Web)
	str("LFSYNC_LOG_LEVEL", &m.LogLevel)
	str("LFSYNC_LOG_FORMAT", &m.LogFormat)
	var errs []error
	parse := func(key string, fn func(string) error) {
		if v := get(key); v != "" {
			if err := fn(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
			}
		}
	}
	parse("LFSYNC_OPEN", func(v string) (err error) { m.Open, err = strconv.ParseBool(v); return })
	parse("LFSYNC_RATE", func(v string) (err error) { m.RatePerSecond, err = strconv.ParseFloat(v, 64); return })
	parse("LFSYNC_RATE_BURST", func(v string) (err error) { m.RateBurst, err = strconv.Atoi(v); return })
	parse("LFSYNC_MAX_FRAME", func(v string) (err error) { m.MaxFrameBytes, err = strconv.ParseInt(v, 10, 64); return })
	parse("LFSYNC_MAX_BATCH", func(v string) (err error) { m.MaxBatch, err = strconv.Atoi(v); return })
	parse("LFSYNC_PING_INTERVAL", func(v string) (err error) { m.PingInterval, err = time.ParseDuration(v); return })
	parse("LFSYNC_PONG_TIMEOUT", func(v string) (err error) { m.PongTimeout, err = time.ParseDuration(v); return })
	parse("LFSYNC_WATCH_POLL", func(v string) (err error) { m.WatchPoll, err = time.ParseDuration(v); return })
	return errors.Join(errs...)
}

// ErrNoAuth is returned by Run when no authentication is configured and
// open mode was not asked for.
var ErrNoAuth = errors.New("no authentication configured: pass --tokens FILE, --token TOKEN or --jwt-secret SECRET (or LFSYNC_TOKENS, LFSYNC_TOKEN, LFSYNC_JWT_SECRET); --open disables authentication for development only")

func (m *Main) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return nil, fmt.Errorf("invalid log level %q", m.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	w := m.Stderr
	if w == nil {
		w = os.Stderr
	}
	switch m.LogFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid log format %q (text or json)", m.LogFormat)
}

// verifier builds the verifier the settings ask for.
func (m *Main) verifier() (server.Verifier, error) {
	var vs server.Verifiers
	if m.TokensFile != "" {
		t, err := server.LoadTokens(m.TokensFile)
		if err != nil {
			return nil, err
		}
		vs = append(vs, t)
	}
	if len(m.Tokens) > 0 {
		tokens := make(map[string]server.Principal, len(m.Tokens))
		for _, spec := range m.Tokens {
			tok, who, _ := strings.Cut(spec, "=")
			if tok == "" {
				return nil, fmt.Errorf("invalid --token %q: empty token", spec)
			}
			user, ns, _ := strings.Cut(who, "@")
			if user == "" {
				user = "token"
			}
			tokens[tok] = server.Principal{User: user, Namespace: ns}
		}
		vs = append(vs, server.NewStaticTokens(tokens))
	}
	if m.JWTSecret != "" {
		if len(m.JWTSecret) < 32 {
			return nil, errors.New("--jwt-secret must be at least 32 bytes")
		}
		vs = append(vs, &server.JWTVerifier{Secret: []byte(m.JWTSecret)})
	}
	if m.Open {
		if len(vs) > 0 {
			return nil, errors.New("--open cannot be combined with --tokens, --token or --jwt-secret")
		}
		return server.OpenVerifier(), nil
	}
	switch len(vs) {
	case 0:
		return nil, ErrNoAuth
	case 1:
		return vs[0], nil
	}
	return vs, nil
}

// Run opens the database, starts the server and returns once it listens;
// serving goes on in the background until Close (or until ctx ends, which
// shuts down gracefully). Addr then reports the actual address.
func (m *Main) Run(ctx context.Context) (err error) {
	log, err := m.logger()
	if err != nil {
		return err
	}
	if m.Node != "" {
		log = log.With("node", m.Node)
	}
	m.log = log
	v, err := m.verifier()
	if err != nil {
		return err
	}
	if (m.TLSCert == "") != (m.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	var static http.Handler
	if m.Web != "" {
		if static, err = Static(m.Web); err != nil {
			return fmt.Errorf("failed to open --web directory: %w", err)
		}
	}
	store, err := openStore(ctx, m.DB, m.Node)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	srv, err := server.New(server.Config{
		Store: store, Verifier: v, AllowedOrigins: m.Origins,
		MaxFrameBytes: m.MaxFrameBytes, MaxBatch: m.MaxBatch,
		RatePerSecond: m.RatePerSecond, RateBurst: m.RateBurst,
		PingInterval: m.PingInterval, PongTimeout: m.PongTimeout,
		WatchPoll: m.WatchPoll, Node: m.Node, TrustedProxies: m.Proxies,
		Logger: log,
	})
	if err != nil {
		return err
	}
	var handler http.Handler = srv
	if static != nil {
		mux := http.NewServeMux()
		mux.Handle("/sync", srv)
		mux.Handle("/api/", srv)
		mux.Handle("/metrics", srv)
		mux.Handle("/", static)
		handler = mux
	}
	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", m.Listen, err)
	}
	m.store, m.srv, m.ln = store, srv, ln
	m.httpSrv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if m.TLSCert != "" {
		scheme = "https"
	}
	log.Info("lfsync listening", "addr", ln.Addr().String(), "scheme", scheme, "backend", BackendOf(m.DB), "db", Redact(m.DB), "web", m.Web, "origins", m.Origins)
	go func() {
		defer close(m.done)
		var err error
		if m.TLSCert != "" {
			err = m.httpSrv.ServeTLS(ln, m.TLSCert, m.TLSKey)
		} else {
			err = m.httpSrv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("server stopped", "err", err)
			m.serveMu.Lock()
			m.err = err
			m.serveMu.Unlock()
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			m.Close()
		case <-m.done:
		}
	}()
	close(m.ready)
	return nil
}

// Ready is closed once Run listens.
func (m *Main) Ready() <-chan struct{} { return m.ready }

// Done is closed once the server stopped serving (after Close, or on a
// fatal serve error; see Err).
func (m *Main) Done() <-chan struct{} { return m.done }

// Err returns the fatal serve error, if any.
func (m *Main) Err() error {
	m.serveMu.Lock()
	defer m.serveMu.Unlock()
	return m.err
}

// Addr returns the address the server listens on, host:port ("" before
// Run).
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Server returns the sync server (nil before Run).
func (m *Main) Server() *server.Server { return m.srv }

// Close shuts down gracefully: in-flight batches commit and are acked,
// sockets close with "going away", then the database closes.
func (m *Main) Close() error {
	m.close.Do(func() {
		if m.srv == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownWait)
		defer cancel()
		m.log.Info("shutting down")
		m.httpSrv.SetKeepAlivesEnabled(false)
		// Stop listening and finish REST requests, then finish the
		// WebSocket batches and close the sockets.
		var errs []error
		if herr := m.httpSrv.Shutdown(ctx); herr != nil {
			errs = append(errs, herr)
			m.httpSrv.Close()
		}
		errs = append(errs, m.srv.Shutdown(ctx))
		<-m.done
		errs = append(errs, m.store.Close())
		m.closeErr = errors.Join(errs...)
		m.log.Info("stopped")
	})
	return m.closeErr
}
