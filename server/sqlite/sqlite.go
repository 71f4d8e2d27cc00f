package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lfsync/lfsync/server"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var _ server.Store = (*Store)(nil)

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("store is closed")

// Store is a server.Store in one SQLite database file.
type Store struct {
	path string
	wdb  *sql.DB   // one connection, owned by the writer goroutine
	wc   *sql.Conn // the writer's connection
	rdb  *sql.DB   // query-only read pool
	w    writeStmts
	r    readStmts

	mu       sync.RWMutex // guards closed against sends on reqs
	closed   bool
	isClosed atomic.Bool
	reqs     chan *appendReq
	done     chan struct{} // closed when the writer goroutine has exited

	maxGroup       int
	maxGroupEvents int
	groups         atomic.Int64 // transactions committed by the writer
	appends        atomic.Int64 // requests committed
	events         atomic.Int64 // new events committed
	busy           atomic.Int64 // ns spent in the writer's transactions
	syncing        atomic.Int64 // ns of those spent in COMMIT (the durable sync)
}

// Stats counts the writer's work since Open.
type Stats struct {
	// Commits is the number of group commits.
	Commits int64 `json:"commits"`
	// Appends is the number of Append requests committed.
	Appends int64 `json:"appends"`
	// Events is the number of new events stored.
	Events int64 `json:"events"`
	// Busy is the time the writer spent in transactions, from BEGIN to the
	// end of COMMIT.
	Busy time.Duration `json:"busy"`
	// Sync is the part of Busy spent in COMMIT statements: writing and
	// syncing the WAL (and checkpointing, when one is due).
	Sync time.Duration `json:"sync"`
}

// Stats returns the writer's counters; Appends/Commits is the average group
// size.
func (s *Store) Stats() Stats {
	return Stats{
		Commits: s.groups.Load(), Appends: s.appends.Load(), Events: s.events.Load(),
		Busy: time.Duration(s.busy.Load()), Sync: time.Duration(s.syncing.Load()),
	}
}

// Option configures Open.
type Option func(*config)

type config struct {
	busyTimeout    time.Duration
	readConns      int
	maxGroup       int
	maxGroupEvents int
}

// WithBusyTimeout sets how long a connection waits for a lock held by
// another connection or process (default 5s).
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.busyTimeout = d
		}
	}
}

// WithReadConns sets the size of the read connection pool (default
// 2×GOMAXPROCS, at least 4).
func WithReadConns(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.readConns = n
		}
	}
}

// WithGroupLimit bounds one group commit to at most requests Appends and
// events events (defaults 1024 and 20000); a single larger Append still
// commits alone.
func WithGroupLimit(requests, events int) Option {
	return func(c *config) {
		if requests > 0 {
			c.maxGroup = requests
		}
		if events > 0 {
			c.maxGroupEvents = events
		}
	}
}

// Open opens, creating it if needed, the database file at path and migrates
// its schema to the current version.
func Open(path string, opts ...Option) (*Store, error) {
	s, err := openStore(path, opts...)
	if err != nil {
		return nil, err
	}
	go s.write()
	return s, nil
}

// openStore is Open without starting the writer goroutine.
func openStore(path string, opts ...Option) (*Store, error) {
	if path == "" || path == ":memory:" {
		return nil, errors.New("sqlite: failed to open: a database file path is required")
	}
	cfg := config{
		busyTimeout:    5 * time.Second,
		readConns:      max(4, 2*runtime.GOMAXPROCS(0)),
		maxGroup:       1024,
		maxGroupEvents: 20000,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Store{
		path:           path,
		reqs:           make(chan *appendReq, cfg.maxGroup),
		done:           make(chan struct{}),
		maxGroup:       cfg.maxGroup,
		maxGroupEvents: cfg.maxGroupEvents,
	}
	if err := s.open(cfg); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlite: failed to open %s: %w", path, err)
	}
	return s, nil
}

// dsn returns the driver's data source name for path with the given
// connection parameters.
func dsn(path string, params url.Values) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + params.Encode()
}

func (s *Store) open(cfg config) error {
	ms := strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10)
	wp := url.Values{}
	wp.Add("_pragma", "busy_timeout("+ms+")")
	wp.Add("_pragma", "journal_mode(WAL)")
	wp.Add("_pragma", "synchronous(FULL)")
	wp.Add("_pragma", "foreign_keys(1)")
	wp.Add("_pragma", "journal_size_limit(67108864)") // truncate the WAL to 64 MiB after checkpoints
	var err error
	if s.wdb, err = sql.Open("sqlite", dsn(s.path, wp)); err != nil {
		return err
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	ctx := context.Background()
	if s.wc, err = s.wdb.Conn(ctx); err != nil {
		return err
	}
	var mode string
	if err := s.wc.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("failed to read journal mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("journal mode is %q, not wal", mode)
	}
	if err := migrate(ctx, s.wc, len(migrations)); err != nil {
		return err
	}
	if err := s.w.prepare(ctx, s.wc); err != nil {
		return err
	}

	rp := url.Values{}
	rp.Add("_pragma", "busy_timeout("+ms+")")
	rp.Add("_pragma", "query_only(1)")
	if s.rdb, err = sql.Open("sqlite", dsn(s.path, rp)); err != nil {
		return err
	}
	s.rdb.SetMaxOpenConns(cfg.readConns)
	s.rdb.SetMaxIdleConns(cfg.readConns)
	return s.r.prepare(ctx, s.rdb)
}

// Close waits for queued Appends to commit and releases the database. Every
// later call returns ErrClosed; Close itself is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.isClosed.Store(true)
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	if err := s.closeDBs(); err != nil {
		return fmt.Errorf("sqlite: failed to close %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) closeDBs() error {
	var errs []error
	errs = append(errs, s.r.close(), s.w.close())
	if s.wc != nil {
		errs = append(errs, s.wc.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	return errors.Join(errs...)
}

// checkNames reports what is wrong with a namespace and repository name.
func checkNames(ns, repo string) error {
	switch {
	case repo == "":
		return errors.New("repository name is empty")
	case len(repo) > maxNameLength:
		return errors.New("repository name is longer than 256 bytes")
	case len(ns) > maxNameLength:
		return errors.New("namespace is longer than 256 bytes")
	}
	return nil
}

const maxNameLength = 256
