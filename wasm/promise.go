//go:build js && wasm

package main

import (
	"context"
	"syscall/js"
)

var promiseClass = js.Global().Get("Promise")

// promise returns a JS Promise settled with fn's result. fn runs on its own
// goroutine, because a JS callback that blocks would block the page's event
// loop (and IndexedDB with it). A result must be something js.ValueOf takes
// (nil, bool, a number, a string, js.Value); an error rejects the Promise
// with jsError, and a panic rejects it with code "internal". The executor
// js.Func is released as soon as the Promise constructor has called it.
func promise(fn func() (any, error)) js.Value {
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go settle(fn, resolve, reject)
		return nil
	})
	defer executor.Release()
	return promiseClass.New(executor)
}

// settle runs fn and resolves or rejects with its outcome.
func settle(fn func() (any, error), resolve, reject js.Value) {
	v, err := call(func() (any, error) {
		v, err := fn()
		if err != nil {
			return nil, err
		}
		return js.ValueOf(v), nil // converted here, where a panic is recovered
	})
	if err != nil {
		reject.Invoke(jsError(err))
		return
	}
	resolve.Invoke(v)
}

// call runs fn, turning a panic into an "internal" error.
func call(fn func() (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, panicError(r)
		}
	}()
	return fn()
}

// immediate runs fn in the calling JS callback, for methods that never
// block, and returns its result, or a JS Error the JS package throws.
func immediate(fn func() (any, error)) any {
	v, err := call(func() (any, error) {
		v, err := fn()
		if err != nil {
			return nil, err
		}
		return js.ValueOf(v), nil
	})
	if err != nil {
		return jsError(err)
	}
	return v
}

// invoke calls a JS function, turning an exception it throws into an error.
func invoke(fn js.Value, args ...any) (js.Value, error) {
	return try(func() js.Value { return fn.Invoke(args...) })
}

// try runs f, turning a JS exception it raises into an error.
func try(f func() js.Value) (v js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = js.Undefined(), jsException(r)
		}
	}()
	return f(), nil
}

// jsException describes an exception thrown by a JS callback.
func jsException(r any) error {
	if e, ok := r.(js.Error); ok {
		return &codedError{code: "internal", msg: "JavaScript callback threw: " + e.Error()}
	}
	return panicError(r)
}

// await waits for a JS value to settle when it is a thenable, and returns
// it as is otherwise. The two js.Funcs it attaches are released once the
// promise settles, even when ctx ended first.
func await(ctx context.Context, v js.Value) (js.Value, error) {
	if v.Type() != js.TypeObject || v.Get("then").Type() != js.TypeFunction {
		return v, nil
	}
	type outcome struct {
		v   js.Value
		err error
	}
	done := make(chan outcome, 1)
	var onOK, onErr js.Func
	release := func() {
		onOK.Release()
		onErr.Release()
	}
	onOK = js.FuncOf(func(_ js.Value, args []js.Value) any {
		release()
		done <- outcome{v: arg(args, 0)}
		return nil
	})
	onErr = js.FuncOf(func(_ js.Value, args []js.Value) any {
		release()
		reason := arg(args, 0)
		msg := "promise rejected"
		if reason.Type() == js.TypeObject && reason.Get("message").Type() == js.TypeString {
			msg = reason.Get("message").String()
		} else if reason.Type() == js.TypeString {
			msg = reason.String()
		}
		done <- outcome{err: &codedError{code: "internal", msg: msg}}
		return nil
	})
	if _, err := try(func() js.Value { return v.Call("then", onOK, onErr) }); err != nil {
		release()
		return js.Undefined(), err
	}
	select {
	case o := <-done:
		return o.v, o.err
	case <-ctx.Done():
		return js.Undefined(), ctx.Err()
	}
}

// arg returns args[i], or undefined when the caller passed fewer.
func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

// stringArg returns args[i] when it is a string.
func stringArg(args []js.Value, i int, name string) (string, error) {
	v := arg(args, i)
	if v.Type() != js.TypeString {
		return "", invalid(name + " must be a string")
	}
	return v.String(), nil
}

// funcArg returns args[i] when it is a function.
func funcArg(args []js.Value, i int, name string) (js.Value, error) {
	v := arg(args, i)
	if v.Type() != js.TypeFunction {
		return js.Undefined(), invalid(name + " must be a function")
	}
	return v, nil
}

// boolArg returns args[i] when it is a boolean, false when it is undefined.
func boolArg(args []js.Value, i int, name string) (bool, error) {
	switch v := arg(args, i); v.Type() {
	case js.TypeUndefined, js.TypeNull:
		return false, nil
	case js.TypeBoolean:
		return v.Bool(), nil
	}
	return false, invalid(name + " must be a boolean")
}
