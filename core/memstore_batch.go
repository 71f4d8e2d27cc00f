package core

import (
	"errors"
	"strconv"

	"github.com/lfsync/lfsync/core/protocol"
)

// ErrInvalidBatch is wrapped by the error a store's Write returns for a batch
// that ValidateBatch rejects; nothing of such a batch is stored.
var ErrInvalidBatch = errors.New("lfsync: invalid batch")

// invalidBatchError says which element of a batch is wrong and why.
type invalidBatchError struct{ msg string }

func (e *invalidBatchError) Error() string { return ErrInvalidBatch.Error() + ": " + e.msg }
func (e *invalidBatchError) Unwrap() error { return ErrInvalidBatch }

func memBatchErr(kind string, i int, msg string) error {
	return &invalidBatchError{msg: kind + "[" + strconv.Itoa(i) + "]: " + msg}
}

// ValidateBatch reports what is wrong with a batch, or nil. Every Store's
// Write calls it before writing anything, so all stores accept and refuse the
// same batches. A batch is invalid when
//   - a document has no repository, no id, an id longer than
//     protocol.MaxIDLength, or (when not a tombstone) no data;
//   - an event has no repository, fails protocol.Event.Validate, or has an
//     unknown status;
//   - a status update has no event id or an unknown status;
//   - a cursor has no repository or is negative;
//   - a config key is empty;
//   - a precondition (Expect, ExpectDocs) has no repository or document id.
//
// Removing or updating an id the outbox does not hold is not an error. A nil
// batch is valid and writes nothing. The error wraps ErrInvalidBatch.
func ValidateBatch(b *Batch) error {
	if b == nil {
		return nil
	}
	for i, w := range b.Docs {
		switch {
		case w.Repo == "":
			return memBatchErr("docs", i, "repository is missing")
		case w.Doc.ID == "":
			return memBatchErr("docs", i, "document id is missing")
		case len(w.Doc.ID) > protocol.MaxIDLength:
			return memBatchErr("docs", i, "document id is longer than 256 bytes")
		case !w.Doc.Deleted && len(w.Doc.Data) == 0:
			return memBatchErr("docs", i, "document "+strconv.Quote(w.Doc.ID)+" has no data")
		}
	}
	for i, e := range b.Events {
		if e.Repo == "" {
			return memBatchErr("events", i, "repository is missing")
		}
		if err := e.Event.Validate(); err != nil {
			return memBatchErr("events", i, err.Error())
		}
		if !memValidStatus(e.Status) {
			return memBatchErr("events", i, "unknown status "+strconv.Itoa(int(e.Status)))
		}
	}
	for i, u := range b.Statuses {
		if u.EventID == "" {
			return memBatchErr("statuses", i, "event id is missing")
		}
		if !memValidStatus(u.Status) {
			return memBatchErr("statuses", i, "unknown status "+strconv.Itoa(int(u.Status)))
		}
	}
	for repo, seq := range b.Cursors {
		if repo == "" {
			return &invalidBatchError{msg: "cursor: repository is missing"}
		}
		if seq < 0 {
			return &invalidBatchError{msg: "cursor of " + strconv.Quote(repo) + " is negative"}
		}
	}
	for key := range b.Config {
		if key == "" {
			return &invalidBatchError{msg: "config: key is missing"}
		}
	}
	for repo := range b.Expect {
		if repo == "" {
			return &invalidBatchError{msg: "expect: repository is missing"}
		}
	}
	for i, e := range b.ExpectDocs {
		switch {
		case e.Repo == "":
			return memBatchErr("expectDocs", i, "repository is missing")
		case e.ID == "":
			return memBatchErr("expectDocs", i, "document id is missing")
		}
	}
	return nil
}

// StaleError is the error of a Write whose precondition failed: Repo's
// generation was Have, not Want. It matches ErrStale.
type StaleError struct {
	Repo       string
	Want, Have uint64
}

func (e *StaleError) Error() string {
	return ErrStale.Error() + ": repository " + strconv.Quote(e.Repo) + " is at generation " +
		strconv.FormatUint(e.Have, 10) + ", the batch expects " + strconv.FormatUint(e.Want, 10)
}

// DocStaleError is the error of a Write whose document precondition failed:
// Repo/ID is not as the batch expects. It matches ErrStale.
type DocStaleError struct{ Repo, ID string }

func (e *DocStaleError) Error() string {
	return ErrStale.Error() + ": document " + strconv.Quote(e.ID) + " of " + strconv.Quote(e.Repo) + " changed since it was read"
}

// Unwrap returns ErrStale.
func (e *DocStaleError) Unwrap() error { return ErrStale }

// Unwrap returns ErrStale.
func (e *StaleError) Unwrap() error { return ErrStale }

func memValidStatus(s Status) bool {
	return s == StatusPending || s == StatusOK || s == StatusFailed
}
