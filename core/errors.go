package core

import (
	"context"
	"errors"
)

// Error codes returned by Code, the strings the JavaScript API puts on an
// Error's code property.
const (
	CodeInvalid       = "invalid"
	CodeNotFound      = "not_found"
	CodeClosed        = "closed"
	CodeQuotaExceeded = "quota_exceeded"
	CodeUnauthorized  = "unauthorized"
	CodeForbidden     = "forbidden"
	CodeConflict      = "conflict"
	CodeInternal      = "internal"
)

// Engine errors, comparable with errors.Is. Errors that wrap them carry the
// detail.
var (
	// ErrInvalid marks invalid input: a bad id, data that is not a JSON
	// object, a bad query or option.
	ErrInvalid = errors.New("lfsync: invalid input")
	// ErrNotFound marks a document that does not exist.
	ErrNotFound = errors.New("lfsync: not found")
	// ErrUnauthorized marks credentials the server rejected.
	ErrUnauthorized = errors.New("lfsync: unauthorized")
	// ErrForbidden marks an operation the server does not allow.
	ErrForbidden = errors.New("lfsync: forbidden")
	// ErrConflict marks a conflict the engine could not resolve.
	ErrConflict = errors.New("lfsync: conflict")
	// ErrClientClosed is returned by a client after Close.
	ErrClientClosed = errors.New("lfsync: client is closed")
)

// codedError wraps a sentinel with a message saying what failed and why.
type codedError struct {
	kind error
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.kind }

// errorf makes an error that wraps kind; msg says what failed and why.
func errorf(kind error, msg string) error { return &codedError{kind: kind, msg: msg} }

// invalidf makes an ErrInvalid error.
func invalidf(msg string) error { return errorf(ErrInvalid, "lfsync: "+msg) }

// wrapErr prefixes an error with what failed, keeping it comparable.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return &wrappedError{msg: "failed to " + what + ": " + err.Error(), err: err}
}

type wrappedError struct {
	msg string
	err error
}

func (e *wrappedError) Error() string { return e.msg }
func (e *wrappedError) Unwrap() error { return e.err }

// Code classifies an error for the JavaScript API: "invalid", "not_found",
// "closed", "quota_exceeded", "unauthorized", "forbidden", "conflict" or
// "internal". A nil error has the code "".
func Code(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrInvalidBatch), errors.Is(err, ErrInvalidQuery):
		return CodeInvalid
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrClosed), errors.Is(err, ErrClientClosed):
		return CodeClosed
	case errors.Is(err, ErrQuotaExceeded):
		return CodeQuotaExceeded
	case errors.Is(err, ErrUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, ErrForbidden):
		return CodeForbidden
	case errors.Is(err, ErrConflict), errors.Is(err, ErrStale):
		return CodeConflict
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return CodeClosed
	}
	return CodeInternal
}
