package core

import (
	"container/list"
	"context"
	"slices"
	"strings"
	"sync"
)

// The document cache keeps documents of each repository in memory, valid
// for one store generation (Store.Generation) of that repository: entries
// labelled g are the stored documents for as long as the store is at g, as
// they were read after g was read or written by a write that left g. A
// local write whose generation guard (Batch.Expect) is that generation takes
// the previous documents from it without reading the store: if another tab
// wrote meanwhile, the store refuses the write with ErrStale, the cache is
// dropped and the retry reads afresh. A read of the whole repository
// (GetAll, Query, watchers) confirms the store's generation first (one
// cheap read) and is served from memory when it is still the cached one.
// Returned documents share Data and Fields with the cache: both are
// read-only everywhere in the engine and for callers of GetAll and Query.

// Cache bounds: a repository is held whole (so that absent documents are
// known absent too) up to cacheFullDocs documents and cacheFullBytes bytes
// of ids and data; otherwise up to cachePartialDocs documents are held,
// least recently used dropped first.
const (
	cacheFullDocs    = 25000
	cacheFullBytes   = 32 << 20
	cachePartialDocs = 1024
)

// docCache holds the cached documents of every repository of a client.
type docCache struct {
	mu    sync.Mutex
	repos map[string]*repoCache
}

// repoCache is the cache of one repository at one generation.
type repoCache struct {
	gen    uint64
	full   bool // docs holds every document of the repository
	docs   map[string]*cacheEntry
	lru    list.List // ids, most recently used first; partial caches only
	bytes  int
	sorted []Doc // full caches: every document by id; nil when to be rebuilt
}

type cacheEntry struct {
	doc Doc
	el  *list.Element
}

func newDocCache() *docCache { return &docCache{repos: make(map[string]*repoCache)} }

func docBytes(d Doc) int { return len(d.ID) + len(d.Data) + 64*(1+len(d.Fields)) }

// generation returns the generation of repo's cache, if any.
func (dc *docCache) generation(repo string) (uint64, bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	rc := dc.repos[repo]
	if rc == nil {
		return 0, false
	}
	return rc.gen, true
}

// get looks a document up at generation gen: known reports whether the
// cache knows it (present or, for a whole repository, absent).
func (dc *docCache) get(repo string, gen uint64, id string) (d Doc, exists, known bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	rc := dc.repos[repo]
	if rc == nil || rc.gen != gen {
		return Doc{}, false, false
	}
	if e, ok := rc.docs[id]; ok {
		if e.el != nil {
			rc.lru.MoveToFront(e.el)
		}
		return e.doc, true, true
	}
	return Doc{}, false, rc.full
}

// all returns every document of repo, by id, when the whole repository is
// cached at generation gen. The slice is the caller's.
func (dc *docCache) all(repo string, gen uint64) ([]Doc, bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	rc := dc.repos[repo]
	if rc == nil || rc.gen != gen || !rc.full {
		return nil, false
	}
	if rc.sorted == nil {
		rc.sorted = make([]Doc, 0, len(rc.docs))
		for _, e := range rc.docs {
			rc.sorted = append(rc.sorted, e.doc)
		}
		slices.SortFunc(rc.sorted, func(a, b Doc) int { return strings.Compare(a.ID, b.ID) })
	}
	return slices.Clone(rc.sorted), true
}

// fill caches every document of repo, read after generation gen was read,
// when it fits the bounds and is no older than what is cached.
func (dc *docCache) fill(repo string, gen uint64, docs []Doc) {
	if len(docs) > cacheFullDocs {
		return
	}
	size := 0
	for _, d := range docs {
		size += docBytes(d)
	}
	if size > cacheFullBytes {
		return
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if rc := dc.repos[repo]; rc != nil && (rc.gen > gen || rc.gen == gen && rc.full) {
		return
	}
	rc := &repoCache{gen: gen, full: true, docs: make(map[string]*cacheEntry, len(docs)), bytes: size}
	for _, d := range docs {
		rc.docs[d.ID] = &cacheEntry{doc: d}
	}
	rc.sorted = slices.Clone(docs)
	dc.repos[repo] = rc
}

// empty caches repo as holding no document at generation 0 (never written).
func (dc *docCache) empty(repo string) {
	dc.fill(repo, 0, nil)
}

// wrote records the documents of a write guarded by generation from that
// left generation to: a cache at from moves to to; any older one is
// replaced by the documents written.
func (dc *docCache) wrote(repo string, from, to uint64, docs []Doc) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	rc := dc.repos[repo]
	switch {
	case rc != nil && rc.gen == from:
	case rc == nil || rc.gen < to:
		rc = &repoCache{docs: make(map[string]*cacheEntry)}
		dc.repos[repo] = rc
	default:
		return // a newer read is cached already
	}
	rc.gen = to
	for _, d := range docs {
		rc.put(d)
	}
	if rc.full && (len(rc.docs) > cacheFullDocs || rc.bytes > cacheFullBytes) {
		// Too large to hold whole: keep the documents just written.
		fresh := &repoCache{gen: to, docs: make(map[string]*cacheEntry)}
		for _, d := range docs {
			fresh.put(d)
		}
		dc.repos[repo] = fresh
	}
}

// put sets one document; a partial cache drops its least recently used
// documents beyond cachePartialDocs.
func (rc *repoCache) put(d Doc) {
	if e, ok := rc.docs[d.ID]; ok {
		rc.bytes += docBytes(d) - docBytes(e.doc)
		e.doc = d
		if e.el != nil {
			rc.lru.MoveToFront(e.el)
		}
	} else {
		e := &cacheEntry{doc: d}
		if !rc.full {
			e.el = rc.lru.PushFront(d.ID)
		}
		rc.docs[d.ID] = e
		rc.bytes += docBytes(d)
	}
	rc.sorted = nil
	for !rc.full && rc.lru.Len() > cachePartialDocs {
		old := rc.lru.Back()
		id := old.Value.(string)
		rc.lru.Remove(old)
		rc.bytes -= docBytes(rc.docs[id].doc)
		delete(rc.docs, id)
	}
}

// drop forgets repo's cached documents (every repository's when repo is
// "").
func (dc *docCache) drop(repo string) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if repo == "" {
		clear(dc.repos)
		return
	}
	delete(dc.repos, repo)
}

// readDocs returns every document of repo, ordered by id, from the cache
// when the store's generation is still the cached one, otherwise from the
// store (then cached for the generation read before it).
func (c *Client) readDocs(ctx context.Context, repo string) ([]Doc, error) {
	gen, err := c.store.Generation(ctx, repo)
	if err != nil {
		return nil, wrapErr("read the generation of "+repo, err)
	}
	if docs, ok := c.cache.all(repo, gen); ok {
		return docs, nil
	}
	docs, err := c.store.Docs(ctx, repo)
	if err != nil {
		return nil, wrapErr("read repository "+repo, err)
	}
	c.cache.fill(repo, gen, docs)
	return docs, nil
}
