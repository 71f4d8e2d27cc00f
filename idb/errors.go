//go:build js && wasm

package idb

import (
	"context"
	"errors"
	"strings"
	"syscall/js"

	goidb "github.com/hack-pad/go-indexeddb/idb"

	"github.com/lfsync/lfsync/core"
)

// Exception is a JavaScript exception, usually a DOMException, as a Go error.
// It matches core.ErrQuotaExceeded with errors.Is when Name is
// "QuotaExceededError", and go-indexeddb's DOMException of the same name
// (errors.Is(err, goidb.NewDOMException("ConstraintError"))).
type Exception struct {
	// Name is the exception's name: "QuotaExceededError",
	// "ConstraintError", "TransactionInactiveError", "AbortError", ...
	Name string
	// Message is the browser's description.
	Message string
}

// Error returns "Name: Message".
func (e *Exception) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Name + ": " + e.Message
}

// Is makes a QuotaExceededError match core.ErrQuotaExceeded, and every
// exception match go-indexeddb's DOMException of its name.
func (e *Exception) Is(target error) bool {
	if d, ok := target.(goidb.DOMException); ok {
		return d.Is(goidb.NewDOMException(e.Name))
	}
	return target == core.ErrQuotaExceeded && e.Name == "QuotaExceededError"
}

// exception turns an error from go-indexeddb into an *Exception: a
// DOMException it read from a request or transaction, or a JavaScript
// exception thrown by a call, which safejs returns as a js.Error wrapped
// with a stack trace. Other errors are returned as they are.
func exception(err error) error {
	if err == nil {
		return nil
	}
	var thrown js.Error
	if errors.As(err, &thrown) {
		return exceptionError(thrown.Value)
	}
	var dom goidb.DOMException
	if errors.As(err, &dom) {
		// DOMException keeps its fields to itself; Error() is "name" or
		// "name: message", and names have no colon.
		name, msg, _ := strings.Cut(dom.Error(), ": ")
		return &Exception{Name: name, Message: msg}
	}
	return err
}

// ExceptionError turns a JavaScript exception (a DOMException or an Error)
// into an *Exception; nil for null or undefined.
func ExceptionError(v js.Value) error {
	return exceptionError(v)
}

func exceptionError(v js.Value) error {
	switch v.Type() {
	case js.TypeNull, js.TypeUndefined:
		return nil
	case js.TypeObject, js.TypeFunction:
		e := &Exception{Name: stringField(v, "name"), Message: stringField(v, "message")}
		if e.Name == "" {
			e.Name = "Error"
		}
		return e
	}
	return &Exception{Name: "Error", Message: v.String()}
}

func stringField(v js.Value, key string) string {
	f := v.Get(key)
	if f.Type() != js.TypeString {
		return ""
	}
	return f.String()
}

// ErrVersionChange is returned by a store whose connection was closed because
// another tab upgraded or deleted the database (or the browser closed it);
// it matches core.ErrClosed too. Reloading the page opens the new version.
var ErrVersionChange error = &closedError{msg: "idb: database connection closed: another tab upgraded or deleted the database; reload the page"}

// errConnectionLost is returned after the browser closed the connection
// (storage cleared, disk error).
var errConnectionLost error = &closedError{msg: "idb: database connection closed by the browser"}

// closedError is a reason for a closed store that matches core.ErrClosed.
type closedError struct{ msg string }

func (e *closedError) Error() string        { return e.msg }
func (e *closedError) Is(target error) bool { return target == core.ErrClosed }

// opError says which store operation failed.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return "idb: failed to " + e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// failed wraps err with the operation that failed, leaving closed-store and
// context errors as they are.
func failed(op string, err error) error {
	if err == nil || errors.Is(err, core.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &opError{op: op, err: err}
}
