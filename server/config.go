package server

import (
	"errors"
	"log/slog"
	"time"
)

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	// Store is the durable event log (required).
	Store Store
	// Verifier checks tokens (required). OpenVerifier() only when the
	// operator asked for open mode explicitly.
	Verifier Verifier
	// AllowedOrigins is the Origin allow-list checked on the WebSocket
	// upgrade: host patterns ("app.example.com", "*.example.com") or
	// scheme://host patterns. Empty allows the server's own host only; "*"
	// allows every origin. Requests without an Origin (non-browser clients)
	// are always allowed.
	AllowedOrigins []string
	// MaxFrameBytes caps an incoming WebSocket frame and a REST body;
	// default 1 MiB. A larger frame closes the socket with
	// StatusMessageTooBig.
	MaxFrameBytes int64
	// MaxBatch caps the events of one push_events_batch; default 1000.
	MaxBatch int
	// MaxPage caps the events of one events frame sent in reply to a
	// request; default 1000.
	MaxPage int
	// MaxSendBytes bounds the approximate size of one events frame the
	// server sends (at least one event goes in each); larger pages are
	// split, or cut short with hasMore. Default 4 MiB.
	MaxSendBytes int
	// RatePerSecond and RateBurst configure each connection's token bucket
	// for incoming frames (ping and pong are free). RatePerSecond 0 means
	// unlimited; RateBurst defaults to twice the rate.
	RatePerSecond float64
	RateBurst     int
	// PingInterval is how often the server pings an authenticated
	// connection, PongTimeout how long it waits for the pong; defaults 30s
	// and 10s.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// AuthTimeout is how long a new connection may stay unauthenticated;
	// default 30s.
	AuthTimeout time.Duration
	// SendQueue is the number of fan-out frames a connection may have
	// waiting; a connection that falls further behind is disconnected.
	// Default 256.
	SendQueue int
	// WatchPoll is how often the hub re-reads repositories that have
	// subscribers when the Store implements Watcher (notifications may be
	// lost); default 5s.
	WatchPoll time.Duration
	// TrustedProxies are the load balancers and reverse proxies (IP
	// addresses or CIDR prefixes) whose X-Forwarded-For header names the
	// client: the per-address REST rate limit and the logs then use the
	// client's address instead of the proxy's. Empty: the header is
	// ignored.
	TrustedProxies []string
	// Node names this server node among several sharing one Store; it is
	// reported by /api/health and /metrics (label node). Optional.
	Node string
	// Logger receives structured logs; default slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultMaxFrameBytes = 1 << 20
	DefaultMaxBatch      = 1000
	DefaultMaxPage       = 1000
	DefaultMaxSendBytes  = 4 << 20
	DefaultPageLimit     = 100 // request_events without a limit, as the Dart server
	DefaultPingInterval  = 30 * time.Second
	DefaultPongTimeout   = 10 * time.Second
	DefaultAuthTimeout   = 30 * time.Second
	DefaultSendQueue     = 256
	DefaultWatchPoll     = 5 * time.Second
)

func (c Config) withDefaults() (Config, error) {
	if c.Store == nil {
		return c, errors.New("server: Config.Store is required")
	}
	if c.Verifier == nil {
		return c, errors.New("server: Config.Verifier is required (use OpenVerifier() only for open mode)")
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxPage <= 0 {
		c.MaxPage = DefaultMaxPage
	}
	if c.MaxSendBytes <= 0 {
		c.MaxSendBytes = DefaultMaxSendBytes
	}
	if c.RatePerSecond < 0 {
		c.RatePerSecond = 0
	}
	if c.RatePerSecond > 0 && c.RateBurst <= 0 {
		c.RateBurst = int(2*c.RatePerSecond) + 1
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = DefaultPongTimeout
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = DefaultAuthTimeout
	}
	if c.SendQueue <= 0 {
		c.SendQueue = DefaultSendQueue
	}
	if c.WatchPoll <= 0 {
		c.WatchPoll = DefaultWatchPoll
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
