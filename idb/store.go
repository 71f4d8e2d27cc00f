//go:build js && wasm

package idb

import (
	"context"
	"errors"
	"sync"
	"syscall/js"

	goidb "github.com/hack-pad/go-indexeddb/idb"

	"github.com/lfsync/lfsync/core"
)

var _ core.Store = (*Store)(nil)

// Store is a core.Store on one IndexedDB database. It is safe for
// concurrent use.
type Store struct {
	name string

	mu      sync.Mutex
	db      *goidb.Database
	raw     js.Value // the same connection as db, for what go-indexeddb has no API for
	err     error    // why the store is closed: core.ErrClosed, ErrVersionChange, ...
	queue   []*pendingWrite
	writing bool // a drain goroutine is committing the queue

	onVersionChange js.Func
	onClose         js.Func
}

// Name returns the database name.
func (s *Store) Name() string { return s.name }

// Open opens the IndexedDB database name, creating or upgrading it to the
// current schema. While another connection of an older version keeps the
// upgrade blocked, Open waits (the other tab's store closes itself on the
// versionchange event) until ctx ends.
func Open(ctx context.Context, name string) (*Store, error) {
	return openIn(ctx, js.Global().Get("indexedDB"), name)
}

// openResult is what an open request ended with.
type openResult struct {
	db  *goidb.Database
	raw js.Value
	err error
}

// openIn opens name in an IDBFactory: the page's indexedDB, or a storage
// bucket's.
func openIn(ctx context.Context, factory js.Value, name string) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !factory.Truthy() {
		return nil, errors.New("idb: failed to open " + name + ": IndexedDB is not available")
	}
	f, err := goidb.WrapFactory(factory)
	if err != nil {
		return nil, failed("open "+name, exception(err))
	}
	// go-indexeddb removes its upgradeneeded listener when the context given
	// to Factory.Open ends; an upgrade that ran after that would leave the
	// database at the new version without its stores. So the listener lives
	// until the request finishes, whatever happens to ctx.
	reqCtx, finish := context.WithCancel(context.Background())
	var (
		req        *goidb.OpenDBRequest
		upgradeErr error
	)
	rawDB := func() js.Value { // the IDBDatabase, once the request has one
		v, _ := req.Request.Result()
		return v
	}
	req, err = f.Open(reqCtx, name, uint(len(migrations)), upgrader(rawDB, &upgradeErr))
	if err != nil {
		finish()
		return nil, failed("open "+name, exception(err))
	}
	done := make(chan openResult, 1)
	go func() {
		db, err := req.Await(reqCtx)
		r := openResult{db: db, err: err}
		if err == nil {
			r.raw = rawDB()
		}
		done <- r
	}()
	var r openResult
	select {
	case r = <-done:
		finish()
	case <-ctx.Done():
		go func() { // close the connection should it open after all
			if r := <-done; r.err == nil {
				r.db.Close()
			}
			finish()
		}()
		return nil, ctx.Err()
	}
	if r.err != nil {
		err := upgradeErr
		if err == nil {
			err = exception(r.err)
		}
		return nil, failed("open "+name, err)
	}
	s := &Store{name: name, db: r.db, raw: r.raw}
	// go-indexeddb has no API for the connection's own events: handle them
	// on the IDBDatabase.
	s.onVersionChange = js.FuncOf(func(js.Value, []js.Value) any {
		s.lost(ErrVersionChange)
		return nil
	})
	s.onClose = js.FuncOf(func(js.Value, []js.Value) any {
		s.lost(errConnectionLost)
		return nil
	})
	s.raw.Set("onversionchange", s.onVersionChange)
	s.raw.Set("onclose", s.onClose)
	return s, nil
}

// lost closes the connection because of err: another tab wants a new
// version, or the browser closed the database.
func (s *Store) lost(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.shut(err)
}

// shut marks the store closed with err, fails queued writes and closes the
// connection; the browser closes it once running transactions finish. The
// caller holds s.mu.
func (s *Store) shut(err error) {
	s.err = err
	for _, w := range s.queue {
		w.done <- err
	}
	s.queue = nil
	s.db.Close()
}

// Close closes the store; later calls return core.ErrClosed. A write already
// committing finishes; queued ones fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.shut(core.ErrClosed)
	}
	s.err = core.ErrClosed
	if s.onClose.Truthy() {
		s.raw.Set("onversionchange", js.Null())
		s.raw.Set("onclose", js.Null())
		s.onVersionChange.Release()
		s.onClose.Release()
		s.onClose = js.Func{}
	}
	return nil
}

// conn returns the open connection, or why there is none.
func (s *Store) conn() (*goidb.Database, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return s.db, nil
}

// rawConn returns the open connection as an IDBDatabase, or why there is
// none.
func (s *Store) rawConn() (js.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return js.Value{}, s.err
	}
	return s.raw, nil
}

// Delete deletes the IndexedDB database name. Open connections get a
// versionchange event (an open Store closes itself); Delete waits until they
// are closed or ctx ends.
func Delete(ctx context.Context, name string) error {
	return deleteIn(ctx, js.Global().Get("indexedDB"), name)
}

func deleteIn(ctx context.Context, factory js.Value, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !factory.Truthy() {
		return errors.New("idb: failed to delete " + name + ": IndexedDB is not available")
	}
	f, err := goidb.WrapFactory(factory)
	if err != nil {
		return failed("delete "+name, exception(err))
	}
	req, err := f.DeleteDatabase(name)
	if err != nil {
		return failed("delete "+name, exception(err))
	}
	err = req.Await(ctx)
	if err == nil {
		err = ctx.Err() // Await returns no error when ctx ends first
	}
	return failed("delete "+name, exception(err))
}
