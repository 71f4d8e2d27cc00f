package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server"
)

// appendReq is one Append waiting for the writer.
type appendReq struct {
	ctx      context.Context
	ns, repo string
	events   []protocol.Event
	done     chan appendResult // buffered: the writer never blocks on it
}

type appendResult struct {
	res []server.Appended
	err error
}

// writeStmts are the writer connection's prepared statements.
type writeStmts struct {
	repo, newRepo, insert, seqByID, doc, bump *sql.Stmt
}

// queries lists the write statements.
func (w *writeStmts) queries() []stmtQuery {
	return []stmtQuery{
		{&w.repo, `SELECT id, last_seq, events FROM repos WHERE ns = ? AND name = ?`},
		{&w.newRepo, `INSERT INTO repos (ns, name) VALUES (?, ?) RETURNING id`},
		{&w.insert, `INSERT INTO events (repo_id, seq, id, data_id, op, created_at_ms, data, meta)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo_id, id) DO NOTHING`},
		{&w.seqByID, `SELECT seq FROM events WHERE repo_id = ? AND id = ?`},
		{&w.doc, `INSERT INTO docs (repo_id, data_id, seq, created_at_ms) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo_id, data_id) DO UPDATE SET seq = excluded.seq, created_at_ms = excluded.created_at_ms`},
		{&w.bump, `UPDATE repos SET last_seq = ?, events = ? WHERE id = ?`},
	}
}

func (w *writeStmts) prepare(ctx context.Context, c *sql.Conn) error {
	for _, p := range w.queries() {
		st, err := c.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("failed to prepare %q: %w", p.query, err)
		}
		*p.dst = st
	}
	return nil
}

func (w *writeStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{w.repo, w.newRepo, w.insert, w.seqByID, w.doc, w.bump} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// Append stores events in one repository, all or nothing; see server.Store.
// It returns once the group commit holding the events is durable. When ctx
// ends before the writer reaches the request, Append stores nothing and
// returns ctx's error; a request the writer has started commits and
// succeeds. Either way nothing is written after Append returns.
func (s *Store) Append(ctx context.Context, ns, repo string, events []protocol.Event) ([]server.Appended, error) {
	if err := checkAppend(ns, repo, events); err != nil {
		return nil, fmt.Errorf("sqlite: failed to append to %s/%s: %w", ns, repo, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: failed to append to %s/%s: %w", ns, repo, err)
	}
	if len(events) == 0 {
		if s.isClosed.Load() {
			return nil, fmt.Errorf("sqlite: failed to append to %s/%s: %w", ns, repo, ErrClosed)
		}
		return []server.Appended{}, nil
	}
	req := &appendReq{ctx: ctx, ns: ns, repo: repo, events: events, done: make(chan appendResult, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, fmt.Errorf("sqlite: failed to append to %s/%s: %w", ns, repo, ErrClosed)
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		return nil, fmt.Errorf("sqlite: failed to append to %s/%s: %w", ns, repo, ctx.Err())
	}
	s.mu.RUnlock()
	// Wait for the answer even when ctx ends: the writer skips a request
	// whose context has ended, and once Append returns its request is
	// settled, never written later.
	r := <-req.done
	if r.err != nil {
		return nil, fmt.Errorf("sqlite: failed to append to %s/%s: %w", ns, repo, r.err)
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
		if len(e.Data) > 0 && !json.Valid(e.Data) {
			return fmt.Errorf("event %d (%s): data is not valid JSON", i, e.ID)
		}
		if len(e.Meta) > 0 && !json.Valid(e.Meta) {
			return fmt.Errorf("event %d (%s): meta is not valid JSON", i, e.ID)
		}
	}
	return nil
}

// write is the writer goroutine: it takes every queued request, commits
// them in one transaction, answers them, and repeats until reqs is closed
// and drained. When fewer requests are queued than the last group held, it
// first waits for that many, at most half the last COMMIT's time: the
// pushers answered by the last commit are then on their way back, and
// without the wait they would miss this group and make the next one, so
// that concurrent pushers split into two half-size groups, each paying a
// COMMIT (the WAL write and fsync). Merging them saves one COMMIT, so the
// wait is bounded by what it can save. A lone pusher (groups of one) never
// waits.
func (s *Store) write() {
	defer close(s.done)
	group := make([]*appendReq, 0, s.maxGroup)
	var (
		lastSize int           // requests in the last group
		lastSync time.Duration // the time of its COMMIT
	)
	for first := range s.reqs {
		// Let the pushers just answered queue their next requests, so that
		// groups stay large instead of alternating large and small.
		runtime.Gosched()
		group = s.drain(append(group[:0], first))
		if len(group) < lastSize {
			group = s.gather(group, lastSize, time.Now().Add(lastSync/2))
		}
		synced := s.syncing.Load()
		group = s.commit(group)
		lastSize, lastSync = len(group), time.Duration(s.syncing.Load()-synced)
		clear(group)
	}
}

// gather adds requests as they come until group holds want of them, the
// group limits are reached, or deadline passes.
func (s *Store) gather(group []*appendReq, want int, deadline time.Time) []*appendReq {
	d := time.Until(deadline)
	if d <= 0 {
		return group
	}
	t := time.NewTimer(d)
	defer t.Stop()
	n := 0
	for _, r := range group {
		n += len(r.events)
	}
	for len(group) < want && len(group) < s.maxGroup && n < s.maxGroupEvents {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return group
			}
			group = append(group, r)
			n += len(r.events)
		case <-t.C:
			return group
		}
	}
	return group
}

// drain adds the requests queued now to group, within the group limits,
// without waiting.
func (s *Store) drain(group []*appendReq) []*appendReq {
	n := 0
	for _, r := range group {
		n += len(r.events)
	}
	for len(group) < s.maxGroup && n < s.maxGroupEvents {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return group
			}
			group = append(group, r)
			n += len(r.events)
		default:
			return group
		}
	}
	return group
}

// commit applies a group of requests in one transaction and answers every
// request once the transaction is durable. It first applies the requests
// back to back, taking in requests queued meanwhile (so that pushers
// answered by the previous commit join this one instead of waiting for the
// next); when one fails, it rolls back and applies the same requests again,
// each inside its own savepoint, so that only the failing request fails. It
// returns the group as committed, late joiners included.
func (s *Store) commit(group []*appendReq) []*appendReq {
	results, ok := s.attempt(&group, false)
	if !ok {
		results, _ = s.attempt(&group, true)
	}
	for i, r := range group {
		r.done <- results[i]
	}
	return group
}

// attempt runs the group in one transaction. With isolate, each request
// runs inside a savepoint and a failing request fails alone. Without it,
// requests queued while the transaction runs join the group, and a failing
// request in a group of several rolls the transaction back and attempt
// reports false: the group must be run again isolated.
func (s *Store) attempt(groupp *[]*appendReq, isolate bool) ([]appendResult, bool) {
	ctx := context.Background() // a request's context must not abort the group
	group := *groupp
	results := make([]appendResult, len(group), cap(group))
	// fail fails every request that has not failed on its own.
	fail := func(err error) ([]appendResult, bool) {
		s.rollback(ctx)
		for i := range results {
			if results[i].err == nil {
				results[i] = appendResult{err: err}
			}
		}
		return results, true
	}
	start := time.Now()
	defer func() { s.busy.Add(int64(time.Since(start))) }()
	if _, err := s.wc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fail(fmt.Errorf("failed to begin transaction: %w", err))
	}
	repos := map[repoKey]*repoState{}
	for i := 0; i < len(group); i++ {
		r := group[i]
		if err := r.ctx.Err(); err != nil {
			results[i].err = err
		} else if err := s.applyOne(ctx, r, repos, isolate, &results[i]); err != nil {
			if !isolate && len(group) > 1 {
				*groupp = group
				s.rollback(ctx)
				return nil, false
			}
			return fail(err)
		}
		if !isolate && i == len(group)-1 {
			group = s.drain(group)
			*groupp = group
			for len(results) < len(group) {
				results = append(results, appendResult{})
			}
		}
	}
	for _, st := range repos {
		if !st.grew {
			continue
		}
		if _, err := s.w.bump.ExecContext(ctx, st.last, st.count, st.id); err != nil {
			return fail(fmt.Errorf("failed to advance repository sequence: %w", err))
		}
	}
	syncStart := time.Now()
	if _, err := s.wc.ExecContext(ctx, "COMMIT"); err != nil {
		return fail(fmt.Errorf("failed to commit: %w", err))
	}
	s.syncing.Add(int64(time.Since(syncStart)))
	s.groups.Add(1)
	for _, r := range results {
		if r.err == nil {
			s.appends.Add(1)
			for _, a := range r.res {
				if a.New {
					s.events.Add(1)
				}
			}
		}
	}
	return results, true
}

// applyOne applies one request of a group into res. Without isolate, a
// failing request's error is returned (the group must be run again); with
// isolate, it is rolled back to its savepoint and recorded in res, and the
// error returned is one that fails the whole transaction.
func (s *Store) applyOne(ctx context.Context, r *appendReq, repos map[repoKey]*repoState, isolate bool, res *appendResult) error {
	if !isolate {
		out, err := s.apply(ctx, r, repos)
		if err != nil {
			res.err = err
			return err
		}
		res.res = out
		return nil
	}
	if _, err := s.wc.ExecContext(ctx, "SAVEPOINT req"); err != nil {
		return fmt.Errorf("failed to open savepoint: %w", err)
	}
	out, err := s.apply(ctx, r, repos)
	if err != nil {
		res.err = err
		if _, rerr := s.wc.ExecContext(ctx, "ROLLBACK TO req"); rerr != nil {
			return fmt.Errorf("failed to roll back to savepoint: %w", rerr)
		}
	} else {
		res.res = out
	}
	if _, err := s.wc.ExecContext(ctx, "RELEASE req"); err != nil {
		return fmt.Errorf("failed to release savepoint: %w", err)
	}
	return nil
}

// rollback abandons the writer's open transaction, if any.
func (s *Store) rollback(ctx context.Context) {
	_, _ = s.wc.ExecContext(ctx, "ROLLBACK")
}

// repoKey names a repository.
type repoKey struct{ ns, name string }

// repoState is a repository's row as the open transaction has it; the
// counters are written back once per group.
type repoState struct {
	id, last, count int64
	grew            bool
}

// apply stores one request's events inside the writer's transaction. repos
// caches the group's repository rows; apply updates it only on success, so
// a failed request's rolled-back changes never reach it.
func (s *Store) apply(ctx context.Context, r *appendReq, repos map[repoKey]*repoState) ([]server.Appended, error) {
	w := &s.w
	key := repoKey{r.ns, r.repo}
	var st repoState
	if cached, ok := repos[key]; ok {
		st = *cached
	} else {
		err := w.repo.QueryRowContext(ctx, r.ns, r.repo).Scan(&st.id, &st.last, &st.count)
		if errors.Is(err, sql.ErrNoRows) {
			err = w.newRepo.QueryRowContext(ctx, r.ns, r.repo).Scan(&st.id)
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read repository: %w", err)
		}
	}
	out := make([]server.Appended, len(r.events))
	for i, e := range r.events {
		ms := e.CreatedAt.UnixMilli()
		res, err := w.insert.ExecContext(ctx, st.id, st.last+1, e.ID, e.DataID, int64(e.Operation), ms, blob(e.Data), blob(e.Meta))
		if err != nil {
			return nil, fmt.Errorf("failed to insert event %s: %w", e.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("failed to insert event %s: %w", e.ID, err)
		}
		if n == 0 { // already stored: a re-push
			var seq int64
			if err := w.seqByID.QueryRowContext(ctx, st.id, e.ID).Scan(&seq); err != nil {
				return nil, fmt.Errorf("failed to read stored event %s: %w", e.ID, err)
			}
			out[i] = server.Appended{ID: e.ID, Sequence: seq}
			continue
		}
		st.last++
		st.count++
		st.grew = true
		if _, err := w.doc.ExecContext(ctx, st.id, e.DataID, st.last, ms); err != nil {
			return nil, fmt.Errorf("failed to index document %s: %w", e.DataID, err)
		}
		out[i] = server.Appended{ID: e.ID, Sequence: st.last, New: true}
	}
	repos[key] = &st
	return out, nil
}

// blob returns b as a query argument, NULL when empty.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
