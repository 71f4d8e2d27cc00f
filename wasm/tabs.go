//go:build js && wasm

package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"syscall/js"
	"time"
)

// tabMessage is what the clients of one database, in the tabs of an origin,
// tell each other. It crosses as a JSON string.
type tabMessage struct {
	V    int    `json:"v"`    // tabProtocol
	Type string `json:"type"` // one of the msg* constants
	Tab  string `json:"tab"`  // the sender's tab id
	// msgBeat: the sender's election epoch and, from the leader, its
	// engine's status.
	Epoch  uint64     `json:"epoch,omitempty"`
	Leader bool       `json:"leader,omitempty"`
	Status *statusDTO `json:"status,omitempty"`
	// msgChanged: the repositories whose documents or outbox changed.
	Repos []string `json:"repos,omitempty"`
	// msgSync, msgSynced: a follower's waitSynced forwarded to the leader,
	// and its answer (To is the follower's tab id).
	ID    int    `json:"id,omitempty"`
	To    string `json:"to,omitempty"`
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// tabProtocol is the version of tabMessage; messages of another version
// are ignored.
const tabProtocol = 1

// The message types.
const (
	msgBeat    = "beat"    // heartbeat of every tab; the leader's carries its status
	msgHello   = "hello"   // a tab joined: the leader answers with a beat at once
	msgBye     = "bye"     // a tab is leaving (closed, hidden for good, frozen)
	msgChanged = "changed" // the store changed: Invalidate these repositories
	msgSync    = "sync"    // a follower asks the leader to wait until synced
	msgSynced  = "synced"  // the leader's answer to msgSync
)

// tabs is the channel between the clients of one database in every tab of
// the origin (and in this tab: two clients of a page talk through it too).
// It runs over a BroadcastChannel, or over localStorage "storage" events
// where BroadcastChannel is missing, and nowhere when neither exists.
// Change announcements are batched: marks made in one JavaScript task go
// out as one message in a microtask.
type tabs struct {
	id       string
	database string
	kind     string // "broadcast", "storage" or "none"
	receive  func(tabMessage)

	channel js.Value // BroadcastChannel, when kind is "broadcast"
	key     string   // this tab's localStorage key, when kind is "storage"
	seq     int      // makes every storage write a change
	listen  js.Func  // onmessage or the storage listener
	flushFn js.Func  // flush, queued as a microtask

	mu      sync.Mutex
	changed map[string]bool
	queued  bool // a microtask holds flushFn
	closed  bool
}

// channelName names the BroadcastChannel (and the localStorage key prefix)
// of a database.
func channelName(database string) string { return "lfsync:" + database }

// openTabs joins the channel of database as tab id; receive gets every
// message of the other clients, on the JavaScript event loop: it must not
// block.
func openTabs(id, database string, receive func(tabMessage)) *tabs {
	t := &tabs{id: id, database: database, kind: "none", receive: receive, changed: map[string]bool{}}
	if ctor := js.Global().Get("BroadcastChannel"); ctor.Type() == js.TypeFunction {
		if ch, err := try(func() js.Value { return ctor.New(channelName(database)) }); err == nil {
			t.kind, t.channel = "broadcast", ch
			f := js.FuncOf(func(_ js.Value, args []js.Value) any {
				if data := arg(args, 0).Get("data"); data.Type() == js.TypeString {
					t.deliver(data.String())
				}
				return nil
			})
			t.listen = f
			ch.Set("onmessage", f)
		}
	}
	if t.kind == "none" && storageWorks() {
		t.kind = "storage"
		t.key = channelName(database) + ":" + id
		prefix := channelName(database) + ":"
		sweepStorage(prefix)
		f := js.FuncOf(func(_ js.Value, args []js.Value) any {
			e := arg(args, 0)
			key, value := e.Get("key"), e.Get("newValue")
			if key.Type() == js.TypeString && value.Type() == js.TypeString && strings.HasPrefix(key.String(), prefix) {
				// The value is "<unix ms> <seq> <message>".
				if _, rest, ok := strings.Cut(value.String(), " "); ok {
					if _, msg, ok := strings.Cut(rest, " "); ok {
						t.deliver(msg)
					}
				}
			}
			return nil
		})
		t.listen = f
		js.Global().Call("addEventListener", "storage", f)
	}
	t.flushFn = js.FuncOf(func(js.Value, []js.Value) any {
		t.mu.Lock()
		t.queued = false
		closed := t.closed
		t.mu.Unlock()
		if closed {
			// close left flushFn to this microtask.
			t.flushFn.Release()
			return nil
		}
		t.flush()
		return nil
	})
	return t
}

// storageWorks reports whether localStorage exists and accepts writes (it
// throws in some private modes and sandboxed frames).
func storageWorks() bool {
	ls, err := try(func() js.Value { return js.Global().Get("localStorage") })
	if err != nil || ls.Type() != js.TypeObject {
		return false
	}
	_, err = try(func() js.Value {
		ls.Call("setItem", "lfsync:probe", "1")
		ls.Call("removeItem", "lfsync:probe")
		return js.Undefined()
	})
	return err == nil
}

// sweepStorage removes the keys of tabs that died without removing theirs
// (a crash): keys under prefix not written for a minute.
func sweepStorage(prefix string) {
	try(func() js.Value {
		ls := js.Global().Get("localStorage")
		var stale []string
		for i := ls.Get("length").Int() - 1; i >= 0; i-- {
			k := ls.Call("key", i)
			if k.Type() != js.TypeString || !strings.HasPrefix(k.String(), prefix) {
				continue
			}
			v := ls.Call("getItem", k)
			ms, _, _ := strings.Cut(v.String(), " ")
			if at, err := strconv.ParseInt(ms, 10, 64); v.Type() != js.TypeString || err != nil || time.Since(time.UnixMilli(at)) > time.Minute {
				stale = append(stale, k.String())
			}
		}
		for _, k := range stale {
			ls.Call("removeItem", k)
		}
		return js.Undefined()
	})
}

// deliver decodes a message and hands it to receive, dropping those of
// other protocol versions and this tab's own (storage events never echo,
// but a BroadcastChannel of the same tab id cannot exist; this is cheap
// insurance).
func (t *tabs) deliver(raw string) {
	var m tabMessage
	if json.Unmarshal([]byte(raw), &m) != nil || m.V != tabProtocol || m.Tab == t.id || m.Tab == "" {
		return
	}
	t.receive(m)
}

// send posts m to the other clients.
func (t *tabs) send(m tabMessage) {
	m.V, m.Tab = tabProtocol, t.id
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return
	}
	switch t.kind {
	case "broadcast":
		try(func() js.Value { t.channel.Call("postMessage", string(b)); return js.Undefined() })
	case "storage":
		t.mu.Lock()
		t.seq++
		v := strconv.FormatInt(time.Now().UnixMilli(), 10) + " " + strconv.Itoa(t.seq) + " " + string(b)
		t.mu.Unlock()
		try(func() js.Value { js.Global().Get("localStorage").Call("setItem", t.key, v); return js.Undefined() })
	}
}

// wrote marks repos changed; the marks of one task go out together in a
// microtask.
func (t *tabs) wrote(repos ...string) {
	if t == nil || t.kind == "none" || len(repos) == 0 {
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	for _, r := range repos {
		t.changed[r] = true
	}
	schedule := !t.queued
	t.queued = true
	t.mu.Unlock()
	if schedule {
		js.Global().Call("queueMicrotask", t.flushFn)
	}
}

// flush sends the marked repositories as one msgChanged.
func (t *tabs) flush() {
	t.mu.Lock()
	repos := make([]string, 0, len(t.changed))
	for r := range t.changed {
		repos = append(repos, r)
	}
	clear(t.changed)
	t.mu.Unlock()
	if len(repos) > 0 {
		t.send(tabMessage{Type: msgChanged, Repos: repos})
	}
}

// close sends what is still marked, leaves the channel and releases the
// listeners. Later sends are dropped.
func (t *tabs) close() {
	t.flush()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	queued := t.queued // a microtask still holds flushFn: it releases it
	t.mu.Unlock()
	switch t.kind {
	case "broadcast":
		t.channel.Set("onmessage", js.Null())
		t.channel.Call("close")
		t.listen.Release()
	case "storage":
		js.Global().Call("removeEventListener", "storage", t.listen)
		try(func() js.Value { js.Global().Get("localStorage").Call("removeItem", t.key); return js.Undefined() })
		t.listen.Release()
	}
	if !queued {
		t.flushFn.Release()
	}
}
