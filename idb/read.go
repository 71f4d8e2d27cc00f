//go:build js && wasm

package idb

import (
	"context"
	"encoding/json"
	"errors"
	"syscall/js"

	goidb "github.com/hack-pad/go-indexeddb/idb"

	"github.com/lfsync/lfsync/core"
)

// The status_order key range of pending events, by order: its bounds, and
// the range as an IDBKeyRange for getAll.
var (
	pendingLower = js.ValueOf([]any{int(core.StatusPending), js.Global().Get("Number").Get("NEGATIVE_INFINITY")})
	pendingUpper = js.ValueOf([]any{int(core.StatusPending), jsInf})
	pendingRange = keyRange(pendingLower, pendingUpper)
)

// The status_order key range of acked events, by order.
var ackedRange = keyRange(
	js.ValueOf([]any{int(core.StatusOK), js.Global().Get("Number").Get("NEGATIVE_INFINITY")}),
	js.ValueOf([]any{int(core.StatusOK), jsInf}),
)

// get runs one request, made by issue on store name, in a readonly
// transaction and returns its result.
func (s *Store) get(ctx context.Context, op, name string, issue func(store *goidb.ObjectStore) (*goidb.Request, error)) (js.Value, error) {
	if err := ctx.Err(); err != nil {
		return js.Value{}, err
	}
	db, err := s.conn()
	if err != nil {
		return js.Value{}, err
	}
	req, err := func() (*goidb.Request, error) {
		txn, err := db.Transaction(goidb.TransactionReadOnly, name)
		if err != nil {
			return nil, err
		}
		st, err := txn.ObjectStore(name)
		if err != nil {
			return nil, err
		}
		return issue(st)
	}()
	if err != nil {
		if _, cerr := s.conn(); cerr != nil {
			return js.Value{}, cerr
		}
		return js.Value{}, failed(op, exception(err))
	}
	v, err := req.Await(ctx)
	if err == nil {
		err = ctx.Err() // Await returns no error when ctx ends first
	}
	if err != nil {
		return js.Value{}, failed(op, exception(err))
	}
	return v, nil
}

// getAll runs one getAll request, made by issue on store name, in a
// readonly transaction and returns its result, an array.
//
// It stays on syscall/js: go-indexeddb v0.3.2 has getAllKeys but no getAll.
// Its cursors would cost a JS→Go callback per record (9–13 µs each, see
// the team's field notes) and a Go string per record; here the records are
// joined in JS and cross the boundary as one string.
func (s *Store) getAll(ctx context.Context, op, name string, issue func(store js.Value) js.Value) (js.Value, error) {
	if err := ctx.Err(); err != nil {
		return js.Value{}, err
	}
	db, err := s.rawConn()
	if err != nil {
		return js.Value{}, err
	}
	var req js.Value
	if err := protect(func() {
		req = issue(db.Call("transaction", name, "readonly").Call("objectStore", name))
	}); err != nil {
		if _, cerr := s.conn(); cerr != nil {
			return js.Value{}, cerr
		}
		return js.Value{}, failed(op, err)
	}
	w := listen(req, "success", "error")
	select {
	case typ := <-w.ch:
		w.release()
		if typ != "success" {
			err := exceptionError(req.Get("error"))
			if err == nil {
				err = errors.New("request failed")
			}
			return js.Value{}, failed(op, err)
		}
		return req.Get("result"), nil
	case <-ctx.Done():
		w.releaseLater()
		return js.Value{}, ctx.Err()
	}
}

// Doc returns one document, tombstones included.
func (s *Store) Doc(ctx context.Context, repo, id string) (core.Doc, bool, error) {
	v, err := s.get(ctx, "read document", storeDocs, func(st *goidb.ObjectStore) (*goidb.Request, error) {
		return st.Get(jsArray.New(repo, id))
	})
	if err != nil || v.Type() != js.TypeString {
		return core.Doc{}, false, err
	}
	var d core.Doc
	if err := json.Unmarshal(bytesOf(v), &d); err != nil {
		return core.Doc{}, false, failed("decode document "+id, err)
	}
	return d, true, nil
}

// Docs returns a repository's documents, tombstones included, by id: the
// key range [repo] .. [repo, []] of the documents store, joined into one
// JSON array in JS and decoded at once.
func (s *Store) Docs(ctx context.Context, repo string) ([]core.Doc, error) {
	v, err := s.getAll(ctx, "read documents", storeDocs, func(st js.Value) js.Value {
		return st.Call("getAll", keyRange(jsArray.New(repo), jsArray.New(repo, jsEmpty)))
	})
	if err != nil {
		return nil, err
	}
	if v.Length() == 0 {
		return []core.Doc{}, nil
	}
	text := bytesOf(jsConcat.Call("call", "[", v.Call("join", ","), "]"))
	docs := make([]core.Doc, 0, v.Length())
	if err := json.Unmarshal(text, &docs); err != nil {
		return nil, failed("decode documents", err)
	}
	return docs, nil
}

// Pending returns up to limit pending outbox events by Order (all when
// limit <= 0), read from the status_order index.
func (s *Store) Pending(ctx context.Context, limit int) ([]core.OutboxEvent, error) {
	v, err := s.getAll(ctx, "read outbox", storeOutbox, func(st js.Value) js.Value {
		idx := st.Call("index", indexStatusOrder)
		if limit > 0 {
			return idx.Call("getAll", pendingRange, limit)
		}
		return idx.Call("getAll", pendingRange)
	})
	if err != nil {
		return nil, err
	}
	if v.Length() == 0 {
		return []core.OutboxEvent{}, nil
	}
	var recs []outboxRecord
	if err := json.Unmarshal(bytesOf(jsJSON.Call("stringify", v)), &recs); err != nil {
		return nil, failed("decode outbox", err)
	}
	out := make([]core.OutboxEvent, len(recs))
	for i := range recs {
		if out[i], err = recs[i].outboxEvent(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PendingCount counts pending outbox events in the status_order index.
func (s *Store) PendingCount(ctx context.Context) (int, error) {
	v, err := s.get(ctx, "count outbox", storeOutbox, func(st *goidb.ObjectStore) (*goidb.Request, error) {
		idx, err := st.Index(indexStatusOrder)
		if err != nil {
			return nil, err
		}
		pending, err := goidb.NewKeyRangeBound(pendingLower, pendingUpper, false, false)
		if err != nil {
			return nil, err
		}
		count, err := idx.CountRange(pending)
		if err != nil {
			return nil, err
		}
		return count.Request, nil
	})
	if err != nil {
		return 0, err
	}
	return v.Int(), nil
}

// Acked returns the ids of up to limit acked outbox events by Order (all
// when limit <= 0): the primary keys of the status_order index's acked range.
func (s *Store) Acked(ctx context.Context, limit int) ([]string, error) {
	v, err := s.getAll(ctx, "read acked outbox ids", storeOutbox, func(st js.Value) js.Value {
		idx := st.Call("index", indexStatusOrder)
		if limit > 0 {
			return idx.Call("getAllKeys", ackedRange, limit)
		}
		return idx.Call("getAllKeys", ackedRange)
	})
	if err != nil {
		return nil, err
	}
	n := v.Length()
	ids := make([]string, n)
	for i := range n {
		k := v.Index(i)
		if k.Type() != js.TypeString {
			return nil, failed("decode outbox", errors.New("an outbox key is not a string"))
		}
		ids[i] = k.String()
	}
	return ids, nil
}

// Outbox returns one outbox event by event id.
func (s *Store) Outbox(ctx context.Context, eventID string) (core.OutboxEvent, bool, error) {
	v, err := s.get(ctx, "read outbox", storeOutbox, func(st *goidb.ObjectStore) (*goidb.Request, error) {
		return st.Get(js.ValueOf(eventID))
	})
	if err != nil || v.Type() != js.TypeObject {
		return core.OutboxEvent{}, false, err
	}
	var rec outboxRecord
	if err := json.Unmarshal(bytesOf(jsJSON.Call("stringify", v)), &rec); err != nil {
		return core.OutboxEvent{}, false, failed("decode outbox", err)
	}
	e, err := rec.outboxEvent()
	return e, err == nil, err
}

// Cursor returns a repository's pull cursor, 0 if never set.
func (s *Store) Cursor(ctx context.Context, repo string) (int64, error) {
	v, err := s.get(ctx, "read cursor", storeCursors, func(st *goidb.ObjectStore) (*goidb.Request, error) {
		return st.Get(js.ValueOf(repo))
	})
	if err != nil || v.Type() != js.TypeNumber {
		return 0, err
	}
	return int64(v.Float()), nil
}

// Config returns a configuration value.
func (s *Store) Config(ctx context.Context, key string) (string, bool, error) {
	v, err := s.get(ctx, "read config", storeConfig, func(st *goidb.ObjectStore) (*goidb.Request, error) {
		return st.Get(js.ValueOf(key))
	})
	if err != nil || v.Type() != js.TypeString {
		return "", false, err
	}
	return v.String(), true, nil
}

// Generation returns a repository's generation, 0 if documents of it were
// never written.
func (s *Store) Generation(ctx context.Context, repo string) (uint64, error) {
	v, err := s.get(ctx, "read generation", storeMeta, func(st *goidb.ObjectStore) (*goidb.Request, error) {
		return st.Get(js.ValueOf(metaGeneration + repo))
	})
	if err != nil || v.Type() != js.TypeNumber {
		return 0, err
	}
	return uint64(v.Float()), nil
}
