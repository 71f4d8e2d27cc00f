//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"sync"
	"syscall/js"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/idb"
)

// client binds one engine client, and the IndexedDB store it owns, to a JS
// object whose methods are js.Funcs. Close releases every one of them.
type client struct {
	core  *core.Client
	store *idb.Store
	lead  *leadership // which tab's engine connects
	tabs  *tabs       // lead's channel to the other tabs
	obj   js.Value

	mu      sync.Mutex
	closed  bool
	funcs   []js.Func           // methods of obj and of every repository object
	repos   map[string]js.Value // repository objects by name
	cancels map[int]func()      // watchers and status listeners by handle
	next    int
}

// createClient is __lfsync.createClient(optionsJSON, hooks?):
// it opens the IndexedDB database, creates the engine client, joins the
// database's leader election unless options.autoStart is false (the leader
// tab's engine connects), and resolves with the client object.
func createClient(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		raw, err := stringArg(args, 0, "options")
		if err != nil {
			return nil, err
		}
		opts, database, autoStart, err := parseOptions(raw, arg(args, 1))
		if err != nil {
			return nil, err
		}
		store, err := idb.Open(context.Background(), database)
		if err != nil {
			return nil, wrap("failed to open IndexedDB database "+database, err)
		}
		cc, err := core.NewClient(store, opts)
		if err != nil {
			store.Close()
			return nil, wrap("failed to create client", err)
		}
		c := &client{core: cc, store: store, repos: map[string]js.Value{}, cancels: map[int]func(){}}
		c.lead = newLeadership(cc, database, opts.URL != "")
		c.tabs = c.lead.tabs
		c.obj = c.bind()
		if autoStart {
			c.lead.start()
		}
		return c.obj, nil
	})
}

// bind builds the client's JS object.
func (c *client) bind() js.Value {
	obj := js.Global().Get("Object").New()
	c.method(obj, "clientId", func([]js.Value) any {
		return immediate(func() (any, error) { return c.core.ClientID(), nil })
	})
	c.method(obj, "repository", c.repository)
	c.method(obj, "start", func([]js.Value) any {
		return promise(func() (any, error) {
			if err := c.check(); err != nil {
				return nil, err
			}
			c.lead.start()
			return nil, nil
		})
	})
	c.method(obj, "stop", func([]js.Value) any {
		return promise(func() (any, error) {
			if err := c.check(); err != nil {
				return nil, err
			}
			c.lead.stop()
			return nil, nil
		})
	})
	c.method(obj, "close", func([]js.Value) any { return promise(c.close) })
	c.method(obj, "status", func([]js.Value) any {
		return immediate(func() (any, error) { return c.lead.status(), nil })
	})
	c.method(obj, "metrics", func([]js.Value) any {
		return immediate(func() (any, error) { return metricsJSON(c.core.Metrics()), nil })
	})
	c.method(obj, "onStatus", c.onStatus)
	c.method(obj, "cancel", c.cancel)
	c.method(obj, "updateAuthToken", func(args []js.Value) any {
		return immediate(func() (any, error) {
			token, err := stringArg(args, 0, "token")
			if err != nil {
				return nil, err
			}
			c.core.UpdateToken(token)
			return nil, nil
		})
	})
	c.method(obj, "updateHeaders", func(args []js.Value) any {
		return immediate(func() (any, error) {
			h, err := headersArg(args, 0)
			if err != nil {
				return nil, err
			}
			c.core.UpdateHeaders(h)
			return nil, nil
		})
	})
	c.method(obj, "updateCredentials", func(args []js.Value) any {
		return immediate(func() (any, error) {
			token, err := stringArg(args, 0, "token")
			if err != nil {
				return nil, err
			}
			h, err := headersArg(args, 1)
			if err != nil {
				return nil, err
			}
			c.core.UpdateCredentials(token, h)
			return nil, nil
		})
	})
	c.method(obj, "waitSynced", func(args []js.Value) any {
		return promise(func() (any, error) {
			ctx := context.Background()
			if t := arg(args, 0); t.Type() == js.TypeNumber && t.Float() > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, millis(t.Float()))
				defer cancel()
			}
			if err := c.check(); err != nil {
				return nil, err
			}
			return nil, c.lead.waitSynced(ctx)
		})
	})
	return obj
}

// method sets obj[name] to a js.Func that close releases.
func (c *client) method(obj js.Value, name string, fn func(args []js.Value) any) {
	f := js.FuncOf(func(_ js.Value, args []js.Value) any { return fn(args) })
	c.mu.Lock()
	c.funcs = append(c.funcs, f)
	c.mu.Unlock()
	obj.Set(name, f)
}

// check fails once the client is closed.
func (c *client) check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	return nil
}

// close stops watchers and status listeners, closes the engine client and
// the store, and releases every js.Func of the client and its repositories.
// Closing twice is a no-op.
func (c *client) close() (any, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil
	}
	c.closed = true
	cancels := c.cancels
	c.cancels = nil
	c.mu.Unlock()
	for _, cancel := range cancels {
		if cancel != nil {
			cancel()
		}
	}
	c.lead.close()
	err := c.core.Close()
	if serr := c.store.Close(); err == nil && serr != nil {
		err = wrap("failed to close IndexedDB database", serr)
	}
	c.mu.Lock()
	funcs := c.funcs
	c.funcs, c.repos = nil, nil
	c.mu.Unlock()
	for _, f := range funcs {
		f.Release()
	}
	return nil, err
}

// onStatus is client.onStatus(cb): cb receives each status as a JSON
// string. It returns a handle for cancel.
func (c *client) onStatus(args []js.Value) any {
	return immediate(func() (any, error) {
		cb, err := funcArg(args, 0, "status listener")
		if err != nil {
			return nil, err
		}
		id, err := c.reserve()
		if err != nil {
			return nil, err
		}
		cancel := c.lead.onStatus(id, cb)
		if !c.set(id, cancel) {
			cancel()
		}
		return id, nil
	})
}

// cancel is client.cancel(handle): it ends a watcher or status listener.
// Unknown handles are ignored, so cancelling twice is harmless.
func (c *client) cancel(args []js.Value) any {
	return immediate(func() (any, error) {
		h := arg(args, 0)
		if h.Type() != js.TypeNumber {
			return nil, invalid("handle must be a number")
		}
		c.mu.Lock()
		cancel, ok := c.cancels[h.Int()]
		delete(c.cancels, h.Int())
		c.mu.Unlock()
		if ok && cancel != nil {
			cancel()
		}
		return nil, nil
	})
}

// reserve allocates a handle for a watcher or listener being set up.
func (c *client) reserve() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, errClosed
	}
	c.next++
	c.cancels[c.next] = nil
	return c.next, nil
}

// set records the cancel function of a reserved handle. It reports false
// when the handle was cancelled (or the client closed) meanwhile, and the
// caller must cancel at once.
func (c *client) set(id int, cancel func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cancels[id]; !ok {
		return false
	}
	c.cancels[id] = cancel
	return true
}

// headersArg reads a headers object passed as a JSON string.
func headersArg(args []js.Value, i int) (map[string]string, error) {
	raw, err := stringArg(args, i, "headers")
	if err != nil {
		return nil, err
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		return nil, invalid("headers must map names to strings")
	}
	return h, nil
}

// statusDTO is core.Status as JavaScript sees it: lastSync is an ISO-8601
// string, absent before the first sync.
type statusDTO struct {
	State     core.State `json:"state"`
	Pending   int        `json:"pending"`
	LastSync  string     `json:"lastSync,omitempty"`
	LastError string     `json:"lastError,omitempty"`
}

// toDTO converts an engine status.
func toDTO(s core.SyncStatus) statusDTO {
	return statusDTO{State: s.State, Pending: s.Pending, LastSync: isoTime(s.LastSync), LastError: s.LastError}
}

// tabStatusDTO is the status client.status() and onStatus give: the
// connection state of the leader (see leadership.statusLocked), whether
// this client leads, and how many clients of the database are open in the
// origin's tabs, this one included.
type tabStatusDTO struct {
	statusDTO
	Leader bool `json:"leader"`
	Tabs   int  `json:"tabs"`
}

// metricsDTO is core.Metrics as JavaScript sees it: durations in
// milliseconds, times as ISO-8601 strings, absent when zero.
type metricsDTO struct {
	Reconnects       int64   `json:"reconnects"`
	EventsSent       int64   `json:"eventsSent"`
	EventsReceived   int64   `json:"eventsReceived"`
	EventsAcked      int64   `json:"eventsAcked"`
	BytesSent        int64   `json:"bytesSent"`
	BytesReceived    int64   `json:"bytesReceived"`
	FailedSends      int64   `json:"failedSends"`
	StaleWrites      int64   `json:"staleWrites"`
	QueueSize        int     `json:"queueSize"`
	AvgReconnectMs   float64 `json:"avgReconnectMs"`
	LastConnected    string  `json:"lastConnected,omitempty"`
	LastDisconnected string  `json:"lastDisconnected,omitempty"`
}

// metricsJSON renders metrics for JavaScript.
func metricsJSON(m core.Metrics) string {
	b, _ := json.Marshal(metricsDTO{
		Reconnects:       m.Reconnects,
		EventsSent:       m.EventsSent,
		EventsReceived:   m.EventsReceived,
		EventsAcked:      m.EventsAcked,
		BytesSent:        m.BytesSent,
		BytesReceived:    m.BytesReceived,
		FailedSends:      m.FailedSends,
		StaleWrites:      m.StaleWrites,
		QueueSize:        m.QueueSize,
		AvgReconnectMs:   float64(m.AvgReconnect) / float64(time.Millisecond),
		LastConnected:    isoTime(m.LastConnected),
		LastDisconnected: isoTime(m.LastDisconnected),
	})
	return string(b)
}

// isoTime renders t as ISO-8601 with milliseconds, "" when zero.
func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// wrapped is an error with context, keeping the cause for errors.Is/As (and
// so for core.Code).
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg + ": " + e.err.Error() }
func (e *wrapped) Unwrap() error { return e.err }

// wrap says what failed, keeping err as the cause.
func wrap(msg string, err error) error { return &wrapped{msg: msg, err: err} }
