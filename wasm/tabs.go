//go:build js && wasm

package main

import "syscall/js"

// tabs tells the other clients of a database, in other tabs or this one,
// which repository a local write changed, over a BroadcastChannel named
// for the database. Each client's engine only sees its own writes, so
// without it another tab's watchers would not notice a change until it came
// back from the server, and never while offline.
type tabs struct {
	channel   js.Value
	onMessage js.Func
}

// openTabs joins the database's channel; changed is called with the
// repository another client wrote. It returns nil where BroadcastChannel
// does not exist.
func openTabs(database string, changed func(repo string)) *tabs {
	ctor := js.Global().Get("BroadcastChannel")
	if ctor.Type() != js.TypeFunction {
		return nil
	}
	ch, err := try(func() js.Value { return ctor.New("lfsync:" + database) })
	if err != nil {
		return nil
	}
	t := &tabs{channel: ch}
	t.onMessage = js.FuncOf(func(_ js.Value, args []js.Value) any {
		if data := arg(args, 0).Get("data"); data.Type() == js.TypeString {
			changed(data.String())
		}
		return nil
	})
	ch.Set("onmessage", t.onMessage)
	return t
}

// wrote announces a local write to repo.
func (t *tabs) wrote(repo string) {
	if t != nil {
		try(func() js.Value { t.channel.Call("postMessage", repo); return js.Undefined() })
	}
}

// close leaves the channel and releases the listener.
func (t *tabs) close() {
	if t == nil {
		return
	}
	t.channel.Set("onmessage", js.Null())
	t.channel.Call("close")
	t.onMessage.Release()
}
