package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// eventCols are the columns scanEvent reads, from lfsync_events aliased e.
const eventCols = `e.seq, e.id, e.data_id, e.op, e.created_at_ms, e.data, e.meta`

// Read queries.
const (
	latestSQL = `SELECT ` + eventCols + ` FROM lfsync_repos r
		JOIN lfsync_docs d ON d.repo_id = r.id
		JOIN lfsync_events e ON e.repo_id = d.repo_id AND e.seq = d.seq
		WHERE r.ns = $1 AND r.name = $2 AND d.seq > $3
		ORDER BY d.seq LIMIT $4`
	latestSinceSQL = `SELECT ` + eventCols + ` FROM lfsync_repos r
		JOIN lfsync_docs d ON d.repo_id = r.id
		JOIN lfsync_events e ON e.repo_id = d.repo_id AND e.seq = d.seq
		WHERE r.ns = $1 AND r.name = $2 AND d.created_at_ms > $3
		ORDER BY d.created_at_ms, d.seq LIMIT $4`
	// rangeSQL bounds the sequences from above too ($4 = $3 + limit + 1;
	// sequences are dense), so that no plan reads more than a page, even
	// one the planner chose from stale statistics.
	rangeSQL = `SELECT ` + eventCols + ` FROM lfsync_repos r
		JOIN lfsync_events e ON e.repo_id = r.id
		WHERE r.ns = $1 AND r.name = $2 AND e.seq > $3 AND e.seq <= $4
		ORDER BY e.seq LIMIT $5`
	byIDSQL = `SELECT ` + eventCols + ` FROM lfsync_repos r
		JOIN lfsync_events e ON e.repo_id = r.id
		WHERE r.ns = $1 AND r.name = $2 AND e.id = $3`
	byDataIDSQL = `SELECT ` + eventCols + ` FROM lfsync_repos r
		JOIN lfsync_docs d ON d.repo_id = r.id
		JOIN lfsync_events e ON e.repo_id = d.repo_id AND e.seq = d.seq
		WHERE r.ns = $1 AND r.name = $2 AND d.data_id = $3`
	lastSeqSQL = `SELECT last_seq FROM lfsync_repos WHERE ns = $1 AND name = $2`
	reposSQL   = `SELECT name, last_seq, events FROM lfsync_repos WHERE ns = $1 ORDER BY name COLLATE "C"`
)

// scanEvent reads one row of eventCols.
func scanEvent(row pgx.Row) (protocol.Event, error) {
	var (
		e          protocol.Event
		op         int16
		ms         int64
		data, meta []byte
	)
	if err := row.Scan(&e.ServerSequence, &e.ID, &e.DataID, &op, &ms, &data, &meta); err != nil {
		return protocol.Event{}, err
	}
	e.Operation = protocol.Operation(op)
	e.Data, e.Meta = data, meta
	e.CreatedAt = time.UnixMilli(ms).UTC()
	return e, nil
}

// checkRead reports why a read cannot run.
func (s *Store) checkRead(ns, repo string, limit int, needLimit bool) error {
	if s.isClosed() {
		return ErrClosed
	}
	if err := checkNames(ns, repo); err != nil {
		return err
	}
	if needLimit && limit < 1 {
		return fmt.Errorf("limit %d is less than 1", limit)
	}
	return nil
}

// readAttempts bounds how often a read is tried when its connection was
// dropped.
const readAttempts = 3

// retry runs read until it succeeds, fails for a reason other than a
// dropped connection, or has been tried readAttempts times.
func (s *Store) retry(ctx context.Context, read func() error) error {
	for attempt := 1; ; attempt++ {
		err := read()
		if err == nil || attempt == readAttempts || ctx.Err() != nil || !transient(err) || errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		s.dropped(err)
	}
}

// query runs a paged event query and returns up to limit+1 events: the
// extra one tells whether more remain.
func (s *Store) query(ctx context.Context, sql string, limit int, args ...any) (events []protocol.Event, err error) {
	err = s.retry(ctx, func() error {
		events, err = s.queryOnce(ctx, sql, limit, args...)
		return err
	})
	return events, err
}

// queryOnce is one attempt of query.
func (s *Store) queryOnce(ctx context.Context, sql string, limit int, args ...any) ([]protocol.Event, error) {
	rows, err := s.pool.Query(ctx, sql, append(args, limit+1)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	events := make([]protocol.Event, 0, min(limit+1, 1024))
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// page cuts the result of query to limit and reports whether more remain.
func page(events []protocol.Event, limit int) ([]protocol.Event, bool) {
	if len(events) > limit {
		return events[:limit], true
	}
	return events, false
}

// Latest returns the latest event of each document changed after sequence
// after, ascending by sequence; see server.Store.
func (s *Store) Latest(ctx context.Context, ns, repo string, after int64, limit int) ([]protocol.Event, bool, error) {
	if err := s.checkRead(ns, repo, limit, true); err != nil {
		return nil, false, fmt.Errorf("postgres: failed to read latest events of %s/%s: %w", ns, repo, err)
	}
	events, err := s.query(ctx, latestSQL, limit, ns, repo, after)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: failed to read latest events of %s/%s: %w", ns, repo, err)
	}
	events, more := page(events, limit)
	return events, more, nil
}

// LatestSince returns the latest event of each document whose latest event
// was created after since, ascending by creation time then sequence. A page
// cut by limit does not end inside a millisecond that continues on the next
// page, unless the whole page is that one millisecond, so paging with since
// set to the last event's CreatedAt misses nothing.
func (s *Store) LatestSince(ctx context.Context, ns, repo string, since time.Time, limit int) ([]protocol.Event, bool, error) {
	if err := s.checkRead(ns, repo, limit, true); err != nil {
		return nil, false, fmt.Errorf("postgres: failed to read latest events of %s/%s since %s: %w", ns, repo, protocol.FormatTime(since), err)
	}
	events, err := s.query(ctx, latestSinceSQL, limit, ns, repo, since.UnixMilli())
	if err != nil {
		return nil, false, fmt.Errorf("postgres: failed to read latest events of %s/%s since %s: %w", ns, repo, protocol.FormatTime(since), err)
	}
	if len(events) <= limit {
		return events, false, nil
	}
	// The page must not end inside the millisecond of the first event
	// left out.
	next := events[limit].CreatedAt
	n := limit
	for n > 0 && events[n-1].CreatedAt.Equal(next) {
		n--
	}
	if n == 0 {
		n = limit
	}
	return events[:n], true, nil
}

// Range returns events after sequence after, ascending and unreduced; see
// server.Store.
func (s *Store) Range(ctx context.Context, ns, repo string, after int64, limit int) ([]protocol.Event, bool, error) {
	if err := s.checkRead(ns, repo, limit, true); err != nil {
		return nil, false, fmt.Errorf("postgres: failed to read events of %s/%s: %w", ns, repo, err)
	}
	// No event has a sequence below 1, and the page of limit+1 events
	// after a cursor is exactly the next limit+1 sequences.
	after = max(after, 0)
	upper := after + int64(limit) + 1
	if upper < after {
		upper = math.MaxInt64
	}
	events, err := s.query(ctx, rangeSQL, limit, ns, repo, after, upper)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: failed to read events of %s/%s: %w", ns, repo, err)
	}
	events, more := page(events, limit)
	return events, more, nil
}

// Event returns one event by id, or an error wrapping server.ErrNotFound.
func (s *Store) Event(ctx context.Context, ns, repo, id string) (protocol.Event, error) {
	if err := s.checkRead(ns, repo, 0, false); err != nil {
		return protocol.Event{}, fmt.Errorf("postgres: failed to read event %s of %s/%s: %w", id, ns, repo, err)
	}
	var e protocol.Event
	err := s.retry(ctx, func() (err error) {
		e, err = scanEvent(s.pool.QueryRow(ctx, byIDSQL, ns, repo, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		err = server.ErrNotFound
	}
	if err != nil {
		return protocol.Event{}, fmt.Errorf("postgres: failed to read event %s of %s/%s: %w", id, ns, repo, err)
	}
	return e, nil
}

// ByDataID returns the latest event of one document, or an error wrapping
// server.ErrNotFound.
func (s *Store) ByDataID(ctx context.Context, ns, repo, dataID string) (protocol.Event, error) {
	if err := s.checkRead(ns, repo, 0, false); err != nil {
		return protocol.Event{}, fmt.Errorf("postgres: failed to read document %s of %s/%s: %w", dataID, ns, repo, err)
	}
	var e protocol.Event
	err := s.retry(ctx, func() (err error) {
		e, err = scanEvent(s.pool.QueryRow(ctx, byDataIDSQL, ns, repo, dataID))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		err = server.ErrNotFound
	}
	if err != nil {
		return protocol.Event{}, fmt.Errorf("postgres: failed to read document %s of %s/%s: %w", dataID, ns, repo, err)
	}
	return e, nil
}

// LastSequence returns a repository's highest serverSequence, 0 if it has
// none.
func (s *Store) LastSequence(ctx context.Context, ns, repo string) (int64, error) {
	if err := s.checkRead(ns, repo, 0, false); err != nil {
		return 0, fmt.Errorf("postgres: failed to read last sequence of %s/%s: %w", ns, repo, err)
	}
	var seq int64
	err := s.retry(ctx, func() error { return s.pool.QueryRow(ctx, lastSeqSQL, ns, repo).Scan(&seq) })
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: failed to read last sequence of %s/%s: %w", ns, repo, err)
	}
	return seq, nil
}

// Repositories lists a namespace's repositories by name (byte order).
func (s *Store) Repositories(ctx context.Context, ns string) ([]server.RepoInfo, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("postgres: failed to list repositories of %s: %w", ns, ErrClosed)
	}
	var repos []server.RepoInfo
	err := s.retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, reposSQL, ns)
		if err != nil {
			return err
		}
		repos = []server.RepoInfo{}
		var r server.RepoInfo
		_, err = pgx.ForEachRow(rows, []any{&r.Name, &r.LastSequence, &r.Events}, func() error {
			repos = append(repos, r)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: failed to list repositories of %s: %w", ns, err)
	}
	return repos, nil
}
