package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// eventColumns are the columns scanEvent reads, from events aliased e.
const eventColumns = `e.seq, e.id, e.data_id, e.op, e.created_at_ms, e.data, e.meta`

// readStmts are the read pool's prepared statements.
type readStmts struct {
	latest, latestSince, rng, byID, byDataID, lastSeq, repos *sql.Stmt
}

// stmtQuery is one statement to prepare and where to keep it.
type stmtQuery struct {
	dst   **sql.Stmt
	query string
}

// queries lists the read statements.
func (r *readStmts) queries() []stmtQuery {
	return []stmtQuery{
		{&r.latest, `SELECT ` + eventColumns + ` FROM repos r
			JOIN docs d ON d.repo_id = r.id
			JOIN events e ON e.repo_id = d.repo_id AND e.seq = d.seq
			WHERE r.ns = ? AND r.name = ? AND d.seq > ?
			ORDER BY d.seq LIMIT ?`},
		{&r.latestSince, `SELECT ` + eventColumns + ` FROM repos r
			JOIN docs d ON d.repo_id = r.id
			JOIN events e ON e.repo_id = d.repo_id AND e.seq = d.seq
			WHERE r.ns = ? AND r.name = ? AND d.created_at_ms > ?
			ORDER BY d.created_at_ms, d.seq LIMIT ?`},
		{&r.rng, `SELECT ` + eventColumns + ` FROM repos r
			JOIN events e ON e.repo_id = r.id
			WHERE r.ns = ? AND r.name = ? AND e.seq > ?
			ORDER BY e.seq LIMIT ?`},
		{&r.byID, `SELECT ` + eventColumns + ` FROM repos r
			JOIN events e ON e.repo_id = r.id
			WHERE r.ns = ? AND r.name = ? AND e.id = ?`},
		{&r.byDataID, `SELECT ` + eventColumns + ` FROM repos r
			JOIN docs d ON d.repo_id = r.id
			JOIN events e ON e.repo_id = d.repo_id AND e.seq = d.seq
			WHERE r.ns = ? AND r.name = ? AND d.data_id = ?`},
		{&r.lastSeq, `SELECT last_seq FROM repos WHERE ns = ? AND name = ?`},
		{&r.repos, `SELECT name, last_seq, events FROM repos WHERE ns = ? ORDER BY name`},
	}
}

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range r.queries() {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("failed to prepare %q: %w", p.query, err)
		}
		*p.dst = st
	}
	return nil
}

func (r *readStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{r.latest, r.latestSince, r.rng, r.byID, r.byDataID, r.lastSeq, r.repos} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// scanEvent reads one row of eventColumns.
func scanEvent(row interface{ Scan(...any) error }) (protocol.Event, error) {
	var (
		e          protocol.Event
		op, ms     int64
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
	if s.isClosed.Load() {
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

// query runs a paged event query and returns up to limit+1 events: the
// extra one tells whether more remain.
func query(ctx context.Context, st *sql.Stmt, limit int, args ...any) ([]protocol.Event, error) {
	rows, err := st.QueryContext(ctx, append(args, limit+1)...)
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
		return nil, false, fmt.Errorf("sqlite: failed to read latest events of %s/%s: %w", ns, repo, err)
	}
	events, err := query(ctx, s.r.latest, limit, ns, repo, after)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: failed to read latest events of %s/%s: %w", ns, repo, err)
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
		return nil, false, fmt.Errorf("sqlite: failed to read latest events of %s/%s since %s: %w", ns, repo, protocol.FormatTime(since), err)
	}
	events, err := query(ctx, s.r.latestSince, limit, ns, repo, since.UnixMilli())
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: failed to read latest events of %s/%s since %s: %w", ns, repo, protocol.FormatTime(since), err)
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
		return nil, false, fmt.Errorf("sqlite: failed to read events of %s/%s: %w", ns, repo, err)
	}
	events, err := query(ctx, s.r.rng, limit, ns, repo, after)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: failed to read events of %s/%s: %w", ns, repo, err)
	}
	events, more := page(events, limit)
	return events, more, nil
}

// Event returns one event by id, or an error wrapping server.ErrNotFound.
func (s *Store) Event(ctx context.Context, ns, repo, id string) (protocol.Event, error) {
	if err := s.checkRead(ns, repo, 0, false); err != nil {
		return protocol.Event{}, fmt.Errorf("sqlite: failed to read event %s of %s/%s: %w", id, ns, repo, err)
	}
	e, err := scanEvent(s.r.byID.QueryRowContext(ctx, ns, repo, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = server.ErrNotFound
	}
	if err != nil {
		return protocol.Event{}, fmt.Errorf("sqlite: failed to read event %s of %s/%s: %w", id, ns, repo, err)
	}
	return e, nil
}

// ByDataID returns the latest event of one document, or an error wrapping
// server.ErrNotFound.
func (s *Store) ByDataID(ctx context.Context, ns, repo, dataID string) (protocol.Event, error) {
	if err := s.checkRead(ns, repo, 0, false); err != nil {
		return protocol.Event{}, fmt.Errorf("sqlite: failed to read document %s of %s/%s: %w", dataID, ns, repo, err)
	}
	e, err := scanEvent(s.r.byDataID.QueryRowContext(ctx, ns, repo, dataID))
	if errors.Is(err, sql.ErrNoRows) {
		err = server.ErrNotFound
	}
	if err != nil {
		return protocol.Event{}, fmt.Errorf("sqlite: failed to read document %s of %s/%s: %w", dataID, ns, repo, err)
	}
	return e, nil
}

// LastSequence returns a repository's highest serverSequence, 0 if it has
// none.
func (s *Store) LastSequence(ctx context.Context, ns, repo string) (int64, error) {
	if err := s.checkRead(ns, repo, 0, false); err != nil {
		return 0, fmt.Errorf("sqlite: failed to read last sequence of %s/%s: %w", ns, repo, err)
	}
	var seq int64
	err := s.r.lastSeq.QueryRowContext(ctx, ns, repo).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: failed to read last sequence of %s/%s: %w", ns, repo, err)
	}
	return seq, nil
}

// Repositories lists a namespace's repositories by name.
func (s *Store) Repositories(ctx context.Context, ns string) ([]server.RepoInfo, error) {
	if s.isClosed.Load() {
		return nil, fmt.Errorf("sqlite: failed to list repositories of %s: %w", ns, ErrClosed)
	}
	rows, err := s.r.repos.QueryContext(ctx, ns)
	if err != nil {
		return nil, fmt.Errorf("sqlite: failed to list repositories of %s: %w", ns, err)
	}
	defer rows.Close()
	repos := []server.RepoInfo{}
	for rows.Next() {
		var r server.RepoInfo
		if err := rows.Scan(&r.Name, &r.LastSequence, &r.Events); err != nil {
			return nil, fmt.Errorf("sqlite: failed to list repositories of %s: %w", ns, err)
		}
		repos = append(repos, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: failed to list repositories of %s: %w", ns, err)
	}
	return repos, nil
}
