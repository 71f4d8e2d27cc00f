//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"strings"
	"syscall/js"

	"github.com/lfsync/lfsync/core"
)

// repository is client.repository(name): the repository's JS object,
// created once per name and cached. Asking for a repository adds it to the
// synced set.
func (c *client) repository(args []js.Value) any {
	return immediate(func() (any, error) {
		name, err := stringArg(args, 0, "repository name")
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, invalid("repository name must not be empty")
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, errClosed
		}
		obj, ok := c.repos[name]
		c.mu.Unlock()
		if ok {
			return obj, nil
		}
		obj = c.bindRepository(name)
		c.mu.Lock()
		c.repos[name] = obj
		c.mu.Unlock()
		// Register it with the engine off the event loop: it may touch the
		// store.
		go call(func() (any, error) { c.core.Repository(name); return nil, nil })
		return obj, nil
	})
}

// bindRepository builds a repository's JS object. Its methods take
// documents and queries as JSON strings and resolve with JSON strings.
func (c *client) bindRepository(name string) js.Value {
	obj := js.Global().Get("Object").New()
	obj.Set("name", name)
	// do runs fn on a goroutine with the engine's repository, failing once
	// the client is closed.
	do := func(fn func(r *core.Repository) (any, error)) js.Value {
		return promise(func() (any, error) {
			if err := c.check(); err != nil {
				return nil, err
			}
			return fn(c.core.Repository(name))
		})
	}
	// write is do for local writes. The engine reports each committed
	// write through OnChange, and the leadership announces it to the other
	// clients of the database.
	write := func(fn func(r *core.Repository) error) js.Value {
		return do(func(r *core.Repository) (any, error) { return nil, fn(r) })
	}
	// upsert(id, docJSON, localOnly?)
	c.method(obj, "upsert", func(args []js.Value) any {
		id, err := idArg(args, 0)
		if err != nil {
			return reject(err)
		}
		doc, err := stringArg(args, 1, "document")
		if err != nil {
			return reject(err)
		}
		wo, err := writeOptions(args, 2)
		if err != nil {
			return reject(err)
		}
		return write(func(r *core.Repository) error {
			return r.Upsert(context.Background(), id, json.RawMessage(doc), wo...)
		})
	})
	// upsertMany(idsJSON, docsJSON, localOnly?): one atomic write.
	c.method(obj, "upsertMany", func(args []js.Value) any {
		rawIDs, err := stringArg(args, 0, "ids")
		if err != nil {
			return reject(err)
		}
		rawDocs, err := stringArg(args, 1, "documents")
		if err != nil {
			return reject(err)
		}
		wo, err := writeOptions(args, 2)
		if err != nil {
			return reject(err)
		}
		return write(func(r *core.Repository) error {
			var ids []string
			var docs []json.RawMessage
			if json.Unmarshal([]byte(rawIDs), &ids) != nil || json.Unmarshal([]byte(rawDocs), &docs) != nil {
				return invalid("upsertMany needs a JSON array of ids and one of documents")
			}
			if len(ids) != len(docs) {
				return invalid("upsertMany got a different number of ids and documents")
			}
			puts := make([]core.Put, len(ids))
			for i := range ids {
				if ids[i] == "" {
					return invalid("document id must not be empty")
				}
				puts[i] = core.Put{ID: ids[i], Data: docs[i]}
			}
			return r.UpsertMany(context.Background(), puts, wo...)
		})
	})
	// get(id) resolves with the document's JSON, or null.
	c.method(obj, "get", func(args []js.Value) any {
		id, err := idArg(args, 0)
		if err != nil {
			return reject(err)
		}
		return do(func(r *core.Repository) (any, error) {
			doc, ok, err := r.Get(context.Background(), id)
			if err != nil || !ok {
				return nil, err
			}
			return string(doc), nil
		})
	})
	// getAll() resolves with a JSON array of every document.
	c.method(obj, "getAll", func([]js.Value) any {
		return do(func(r *core.Repository) (any, error) {
			docs, err := r.GetAll(context.Background())
			if err != nil {
				return nil, err
			}
			return jsonArray(docs), nil
		})
	})
	// query(queryJSON) resolves with a JSON array of the matches.
	c.method(obj, "query", func(args []js.Value) any {
		q, err := queryArg(args, 0)
		if err != nil {
			return reject(err)
		}
		return do(func(r *core.Repository) (any, error) {
			docs, err := r.Query(context.Background(), q)
			if err != nil {
				return nil, err
			}
			return jsonArray(docs), nil
		})
	})
	// delete(id, localOnly?)
	c.method(obj, "delete", func(args []js.Value) any {
		id, err := idArg(args, 0)
		if err != nil {
			return reject(err)
		}
		wo, err := writeOptions(args, 1)
		if err != nil {
			return reject(err)
		}
		return write(func(r *core.Repository) error {
			return r.Delete(context.Background(), id, wo...)
		})
	})
	// watch(queryJSON, cb) calls cb with the JSON array of the result,
	// once at first and again on every change, and returns a handle for
	// client.cancel.
	c.method(obj, "watch", func(args []js.Value) any {
		return immediate(func() (any, error) {
			q, err := queryArg(args, 0)
			if err != nil {
				return nil, err
			}
			cb, err := funcArg(args, 1, "watch callback")
			if err != nil {
				return nil, err
			}
			id, err := c.reserve()
			if err != nil {
				return nil, err
			}
			go call(func() (any, error) {
				cancel := c.core.Repository(name).Watch(q, func(docs []json.RawMessage) {
					invoke(cb, jsonArray(docs))
				})
				if !c.set(id, cancel) {
					cancel()
				}
				return nil, nil
			})
			return id, nil
		})
	})
	return obj
}

// reject returns a Promise already rejected with err.
func reject(err error) js.Value {
	return promiseClass.Call("reject", jsError(err))
}

// idArg reads a document id.
func idArg(args []js.Value, i int) (string, error) {
	id, err := stringArg(args, i, "document id")
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", invalid("document id must not be empty")
	}
	return id, nil
}

// queryArg reads a query passed as a JSON string; undefined, null and ""
// mean every document.
func queryArg(args []js.Value, i int) (core.Query, error) {
	var q core.Query
	v := arg(args, i)
	switch v.Type() {
	case js.TypeUndefined, js.TypeNull:
		return q, nil
	case js.TypeString:
	default:
		return q, invalid("query must be a JSON string")
	}
	if s := v.String(); s != "" {
		if err := json.Unmarshal([]byte(s), &q); err != nil {
			return q, invalid("query is not valid: " + err.Error())
		}
	}
	if err := q.Validate(); err != nil {
		return q, invalid("query is not valid: " + err.Error())
	}
	return q, nil
}

// writeOptions reads the localOnly flag of a write.
func writeOptions(args []js.Value, i int) ([]core.WriteOption, error) {
	localOnly, err := boolArg(args, i, "localOnly")
	if err != nil || !localOnly {
		return nil, err
	}
	return []core.WriteOption{core.LocalOnly()}, nil
}

// jsonArray joins JSON documents into one JSON array, the form results
// cross the boundary in (one JSON.parse on the JS side).
func jsonArray(docs []json.RawMessage) string {
	n := 2
	for _, d := range docs {
		n += len(d) + 1
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('[')
	for i, d := range docs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(d)
	}
	b.WriteByte(']')
	return b.String()
}
