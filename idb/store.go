//go:build js && wasm

package idb

import (
	"context"
	"errors"
	"sync"
	"syscall/js"

	"github.com/lfsync/lfsync/core"
)

var _ core.Store = (*Store)(nil)

// Store is a core.Store on one IndexedDB database. It is safe for
// concurrent use.
type Store struct {
	name string

	mu      sync.Mutex
	db      js.Value
	err     error // why the store is closed: core.ErrClosed, ErrVersionChange, ...
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

// openIn opens name in an IDBFactory: the page's indexedDB, or a storage
// bucket's.
func openIn(ctx context.Context, factory js.Value, name string) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !factory.Truthy() {
		return nil, errors.New("idb: failed to open " + name + ": IndexedDB is not available")
	}
	var req js.Value
	if err := protect(func() { req = factory.Call("open", name, len(migrations)) }); err != nil {
		return nil, failed("open "+name, err)
	}
	var upgradeErr error
	blocked := false
	onUpgrade := js.FuncOf(func(this js.Value, args []js.Value) any {
		ev := args[0]
		if ev.Get("type").String() == "blocked" {
			blocked = true
			return nil
		}
		tx := req.Get("transaction")
		if err := upgrade(req.Get("result"), tx, ev.Get("oldVersion").Int()); err != nil {
			upgradeErr = err
			protect(func() { tx.Call("abort") })
		}
		return nil
	})
	req.Set("onupgradeneeded", onUpgrade)
	req.Set("onblocked", onUpgrade)
	w := listen(req, "success", "error")
	release := func() {
		w.release()
		req.Set("onupgradeneeded", js.Null())
		req.Set("onblocked", js.Null())
		onUpgrade.Release()
	}
	var typ string
	select {
	case typ = <-w.ch:
	case <-ctx.Done():
		go func() { // close the connection should it open after all
			if <-w.ch == "success" {
				req.Get("result").Call("close")
			}
			release()
		}()
		if blocked {
			return nil, failed("open "+name, errors.New("blocked by another open connection: "+ctx.Err().Error()))
		}
		return nil, ctx.Err()
	}
	defer release()
	if typ != "success" {
		err := upgradeErr
		if err == nil {
			err = exceptionError(req.Get("error"))
		}
		if err == nil {
			err = errors.New("open request failed")
		}
		return nil, failed("open "+name, err)
	}
	s := &Store{name: name, db: req.Get("result")}
	s.onVersionChange = js.FuncOf(func(js.Value, []js.Value) any {
		s.lost(ErrVersionChange)
		return nil
	})
	s.onClose = js.FuncOf(func(js.Value, []js.Value) any {
		s.lost(errConnectionLost)
		return nil
	})
	s.db.Set("onversionchange", s.onVersionChange)
	s.db.Set("onclose", s.onClose)
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
	protect(func() { s.db.Call("close") })
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
		s.db.Set("onversionchange", js.Null())
		s.db.Set("onclose", js.Null())
		s.onVersionChange.Release()
		s.onClose.Release()
		s.onClose = js.Func{}
	}
	return nil
}

// conn returns the open connection, or why there is none.
func (s *Store) conn() (js.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return js.Value{}, s.err
	}
	return s.db, nil
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
	var req js.Value
	if err := protect(func() { req = factory.Call("deleteDatabase", name) }); err != nil {
		return failed("delete "+name, err)
	}
	w := listen(req, "success", "error")
	select {
	case typ := <-w.ch:
		w.release()
		if typ != "success" {
			return failed("delete "+name, exceptionError(req.Get("error")))
		}
		return nil
	case <-ctx.Done():
		w.releaseLater()
		return ctx.Err()
	}
}
