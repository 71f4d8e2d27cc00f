//go:build js && wasm

package main

import (
	"context"
	"errors"
	"runtime/debug"
	"syscall/js"

	"github.com/lfsync/lfsync/core"
)

// errorClass constructs the errors handed to JavaScript: the JS package's
// LfsyncError when it registered one, else Error.
var errorClass = js.Global().Get("Error")

// codedError is an error of the bridge itself (bad arguments, a crash)
// with the code JavaScript sees.
type codedError struct {
	code string
	msg  string
}

func (e *codedError) Error() string { return e.msg }

// invalid reports a bad argument or option.
func invalid(msg string) error { return &codedError{code: "invalid", msg: msg} }

// errClosed is returned by every method of a closed client.
var errClosed = &codedError{code: "closed", msg: "lfsync: client is closed"}

// codeOf returns the code JavaScript sees for err.
func codeOf(err error) string {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return core.Code(err)
}

// jsError turns err into a JS Error with a code property.
func jsError(err error) js.Value {
	e := errorClass.New(err.Error(), codeOf(err))
	e.Set("code", codeOf(err))
	return e
}

// panicError turns a recovered panic into an "internal" error and logs the
// stack to the console, so a bug in the runtime fails one call instead of
// killing every client on the page.
func panicError(r any) error {
	msg := "panic"
	switch v := r.(type) {
	case error:
		msg = v.Error()
	case string:
		msg = v
	}
	js.Global().Get("console").Call("error", "lfsync: internal error: "+msg+"\n"+string(debug.Stack()))
	return &codedError{code: "internal", msg: "lfsync: internal error: " + msg}
}
