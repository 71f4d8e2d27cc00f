package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Several clients may share one store (browser tabs on one IndexedDB
// database), each serialising only its own writes with applyMu. Every write
// computed from documents it read therefore carries a precondition the store
// checks inside its atomic write: remote applies and acks ordered under
// serverWins/clientWins carry Batch.Expect, the repository's store
// generation read before those documents (cheap for many documents); so do
// the first attempts of local writes (the generation cached, or read once),
// except for a few writes after one was refused, which carry, like every
// retry, Batch.ExpectDocs, the few documents as read (so that another tab
// writing other documents cannot keep refusing them). A write of another
// client in between makes the store refuse the batch with ErrStale, storing
// nothing; the engine reads again and recomputes, a bounded number of
// times. A client caches the generation its own last guarded write left,
// and the documents at that generation (doccache.go), so the single-writer
// case reads nothing before a write.

// staleAttempts bounds how often one write is computed when other writers
// keep overtaking it.
const staleAttempts = 12

// generationOf returns the store generation of repo that reads made now are
// at least as new as: the cached one, or the store's, read before any
// document read. The caller holds applyMu.
func (c *Client) generationOf(ctx context.Context, repo string) (uint64, error) {
	if g, ok := c.gens[repo]; ok {
		return g, nil
	}
	g, err := c.store.Generation(ctx, repo)
	if err != nil {
		return 0, wrapErr("read the generation of "+repo, err)
	}
	c.gens[repo] = g
	return g, nil
}

// expect sets b's precondition on repo's generation. The caller holds
// applyMu.
func (c *Client) expect(b *Batch, repo string, gen uint64) {
	if b.Expect == nil {
		b.Expect = make(map[string]uint64, 1)
	}
	b.Expect[repo] = gen
}

// committed records the generations a successful write of b left. The
// caller holds applyMu.
func (c *Client) committed(b *Batch) {
	for repo, g := range b.NextGenerations() {
		c.gens[repo] = g
	}
	var written map[string][]Doc
	for _, w := range b.Docs {
		if _, ok := b.Expect[w.Repo]; !ok {
			delete(c.gens, w.Repo) // unguarded: the new generation is unknown
			c.cache.drop(w.Repo)
			continue
		}
		if written == nil {
			written = make(map[string][]Doc, 1)
		}
		written[w.Repo] = append(written[w.Repo], w.Doc)
	}
	for repo, docs := range written {
		from := b.Expect[repo]
		c.cache.wrote(repo, from, from+1, docs)
	}
}

// stale handles a write refused with ErrStale: the generations and cached
// documents it relied on are dropped, so the next attempt reads afresh. It
// reports whether err was ErrStale. The caller holds applyMu.
func (c *Client) stale(b *Batch, err error) bool {
	if !errors.Is(err, ErrStale) {
		return false
	}
	for repo := range b.Expect {
		delete(c.gens, repo)
		c.cache.drop(repo)
		c.contended[repo] = contendedWrites
	}
	for _, e := range b.ExpectDocs {
		delete(c.gens, e.Repo)
		c.cache.drop(e.Repo)
		c.contended[e.Repo] = contendedWrites
	}
	c.docGen++
	c.metrics.add(func(m *Metrics) { m.StaleWrites++ })
	return true
}

// contendedWrites is the number of local writes of a repository guarded
// by their documents after one of its writes was refused as stale, before
// a write reads the generation again to be guarded by it (and served by the
// document cache): other tabs writing other documents then cannot keep
// refusing this client's writes, and a tab left alone soon writes without
// reads again.
const contendedWrites = 16

// staleWait waits before recomputing a write for the attempt-th time (1 =
// the first retry): not at all at first, then a short random delay that
// grows with attempt, so writers racing on one repository take turns
// instead of spinning. It returns ctx's error if ctx ends first.
func staleWait(ctx context.Context, attempt int) error {
	if attempt <= 1 {
		return ctx.Err()
	}
	d := time.Duration(attempt) * time.Millisecond
	d += rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// staleErr is the error of a write still stale after staleAttempts.
func staleErr(what string, err error) error {
	return wrapErr(what+" (other writers kept changing the repository)", err)
}
