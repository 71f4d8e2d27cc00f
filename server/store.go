package server

import (
	"context"
	"errors"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// Appended reports what Append did with one event.
type Appended struct {
	// ID is the event id.
	ID string
	// Sequence is the event's serverSequence: newly assigned, or the one it
	// was stored with before.
	Sequence int64
	// New is false when the event was already stored (a re-push).
	New bool
}

// RepoInfo describes one repository of a namespace.
type RepoInfo struct {
	Name         string `json:"name"`
	LastSequence int64  `json:"lastSequence"`
	Events       int64  `json:"events"`
}

// Store is the server's durable event log, partitioned by namespace (tenant)
// and repository. Backends: server/sqlite, server/postgres; each passes
// server/storetest.
type Store interface {
	// Append stores events in one repository, all or nothing, and returns
	// one Appended per input event, in input order. Events whose id the
	// repository already holds are not stored again. New events get
	// serverSequences that are strictly increasing, in input order, with no
	// gap and no duplicate, even under concurrent Appends. A re-pushed
	// event keeps the content first stored. CreatedAt is kept to the
	// millisecond. Append returns only once the events are durable, and an
	// error means nothing of the batch was stored.
	Append(ctx context.Context, ns, repo string, events []protocol.Event) ([]Appended, error)
	// Latest returns, among events with serverSequence > after, the latest
	// event of each document, ascending by serverSequence, at most limit;
	// more reports whether further such events remain. A limit below 1 is
	// an error in every read that takes one.
	Latest(ctx context.Context, ns, repo string, after int64, limit int) (events []protocol.Event, more bool, err error)
	// LatestSince is Latest with a creation-time cursor: events created
	// after since.
	LatestSince(ctx context.Context, ns, repo string, since time.Time, limit int) (events []protocol.Event, more bool, err error)
	// Range returns up to limit events with serverSequence > after,
	// ascending and unreduced (the fan-out and full catch-up path); more
	// reports whether further events remain.
	Range(ctx context.Context, ns, repo string, after int64, limit int) (events []protocol.Event, more bool, err error)
	// Event returns one event by id, or ErrNotFound.
	Event(ctx context.Context, ns, repo, id string) (protocol.Event, error)
	// ByDataID returns the latest event of one document, or ErrNotFound.
	ByDataID(ctx context.Context, ns, repo, dataID string) (protocol.Event, error)
	// LastSequence returns a repository's highest serverSequence, 0 if empty.
	LastSequence(ctx context.Context, ns, repo string) (int64, error)
	// Repositories lists a namespace's repositories by name.
	Repositories(ctx context.Context, ns string) ([]RepoInfo, error)
	// Close flushes and releases the store.
	Close() error
}

// Advance says that a repository's log grew to Sequence, possibly through
// another server node.
type Advance struct {
	Namespace  string
	Repository string
	Sequence   int64
}

// Watcher is implemented by stores shared by several server nodes: it
// reports appends made by any node, so the hub can fan them out. A
// notification may be lost; the hub recovers by reading Range from the last
// sequence it sent.
type Watcher interface {
	// Watch delivers advances until ctx ends.
	Watch(ctx context.Context) (<-chan Advance, error)
}

// ErrNotFound is returned when an event or document does not exist.
var ErrNotFound = errors.New("lfsync: not found")
