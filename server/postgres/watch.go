package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lfsync/lfsync/server"
)

const lastSeqsSQL = `SELECT ns, name, last_seq FROM lfsync_repos WHERE last_seq > 0`

// watch is one Watch call's state.
type watch struct {
	s       *Store
	out     chan server.Advance
	pollNow chan struct{} // buffered 1

	mu   sync.Mutex
	seen map[repoKey]int64 // the highest sequence reported or seen at the start
}

// Watch reports appends made through any node (this one included) until
// ctx ends or the store closes, then closes the channel. It listens for
// notifications on a connection of its own, reconnecting with backoff when
// it drops; after every (re)connect and every poll interval it reads the
// last sequence of every repository and reports those that grew, so a
// lost notification delays an advance by at most the interval. Each
// advance reports a sequence higher than any reported before for its
// repository. Watch fails only on a closed store.
func (s *Store) Watch(ctx context.Context) (<-chan server.Advance, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("postgres: failed to watch: %w", ErrClosed)
	}
	s.watchers.Add(1)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stopAfter := context.AfterFunc(s.ctx, cancel)
	w := &watch{
		s:       s,
		out:     make(chan server.Advance, 256),
		pollNow: make(chan struct{}, 1),
		seen:    map[repoKey]int64{},
	}
	// What exists now is not news. When this read fails, the first poll
	// that succeeds reports every repository instead.
	bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
	_ = w.poll(bctx, false)
	bcancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		w.listen(ctx)
	}()
	go func() {
		defer wg.Done()
		w.polls(ctx)
	}()
	go func() {
		wg.Wait()
		stopAfter()
		cancel()
		close(w.out)
		s.watchers.Done()
	}()
	return w.out, nil
}

// appName returns the application_name of a connection with a role: the
// DSN's application_name (default "lfsync") followed by the role, so that
// pg_stat_activity tells which node holds which connection.
func appName(cfg *pgx.ConnConfig, role string) string {
	base := cfg.RuntimeParams["application_name"]
	if base == "" {
		base = "lfsync"
	}
	return base + " " + role
}

// listen receives notifications, reconnecting with backoff.
func (w *watch) listen(ctx context.Context) {
	cfg := w.s.connCfg.Copy()
	cfg.RuntimeParams["application_name"] = appName(w.s.connCfg, "watcher")
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+channel); err != nil {
				_ = conn.Close(context.Background())
			}
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		// Catch up on what was appended while no connection listened.
		select {
		case w.pollNow <- struct{}{}:
		default:
		}
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				break
			}
			var p payload
			if json.Unmarshal([]byte(n.Payload), &p) == nil {
				w.deliver(ctx, repoKey{p.NS, p.Repo}, p.Seq)
			}
		}
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(cctx)
		ccancel()
	}
}

// polls reads the last sequences every poll interval and when listen asks.
func (w *watch) polls(ctx context.Context) {
	t := time.NewTicker(w.s.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.pollNow:
		}
		_ = w.poll(ctx, true) // a failed poll is retried at the next tick
	}
}

// poll reads the last sequence of every repository and, with report,
// delivers those that grew; without, it only records them.
func (w *watch) poll(ctx context.Context, report bool) error {
	rows, err := w.s.pool.Query(ctx, lastSeqsSQL)
	if err != nil {
		return err
	}
	var grown []server.Advance
	var a server.Advance
	_, err = pgx.ForEachRow(rows, []any{&a.Namespace, &a.Repository, &a.Sequence}, func() error {
		grown = append(grown, a)
		return nil
	})
	if err != nil {
		return err
	}
	for _, a := range grown {
		key := repoKey{a.Namespace, a.Repository}
		if report {
			w.deliver(ctx, key, a.Sequence)
			continue
		}
		w.mu.Lock()
		w.seen[key] = max(w.seen[key], a.Sequence)
		w.mu.Unlock()
	}
	return nil
}

// deliver reports that a repository grew to seq, unless a report as high
// went out before.
func (w *watch) deliver(ctx context.Context, key repoKey, seq int64) {
	w.mu.Lock()
	if seq <= w.seen[key] {
		w.mu.Unlock()
		return
	}
	w.seen[key] = seq
	w.mu.Unlock()
	select {
	case w.out <- server.Advance{Namespace: key.ns, Repository: key.name, Sequence: seq}:
	case <-ctx.Done():
	}
}
