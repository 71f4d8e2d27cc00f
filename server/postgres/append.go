package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// request is one Append waiting for its repository's group commit.
type request struct {
	ctx    context.Context
	events []protocol.Event
	done   chan result // buffered: the committer never blocks on it
}

type result struct {
	res []server.Appended
	err error
}

// queue holds one repository's requests that wait for a group commit; it
// exists while a committer goroutine serves the repository.
type queue struct {
	reqs []*request
	wake chan struct{} // buffered 1: a request was queued
}

const (
	// attempts bounds how often a group commit is tried when it fails in a
	// way that provably stored nothing (a dropped connection).
	attempts = 5
	// txTimeout bounds a group commit's work before COMMIT.
	txTimeout = time.Minute
	// commitTimeout bounds waiting for COMMIT and for finding out its
	// outcome when the connection died during it.
	commitTimeout = time.Minute
)

// SQL of a group commit.
const (
	xidSQL     = `SELECT txid_current()`
	newRepoSQL = `INSERT INTO lfsync_repos (ns, name) VALUES ($1, $2)
		ON CONFLICT (ns, name) DO NOTHING`
	// lockRepoSQL runs as a statement of its own, before appendSQL: in
	// READ COMMITTED every statement sees what was committed when it
	// started, so appendSQL, started once the lock is held, sees every
	// event of the transactions that held it before.
	lockRepoSQL = `SELECT id FROM lfsync_repos WHERE ns = $1 AND name = $2 FOR UPDATE`
	// appendSQL stores a group's events (in input order, ord) and returns,
	// for each, its sequence and whether this statement stored it: an id
	// already stored keeps its sequence; the first occurrence of a new id
	// gets the next sequence, later occurrences share it.
	appendSQL = `WITH r AS (
		SELECT id, last_seq FROM lfsync_repos WHERE ns = $1 AND name = $2
	), input AS (
		SELECT * FROM unnest($3::text[], $4::text[], $5::smallint[], $6::bigint[], $7::bytea[], $8::bytea[])
			WITH ORDINALITY AS t (id, data_id, op, ms, data, meta, ord)
	), stored AS (
		-- A subquery per distinct input id: one probe of the (repo_id, id)
		-- index each, whatever the planner believes of the log's size.
		SELECT id, seq FROM (
			SELECT q.id, (SELECT e.seq FROM lfsync_events e WHERE e.repo_id = (SELECT id FROM r) AND e.id = q.id) AS seq
			FROM (SELECT DISTINCT id FROM input) q
		) x WHERE seq IS NOT NULL
	), firsts AS (
		SELECT DISTINCT ON (i.id) i.* FROM input i
		WHERE NOT EXISTS (SELECT 1 FROM stored s WHERE s.id = i.id)
		ORDER BY i.id, i.ord
	), fresh AS (
		SELECT f.*, r.id AS repo_id, r.last_seq + row_number() OVER (ORDER BY f.ord) AS seq
		FROM firsts f CROSS JOIN r
	), ins AS (
		INSERT INTO lfsync_events (repo_id, seq, id, data_id, op, created_at_ms, data, meta)
		SELECT repo_id, seq, id, data_id, op, ms, data, meta FROM fresh
	), docs AS (
		INSERT INTO lfsync_docs (repo_id, data_id, seq, created_at_ms)
		SELECT DISTINCT ON (data_id) repo_id, data_id, seq, ms FROM fresh ORDER BY data_id, seq DESC
		ON CONFLICT (repo_id, data_id) DO UPDATE SET seq = excluded.seq, created_at_ms = excluded.created_at_ms
	), bump AS (
		UPDATE lfsync_repos p SET last_seq = p.last_seq + n.c, events = p.events + n.c
		FROM (SELECT count(*) AS c FROM fresh) n
		WHERE p.id = (SELECT id FROM r) AND n.c > 0
	)
	SELECT coalesce(f.seq, s.seq), coalesce(f.ord = i.ord, false)
	FROM input i LEFT JOIN fresh f ON f.id = i.id LEFT JOIN stored s ON s.id = i.id
	ORDER BY i.ord`
	statusSQL = `SELECT txid_status($1)`
)

// Append stores events in one repository, all or nothing; see
// server.Store. Concurrent Appends to one repository are committed together
// in one transaction. When ctx ends before the request's group is sent to
// the server, Append stores nothing and returns ctx's error; a request
// already sent commits with its group. Either way nothing is written after
// Append returns.
func (s *Store) Append(ctx context.Context, ns, repo string, events []protocol.Event) ([]server.Appended, error) {
	if err := checkAppend(ns, repo, events); err != nil {
		return nil, fmt.Errorf("postgres: failed to append to %s/%s: %w", ns, repo, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("postgres: failed to append to %s/%s: %w", ns, repo, err)
	}
	req := &request{ctx: ctx, events: events, done: make(chan result, 1)}
	key := repoKey{ns, repo}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("postgres: failed to append to %s/%s: %w", ns, repo, ErrClosed)
	}
	if len(events) == 0 {
		s.mu.Unlock()
		return []server.Appended{}, nil
	}
	q, ok := s.queues[key]
	if !ok {
		q = &queue{wake: make(chan struct{}, 1)}
		s.queues[key] = q
		s.commits.Add(1)
		go s.drain(key, q)
	}
	q.reqs = append(q.reqs, req)
	s.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	// Wait for the answer even when ctx ends: once Append returns, its
	// request is settled, never written later.
	r := <-req.done
	if r.err != nil {
		return nil, fmt.Errorf("postgres: failed to append to %s/%s: %w", ns, repo, r.err)
	}
	return r.res, nil
}

// checkAppend reports what is wrong with an Append's input.
func checkAppend(ns, repo string, events []protocol.Event) error {
	if err := checkNames(ns, repo); err != nil {
		return err
	}
	for i, e := range events {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		if err := checkText("event id", e.ID); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		if err := checkText("document id", e.DataID); err != nil {
			return fmt.Errorf("event %d (%s): %w", i, e.ID, err)
		}
		if len(e.Data) > 0 && !json.Valid(e.Data) {
			return fmt.Errorf("event %d (%s): data is not valid JSON", i, e.ID)
		}
		if len(e.Meta) > 0 && !json.Valid(e.Meta) {
			return fmt.Errorf("event %d (%s): meta is not valid JSON", i, e.ID)
		}
	}
	return nil
}

// inFlight is how many group commits of one repository a Store runs at
// once. They take turns at the repository's lock; with two, the next
// group's first round trip and its wait for the lock overlap the current
// group's commit, so the lock is not idle between groups.
const inFlight = 2

// drain is a repository's committer: it commits the queued requests in
// groups, up to inFlight at once, until none is left and none is in
// flight, then removes the queue. A group is taken only when a slot is
// free, so requests arriving meanwhile join the next group.
func (s *Store) drain(key repoKey, q *queue) {
	defer s.commits.Done()
	active := 0
	done := make(chan struct{}, inFlight)
	for {
		if active == inFlight {
			<-done
			active--
		}
		s.mu.Lock()
		if len(q.reqs) == 0 {
			if active == 0 {
				delete(s.queues, key)
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			select {
			case <-done:
				active--
			case <-q.wake:
			}
			continue
		}
		n, events := 0, 0
		for n < len(q.reqs) && (n == 0 || events+len(q.reqs[n].events) <= s.maxGroup) {
			events += len(q.reqs[n].events)
			n++
		}
		group := q.reqs[:n:n]
		q.reqs = q.reqs[n:]
		s.mu.Unlock()
		active++
		go func() {
			s.commit(key, group)
			done <- struct{}{}
		}()
	}
}

// commit stores a group of requests to one repository in one transaction
// and answers each of them.
func (s *Store) commit(key repoKey, group []*request) {
	var (
		results []result
		last    int64
		err     error
	)
	for attempt := 1; ; attempt++ {
		var retry bool
		results, last, retry, err = s.try(key, group)
		if err == nil || !retry || attempt == attempts {
			break
		}
		s.dropped(err)
		time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
	}
	for i, r := range group {
		if err != nil {
			r.done <- result{err: err}
		} else {
			r.done <- results[i]
		}
	}
	if err == nil && last > 0 {
		s.notes.add(key, last)
	}
}

// try runs one group commit in two round trips: the first begins the
// transaction and learns its id; the second locks the repository's row,
// stores the events and commits, so the lock is held only while the server
// works, never across a round trip. It returns each request's result and
// the repository's new last sequence (0 when nothing new was stored), or
// an error, with retry set when the error provably stored nothing and
// another attempt may succeed.
func (s *Store) try(key repoKey, group []*request) (results []result, last int64, retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), txTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, 0, transient(err), fmt.Errorf("failed to get a connection: %w", err)
	}
	// A connection left inside a transaction is closed on release, which
	// rolls the transaction back.
	defer conn.Release()

	var xid int64
	err = func() error {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue(xidSQL)
		br := conn.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		if err := br.QueryRow().Scan(&xid); err != nil {
			return err
		}
		return br.Close()
	}()
	if err != nil {
		return nil, 0, transient(err), fmt.Errorf("failed to begin a transaction: %w", err)
	}

	// Requests whose caller gave up by now are answered without being
	// stored; the others are stored together.
	results = make([]result, len(group))
	var cols eventColumns
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		for _, e := range r.events {
			cols.add(e)
		}
	}
	if len(cols.id) == 0 {
		return results, 0, false, nil // the deferred release rolls back
	}

	known := s.known(key)
	b := &pgx.Batch{}
	if !known {
		b.Queue(newRepoSQL, key.ns, key.name)
	}
	b.Queue(lockRepoSQL, key.ns, key.name)
	b.Queue(appendSQL, key.ns, key.name, cols.id, cols.dataID, cols.op, cols.ms, cols.data, cols.meta)
	b.Queue("COMMIT")
	// The commit is not abandoned when a request's caller gives up: once
	// COMMIT may have been sent, only its outcome settles the requests.
	cctx, ccancel := context.WithTimeout(context.Background(), commitTimeout)
	defer ccancel()
	seqs := make([]int64, 0, len(cols.id))
	news := make([]bool, 0, len(cols.id))
	var tag pgconn.CommandTag
	err = func() error {
		br := conn.SendBatch(cctx, b)
		defer br.Close()
		if !known {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("failed to create the repository: %w", err)
			}
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("failed to lock the repository: %w", err)
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("failed to insert events: %w", err)
		}
		var (
			seq   int64
			fresh bool
		)
		if _, err := pgx.ForEachRow(rows, []any{&seq, &fresh}, func() error {
			seqs = append(seqs, seq)
			news = append(news, fresh)
			return nil
		}); err != nil {
			return fmt.Errorf("failed to insert events: %w", err)
		}
		if tag, err = br.Exec(); err != nil {
			return fmt.Errorf("failed to commit: %w", err)
		}
		return br.Close()
	}()
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("failed to commit: the transaction was rolled back (%s)", tag)
	}
	if err == nil && len(seqs) != len(cols.id) {
		return nil, 0, false, fmt.Errorf("the append returned %d sequences for %d events", len(seqs), len(cols.id))
	}
	if err != nil && !ambiguous(err) {
		return nil, 0, false, err
	}
	if err != nil {
		// The connection died while COMMIT may have been under way: ask
		// the server what became of the transaction.
		committed, rerr := s.outcome(cctx, xid)
		if rerr != nil {
			return nil, 0, false, fmt.Errorf("%w, and its outcome is unknown: %v; pushing the events again is safe", err, rerr)
		}
		if !committed {
			return nil, 0, true, err
		}
		// Committed, but its answer was lost: read back what it stored.
		if seqs, news, err = s.committed(cctx, key, cols.id, xid); err != nil {
			return nil, 0, false, fmt.Errorf("the append committed but reading its sequences back failed: %w; pushing the events again is safe", err)
		}
	}
	if !known {
		s.remember(key)
	}

	var stored int64
	k := 0
	for i, r := range group {
		if results[i].err != nil {
			continue
		}
		res := make([]server.Appended, len(r.events))
		for j, e := range r.events {
			res[j] = server.Appended{ID: e.ID, Sequence: seqs[k], New: news[k]}
			if news[k] {
				stored++
				last = max(last, seqs[k])
			}
			k++
		}
		results[i].res = res
	}
	if stored > 0 {
		s.groups.Add(1)
		s.events.Add(stored)
	}
	for _, r := range results {
		if r.err == nil {
			s.appends.Add(1)
		}
	}
	return results, last, false, nil
}

// committed reads back the sequences of a group's events (ids, in input
// order) after transaction xid committed but its answer was lost. An event
// is new when xid stored it (its row's xmin) and this is its first
// occurrence in the group.
func (s *Store) committed(ctx context.Context, key repoKey, ids []string, xid int64) ([]int64, []bool, error) {
	for {
		seqs, news, err := s.readBack(ctx, key, ids, xid)
		if err == nil || !transient(err) || errors.Is(err, errNotStored) || ctx.Err() != nil {
			return seqs, news, err
		}
		s.dropped(err) // the server may be restarting; ask again
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errNotStored says that an event of a committed group is not stored.
var errNotStored = errors.New("not stored")

// readBack is one attempt of committed.
func (s *Store) readBack(ctx context.Context, key repoKey, ids []string, xid int64) ([]int64, []bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT q.id, e.seq, e.xmin::text::bigint = ($4::bigint % 4294967296)
		FROM lfsync_repos r, (SELECT DISTINCT unnest($3::text[]) AS id) q,
			LATERAL (SELECT seq, xmin FROM lfsync_events WHERE repo_id = r.id AND id = q.id OFFSET 0) e
		WHERE r.ns = $1 AND r.name = $2`, key.ns, key.name, ids, xid)
	if err != nil {
		return nil, nil, err
	}
	type row struct {
		seq  int64
		mine bool
	}
	found := map[string]row{}
	var (
		id string
		r  row
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &r.seq, &r.mine}, func() error { found[id] = r; return nil }); err != nil {
		return nil, nil, err
	}
	seqs := make([]int64, len(ids))
	news := make([]bool, len(ids))
	for i, id := range ids {
		r, ok := found[id]
		if !ok {
			return nil, nil, fmt.Errorf("event %s: %w", id, errNotStored)
		}
		seqs[i] = r.seq
		news[i] = r.mine
		found[id] = row{seq: r.seq} // later occurrences are not new
	}
	return seqs, news, nil
}

// eventColumns are a group's events as column arrays for appendSQL.
type eventColumns struct {
	ms         []int64
	id, dataID []string
	op         []int16
	data, meta [][]byte
}

// add appends one event.
func (c *eventColumns) add(e protocol.Event) {
	c.ms = append(c.ms, e.CreatedAt.UnixMilli())
	c.id = append(c.id, e.ID)
	c.dataID = append(c.dataID, e.DataID)
	c.op = append(c.op, int16(e.Operation))
	c.data = append(c.data, nilIfEmpty(e.Data))
	c.meta = append(c.meta, nilIfEmpty(e.Meta))
}

// nilIfEmpty returns b, or nil (stored as NULL) when it is empty.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// outcome finds out whether transaction xid committed, waiting while the
// server still has it in progress (its connection died but the backend
// has not noticed yet).
func (s *Store) outcome(ctx context.Context, xid int64) (bool, error) {
	for {
		var status *string
		err := s.pool.QueryRow(ctx, statusSQL, xid).Scan(&status)
		switch {
		case err != nil && ctx.Err() != nil:
			return false, fmt.Errorf("failed to read the status of transaction %d: %w", xid, err)
		case err != nil:
			s.dropped(err) // the server may be restarting; ask again
		case status == nil:
			return false, fmt.Errorf("the server no longer knows transaction %d", xid)
		case *status == "committed":
			return true, nil
		case *status == "aborted":
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("transaction %d is still in progress: %w", xid, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// known reports whether the repository's row is known to exist.
func (s *Store) known(key repoKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repos[key]
}

// remember records that the repository's row exists (rows are never
// deleted).
func (s *Store) remember(key repoKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[key] = true
}

// transient reports whether an error before COMMIT is worth another
// attempt: a dropped connection, a server shutting down or restarting, a
// serialization failure or deadlock. Nothing commits without COMMIT, so
// any such attempt stored nothing.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return connectionClass(pgErr.Code) || pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return true // not from the server: the connection failed
}

// ambiguous reports whether a failed COMMIT may nevertheless have
// committed: the connection was lost or the backend was terminated, so the
// server's answer never arrived.
func ambiguous(err error) bool {
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return connectionClass(pgErr.Code) || pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC"
	}
	return true
}

// dropped resets the pool after an error saying that the server ended a
// connection: it may have ended the idle ones too (a restart, or
// pg_terminate_backend), and the next attempt should not draw another
// dead one.
func (s *Store) dropped(err error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !connectionClass(pgErr.Code) {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return
	}
	s.pool.Reset()
}

// connectionClass reports whether an SQLSTATE says the connection failed or
// the server is shutting down (classes 08 and 57P).
func connectionClass(code string) bool {
	return len(code) == 5 && (code[:2] == "08" || code[:3] == "57P")
}
