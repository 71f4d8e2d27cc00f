package core

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// Stamp orders writes to a document: by time, then by event id, so every
// replica picks the same winner between two writes made in the same
// millisecond.
type Stamp struct {
	At      time.Time `json:"at"`
	EventID string    `json:"eventId"`
}

// Doc is a document as the local store holds it. A deleted document stays as
// a tombstone so a late update does not resurrect it.
type Doc struct {
	// ID is the document id, unique within its repository.
	ID string `json:"id"`
	// Data is the document as a JSON object; nil when Deleted.
	Data json.RawMessage `json:"data,omitempty"`
	// Deleted marks a tombstone.
	Deleted bool `json:"deleted,omitempty"`
	// Version is the stamp of the event that last wrote the document.
	Version Stamp `json:"version"`
	// Fields holds per-field stamps, kept for the fieldMerge strategy.
	Fields map[string]Stamp `json:"fields,omitempty"`
	// Sequence is the serverSequence of the last remote event applied, 0 if
	// none.
	Sequence int64 `json:"seq,omitempty"`
}

// DocWrite puts a document (or tombstone) into a repository.
type DocWrite struct {
	Repo string
	Doc  Doc
}

// Status is an outbox event's sync status.
type Status int

// Outbox statuses. StatusOK is final: once acked, an event never returns to
// pending.
const (
	StatusPending Status = 0
	StatusOK      Status = 1
	StatusFailed  Status = 2
)

// OutboxEvent is a local change waiting for, or done with, the server.
type OutboxEvent struct {
	Repo   string         `json:"repo"`
	Event  protocol.Event `json:"event"`
	Status Status         `json:"status"`
	// Order is assigned by the store on insert: strictly increasing, the
	// order in which events are pushed.
	Order int64 `json:"order"`
	// Error says why a failed event failed.
	Error string `json:"error,omitempty"`
}

// StatusUpdate moves an outbox event to a new status. Updates that would move
// an acked (StatusOK) event anywhere else are ignored, as are updates to
// events the outbox does not hold.
type StatusUpdate struct {
	EventID string
	Status  Status
	Error   string
}

// Batch is one atomic write to a store: all of it lands or none of it.
type Batch struct {
	// Docs are put, replacing any document with the same repo and id.
	Docs []DocWrite
	// Events are appended to the outbox; the store assigns Order. An event
	// whose id the outbox already holds is left as it is.
	Events []OutboxEvent
	// Statuses update outbox events already stored (or added by this batch).
	Statuses []StatusUpdate
	// Remove deletes outbox events by id (pruning acked events).
	Remove []string
	// Cursors sets the pull cursor of each repository named.
	Cursors map[string]int64
	// Config sets configuration keys.
	Config map[string]string
	// Expect is the batch's precondition: the generation (see
	// Store.Generation) each repository named must have when the batch is
	// applied. On any mismatch the whole batch fails with ErrStale and
	// nothing of it is stored. Writers that read documents and write what
	// they computed from them set it, so that a write computed from a read
	// that another writer (another tab) overtook is detected and redone.
	Expect map[string]uint64
	// ExpectDocs is a finer precondition: each document named must be as
	// the writer read it (SameDoc), or absent when Exists is false. On any
	// mismatch the whole batch fails with ErrStale and nothing is stored. A
	// writer that read only a few documents sets it instead of Expect, so
	// that writes of other documents of the repository do not refuse it.
	// Documents put by earlier batches of the same group commit count.
	ExpectDocs []DocExpect
}

// DocExpect is a precondition on one document: absent (Exists false), or
// equal to Doc.
type DocExpect struct {
	Repo   string
	ID     string
	Exists bool
	Doc    Doc
}

// SameDoc reports whether two documents are the same stored state: id,
// data bytes, tombstone flag, version, per-field stamps and sequence.
func SameDoc(a, b Doc) bool {
	if a.ID != b.ID || a.Deleted != b.Deleted || a.Sequence != b.Sequence ||
		!sameStamp(a.Version, b.Version) || string(a.Data) != string(b.Data) || len(a.Fields) != len(b.Fields) {
		return false
	}
	for k, st := range a.Fields {
		if ot, ok := b.Fields[k]; !ok || !sameStamp(st, ot) {
			return false
		}
	}
	return true
}

func sameStamp(a, b Stamp) bool { return a.EventID == b.EventID && a.At.Equal(b.At) }

// Matches reports whether a document read now (d, exists) satisfies e.
func (e DocExpect) Matches(d Doc, exists bool) bool {
	if !e.Exists || !exists {
		return e.Exists == exists
	}
	return SameDoc(e.Doc, d)
}

// Empty reports whether the batch writes nothing. An empty batch may still
// carry a precondition, which Write checks.
func (b *Batch) Empty() bool {
	return len(b.Docs) == 0 && len(b.Events) == 0 && len(b.Statuses) == 0 &&
		len(b.Remove) == 0 && len(b.Cursors) == 0 && len(b.Config) == 0
}

// NextGenerations returns the generation of each repository named in
// b.Expect after b was written successfully: one more than expected when
// b puts documents of the repository, as expected otherwise.
func (b *Batch) NextGenerations() map[string]uint64 {
	if len(b.Expect) == 0 {
		return nil
	}
	next := make(map[string]uint64, len(b.Expect))
	for repo, gen := range b.Expect {
		next[repo] = gen
	}
	for _, w := range b.Docs {
		if gen, ok := b.Expect[w.Repo]; ok {
			next[w.Repo] = gen + 1
		}
	}
	return next
}

// Store is the engine's local persistence: documents, the outbox, pull
// cursors and configuration. Implementations: MemoryStore here, the
// IndexedDB store in idb. Every implementation passes core/storetest.
type Store interface {
	// Write applies a batch atomically.
	Write(ctx context.Context, b *Batch) error
	// Doc returns one document (tombstones included).
	Doc(ctx context.Context, repo, id string) (Doc, bool, error)
	// Docs returns every document of a repository, tombstones included,
	// ordered by id.
	Docs(ctx context.Context, repo string) ([]Doc, error)
	// Pending returns up to limit pending outbox events of every repository,
	// by Order; limit <= 0 means all.
	Pending(ctx context.Context, limit int) ([]OutboxEvent, error)
	// PendingCount counts pending outbox events.
	PendingCount(ctx context.Context) (int, error)
	// Acked returns the ids of up to limit acked (StatusOK) outbox events,
	// oldest (lowest Order) first; limit <= 0 means all.
	Acked(ctx context.Context, limit int) ([]string, error)
	// Outbox returns one outbox event by event id.
	Outbox(ctx context.Context, eventID string) (OutboxEvent, bool, error)
	// Cursor returns a repository's pull cursor, 0 if never set.
	Cursor(ctx context.Context, repo string) (int64, error)
	// Config returns a configuration value.
	Config(ctx context.Context, key string) (string, bool, error)
	// Generation returns a repository's generation: 0 until documents of it
	// are first written, then advanced by exactly one by every Write that
	// puts documents of it (however many), whichever handle of the store
	// (tab) wrote. Batch.Expect checks it inside the atomic write.
	Generation(ctx context.Context, repo string) (uint64, error)
	// Close releases the store; later calls fail with ErrClosed.
	Close() error
}

// Store errors, comparable with errors.Is.
var (
	// ErrClosed is returned by a store after Close.
	ErrClosed = errors.New("lfsync: store is closed")
	// ErrQuotaExceeded is returned when the storage quota is full; nothing
	// of the failed write was stored.
	ErrQuotaExceeded = errors.New("lfsync: storage quota exceeded")
	// ErrStale is returned by Write when a repository's generation is not
	// the one Batch.Expect names: another writer changed its documents since
	// they were read. Nothing of the batch was stored.
	ErrStale = errors.New("lfsync: the batch was computed from a stale read")
)
