//go:build js && wasm

package idb

import (
	"context"
	"encoding/json"
	"errors"
	"syscall/js"

	"github.com/lfsync/lfsync/core"
)

// pendingRange is the status_order key range of pending events, by order.
var pendingRange = keyRange(js.ValueOf([]any{int(core.StatusPending), js.Global().Get("Number").Get("NEGATIVE_INFINITY")}),
	js.ValueOf([]any{int(core.StatusPending), jsInf}))

// read runs one request, made by issue on store name, in a readonly
// transaction and returns its result.
func (s *Store) read(ctx context.Context, op, name string, issue func(store js.Value) js.Value) (js.Value, error) {
	if err := ctx.Err(); err != nil {
		return js.Value{}, err
	}
	db, err := s.conn()
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
	v, err := s.read(ctx, "read document", storeDocs, func(st js.Value) js.Value {
		return st.Call("get", jsArray.New(repo, id))
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
	v, err := s.read(ctx, "read documents", storeDocs, func(st js.Value) js.Value {
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
	v, err := s.read(ctx, "read outbox", storeOutbox, func(st js.Value) js.Value {
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
	v, err := s.read(ctx, "count outbox", storeOutbox, func(st js.Value) js.Value {
		return st.Call("index", indexStatusOrder).Call("count", pendingRange)
	})
	if err != nil {
		return 0, err
	}
	return v.Int(), nil
}

// Outbox returns one outbox event by event id.
func (s *Store) Outbox(ctx context.Context, eventID string) (core.OutboxEvent, bool, error) {
	v, err := s.read(ctx, "read outbox", storeOutbox, func(st js.Value) js.Value {
		return st.Call("get", eventID)
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
	v, err := s.read(ctx, "read cursor", storeCursors, func(st js.Value) js.Value {
		return st.Call("get", repo)
	})
	if err != nil || v.Type() != js.TypeNumber {
		return 0, err
	}
	return int64(v.Float()), nil
}

// Config returns a configuration value.
func (s *Store) Config(ctx context.Context, key string) (string, bool, error) {
	v, err := s.read(ctx, "read config", storeConfig, func(st js.Value) js.Value {
		return st.Call("get", key)
	})
	if err != nil || v.Type() != js.TypeString {
		return "", false, err
	}
	return v.String(), true, nil
}
