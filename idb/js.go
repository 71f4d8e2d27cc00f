//go:build js && wasm

package idb

import "syscall/js"

// JS values looked up once.
var (
	jsArray    = js.Global().Get("Array")
	jsObject   = js.Global().Get("Object")
	jsJSON     = js.Global().Get("JSON")
	jsKeyRange = js.Global().Get("IDBKeyRange")
	jsEmpty    = jsArray.New() // [] sorts after every string key
	jsInf      = js.Global().Get("Infinity")
	jsEncoder  = js.Global().Get("TextEncoder").New()
	jsConcat   = js.Global().Get("String").Get("prototype").Get("concat")
)

// bytesOf returns the JS string v as UTF-8 in one Go allocation
// (js.Value.String copies twice: into a buffer, then into a string).
func bytesOf(v js.Value) []byte {
	u8 := jsEncoder.Call("encode", v)
	b := make([]byte, u8.Length())
	js.CopyBytesToGo(b, u8)
	return b
}

// protect runs fn and turns a JavaScript exception thrown by a call inside it
// (syscall/js panics with js.Error) into an error; other panics go on.
func protect(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(js.Error)
			if !ok {
				panic(r)
			}
			err = exceptionError(e.Value)
		}
	}()
	fn()
	return nil
}

// waiter receives the type of the first events fired on a target, through
// one js.Func set as the target's on<event> handlers. The handler only sends
// on a buffered channel: a JS event handler must never block.
type waiter struct {
	target js.Value
	events []string
	ch     chan string
	fn     js.Func
}

// listen sets the handlers of events on target.
func listen(target js.Value, events ...string) *waiter {
	w := &waiter{target: target, events: events, ch: make(chan string, len(events)+1)}
	w.fn = js.FuncOf(func(this js.Value, args []js.Value) any {
		typ := "event"
		if len(args) > 0 {
			typ = args[0].Get("type").String()
		}
		select {
		case w.ch <- typ:
		default:
		}
		return nil
	})
	for _, ev := range events {
		target.Set("on"+ev, w.fn)
	}
	return w
}

// release removes the handlers and frees the js.Func; call it once an event
// was received (or none can come any more).
func (w *waiter) release() {
	for _, ev := range w.events {
		w.target.Set("on"+ev, js.Null())
	}
	w.fn.Release()
}

// releaseLater releases w after its first event: for a caller that stops
// waiting early (cancelled context) while the request is still pending.
func (w *waiter) releaseLater() {
	go func() {
		<-w.ch
		w.release()
	}()
}

// keyRange returns IDBKeyRange.bound(lower, upper).
func keyRange(lower, upper js.Value) js.Value {
	return jsKeyRange.Call("bound", lower, upper)
}
