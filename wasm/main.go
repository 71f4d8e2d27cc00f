//go:build js && wasm

// Command wasm is lfsync's browser runtime: the core engine over the
// IndexedDB store, exposed to JavaScript as one namespaced global,
// globalThis.__lfsync, which the lfsync JS package (js/) wraps.
//
// The global holds version and createClient(optionsJSON, resolve,
// refreshToken). Data crosses the boundary as JSON strings, one per call or
// emission; every asynchronous method returns a Promise settled from a
// goroutine, and rejections are Errors carrying a code (see errors.go).
package main

import (
	"runtime"
	"strconv"
	"syscall/js"
)

// version is the runtime's version; the JS package warns when its own
// differs.
const version = "0.1.0"

// namespace is the name of the global the runtime registers.
const namespace = "__lfsync"

func main() {
	register()
	select {}
}

// register installs globalThis.__lfsync, keeping an object the JS package
// put there first.
func register() {
	ns := js.Global().Get(namespace)
	if ns.Type() != js.TypeObject {
		ns = js.Global().Get("Object").New()
		js.Global().Set(namespace, ns)
	}
	// The JS package may hand over its LfsyncError class before go.run, so
	// rejections are instances of it.
	if e := ns.Get("Error"); e.Type() == js.TypeFunction {
		errorClass = e
	}
	ns.Set("version", version)
	ns.Set("createClient", js.FuncOf(createClient))
	// stats() is a diagnostic for leak tests: the live goroutines, as JSON.
	ns.Set("stats", js.FuncOf(func(js.Value, []js.Value) any {
		return `{"goroutines":` + strconv.Itoa(runtime.NumGoroutine()) + `}`
	}))
}
