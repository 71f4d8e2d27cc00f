//go:build js && wasm

package main

import "syscall/js"

// lockRequest is one navigator.locks.request for the leader lock: queued
// until the browser grants it, then held until released, stolen by another
// tab, or the page goes away.
type lockRequest struct {
	seq   int
	steal bool
	abort js.Value // the request's AbortController; undefined for a steal
	// release resolves the promise the grant callback returned, which
	// releases the lock; set once granted.
	release js.Value
	funcs   []js.Func
}

// webLocks returns navigator.locks, or undefined where the Web Locks API is
// missing (old browsers, insecure contexts).
func webLocks() js.Value {
	nav := js.Global().Get("navigator")
	if nav.Type() != js.TypeObject {
		return js.Undefined()
	}
	locks := nav.Get("locks")
	if locks.Type() != js.TypeObject || locks.Get("request").Type() != js.TypeFunction {
		return js.Undefined()
	}
	return locks
}

// requestLock asks for the exclusive lock name. granted(r) runs when the
// browser grants it, ended(r, errName) when the request is over: released
// by us (errName ""), aborted before the grant or stolen after it
// ("AbortError"), or failed. Both run on the event loop and must not
// block. A steal takes the lock at once from whoever holds it. The request's
// js.Funcs are released by free, once ended was called.
func requestLock(locks js.Value, name string, seq int, steal bool, granted func(*lockRequest), ended func(r *lockRequest, errName string)) (*lockRequest, error) {
	r := &lockRequest{seq: seq, steal: steal, abort: js.Undefined(), release: js.Undefined()}
	opts := js.Global().Get("Object").New()
	if steal {
		// The API refuses a signal together with steal.
		opts.Set("steal", true)
	} else {
		ctl, err := try(func() js.Value { return js.Global().Get("AbortController").New() })
		if err == nil {
			r.abort = ctl
			opts.Set("signal", ctl.Get("signal"))
		}
	}
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		r.release = arg(args, 0)
		return nil
	})
	onGrant := js.FuncOf(func(js.Value, []js.Value) any {
		// Held until r.release is called.
		held := promiseClass.New(executor)
		granted(r)
		return held
	})
	onOK := js.FuncOf(func(js.Value, []js.Value) any {
		ended(r, "")
		return nil
	})
	onErr := js.FuncOf(func(_ js.Value, args []js.Value) any {
		name := "Error"
		if e := arg(args, 0); e.Type() == js.TypeObject && e.Get("name").Type() == js.TypeString {
			name = e.Get("name").String()
		}
		ended(r, name)
		return nil
	})
	r.funcs = []js.Func{executor, onGrant, onOK, onErr}
	p, err := try(func() js.Value { return locks.Call("request", name, opts, onGrant) })
	if err != nil {
		r.free()
		return nil, err
	}
	p.Call("then", onOK, onErr)
	return r, nil
}

// unlock gives the lock back (when held) or withdraws the request (when
// still queued). ended follows.
func (r *lockRequest) unlock() {
	if r.release.Type() == js.TypeFunction {
		try(func() js.Value { return r.release.Invoke() })
		r.release = js.Undefined()
		return
	}
	if r.abort.Type() == js.TypeObject {
		try(func() js.Value { return r.abort.Call("abort") })
	}
}

// free releases the request's js.Funcs; call it only after ended.
func (r *lockRequest) free() {
	for _, f := range r.funcs {
		f.Release()
	}
	r.funcs = nil
}
