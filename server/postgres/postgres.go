package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lfsync/lfsync/server"
)

var (
	_ server.Store   = (*Store)(nil)
	_ server.Watcher = (*Store)(nil)
)

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("store is closed")

// Store is a server.Store and server.Watcher in one PostgreSQL database,
// safe to share between several server nodes.
type Store struct {
	pool     *pgxpool.Pool
	connCfg  *pgx.ConnConfig // for the notifier's and watchers' own connections
	poll     time.Duration
	maxGroup int // events per group commit

	ctx    context.Context // ends when the store closes
	cancel context.CancelFunc

	mu       sync.Mutex // guards closed and queues
	closed   bool
	queues   map[repoKey]*queue
	repos    map[repoKey]bool // repositories whose row exists
	commits  sync.WaitGroup   // committer goroutines
	watchers sync.WaitGroup   // Watch goroutines

	notes *notifier

	groups  atomic.Int64 // transactions committed
	appends atomic.Int64 // Append requests committed
	events  atomic.Int64 // new events committed
}

// Stats counts the group commits of this Store since Open.
type Stats struct {
	// Commits is the number of group commits that stored new events.
	Commits int64 `json:"commits"`
	// Appends is the number of Append requests they answered.
	Appends int64 `json:"appends"`
	// Events is the number of new events stored.
	Events int64 `json:"events"`
}

// Stats returns the group-commit counters; Events/Commits is the average
// group size.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.groups.Load(), Appends: s.appends.Load(), Events: s.events.Load()}
}

// Option configures Open.
type Option func(*config)

type config struct {
	poll     time.Duration
	maxGroup int
}

// WithPollInterval sets how often Watch reads the last sequences of all
// repositories to catch lost notifications (default 1s).
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.poll = d
		}
	}
}

// WithGroupLimit bounds the events one group commit stores (default
// 10000); a single larger Append still commits alone.
func WithGroupLimit(events int) Option {
	return func(c *config) {
		if events > 0 {
			c.maxGroup = events
		}
	}
}

// Open connects to the database at dsn ("postgres://user@host:port/db?..."
// or a key=value string, as pgx takes it) and migrates its schema to the
// current version.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg := config{poll: time.Second, maxGroup: 10000}
	for _, o := range opts {
		o(&cfg)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: failed to parse the database URL: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		pcfg.MaxConns = int32(max(8, 4*runtime.GOMAXPROCS(0)))
	}
	where := pcfg.ConnConfig.Host + "/" + pcfg.ConnConfig.Database
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: failed to open %s: %w", where, err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: failed to open %s: %w", where, err)
	}
	s := &Store{
		pool:     pool,
		connCfg:  pcfg.ConnConfig,
		poll:     cfg.poll,
		maxGroup: cfg.maxGroup,
		queues:   map[repoKey]*queue{},
		repos:    map[repoKey]bool{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.notes = newNotifier(pcfg.ConnConfig)
	go s.notes.run()
	return s, nil
}

// Close waits for queued Appends to commit, stops the watchers and closes
// the connections. Every later call returns ErrClosed; Close itself is
// idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.commits.Wait() // queued Appends commit
	s.notes.stop()   // and their notifications go out
	s.cancel()       // then the watchers end
	s.watchers.Wait()
	s.pool.Close()
	return nil
}

// isClosed reports whether Close has been called.
func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// repoKey names a repository.
type repoKey struct{ ns, name string }

const maxNameLength = 256

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
	if err := checkText("namespace", ns); err != nil {
		return err
	}
	return checkText("repository name", repo)
}

// checkText reports why s cannot be stored in a PostgreSQL text column:
// invalid UTF-8 or a NUL byte.
func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s holds a NUL byte", what)
	}
	return nil
}
