package core

import (
	"context"
	"encoding/json"
	"time"
)

// ConflictStrategy says how a remote change is applied to a document that
// changed locally; see docs/architecture.md for each one's guarantees.
type ConflictStrategy string

// The conflict strategies.
const (
	// LastWriteWins keeps the write with the later stamp (creation time,
	// then event id): every replica picks the same winner.
	LastWriteWins ConflictStrategy = "lastWriteWins"
	// ServerWins keeps the write the server sequenced last; a pending local
	// change not yet sent is superseded by a remote one.
	ServerWins ConflictStrategy = "serverWins"
	// ClientWins keeps a pending local change over remote ones and sends it;
	// replicas may differ until it has been applied everywhere.
	ClientWins ConflictStrategy = "clientWins"
	// FieldMerge applies last-write-wins per top-level field, so concurrent
	// edits of different fields both survive.
	FieldMerge ConflictStrategy = "fieldMerge"
	// Custom calls Options.Resolve for a remote change to a document with a
	// pending local change and writes the result as a new local change,
	// unless the winning side (by stamp) already holds it.
	Custom ConflictStrategy = "custom"
)

// ResolveFunc merges a local document with a remote one; either is nil when
// that side deleted the document. Returning nil (or JSON null) deletes it.
// Replicas settle when it is deterministic, commutative, associative and
// idempotent.
type ResolveFunc func(local, remote json.RawMessage) (json.RawMessage, error)

// Heartbeat configures the client's pings: one every Interval, and a socket
// that sends nothing for Timeout after a ping is replaced. Zero fields mean
// 25s and 10s.
type Heartbeat struct {
	Interval time.Duration
	Timeout  time.Duration
}

// Defaults of Options.
const (
	DefaultHeartbeatInterval = 25 * time.Second
	DefaultHeartbeatTimeout  = 10 * time.Second
	DefaultConnectTimeout    = 10 * time.Second
	DefaultBatchSize         = 500
	DefaultPageSize          = 500
	// DefaultMaxBatchBytes keeps push frames well under the server's
	// default 1 MiB frame limit.
	DefaultMaxBatchBytes = 512 << 10
	// DefaultMaxEventBytes matches the server's default frame limit (1
	// MiB) less the frame's envelope.
	DefaultMaxEventBytes = 1<<20 - 1024
	// MaxBatchSize bounds BatchSize and PageSize.
	MaxBatchSize = 10000
)

// Options configures a Client.
type Options struct {
	// URL is the server's WebSocket endpoint, e.g. ws://host:port/sync.
	URL string
	// Token is sent in the auth frame.
	Token string
	// Headers are spread into the auth frame as top-level keys.
	Headers map[string]string
	// ClientID identifies this replica; by default one is generated once
	// and persisted in the store's configuration.
	ClientID string
	// Repositories are synced from the start; Client.Repository adds more.
	Repositories []string
	// Conflict is the conflict strategy, LastWriteWins by default.
	Conflict ConflictStrategy
	// Resolve merges conflicting documents; required with Custom.
	Resolve ResolveFunc
	// Reconnect configures the reconnect backoff.
	Reconnect Backoff
	// Heartbeat configures pings.
	Heartbeat Heartbeat
	// ConnectTimeout bounds dialing and authenticating, 10s by default.
	ConnectTimeout time.Duration
	// BatchSize is the most events per push_events_batch, 500 by default.
	BatchSize int
	// PageSize is the request_events limit, 500 by default.
	PageSize int
	// MaxBatchBytes bounds the estimated size of one push frame, 512 KiB
	// by default (a larger event goes alone). When the server still closes
	// the socket for a frame too big, the client halves the bound, and an
	// event too big on its own is marked failed.
	MaxBatchBytes int
	// MaxEventBytes is the largest event the client tries to push, about
	// 1 MiB (the server's default frame limit) by default: a larger event
	// is marked failed at once instead of being re-sent forever.
	MaxEventBytes int
	// RefreshToken is called when the server rejects the credentials; a new
	// token reconnects, an error is retried with backoff.
	RefreshToken func(ctx context.Context) (token string, err error)
	// OnEventError is told about every remote event that could not be
	// applied (malformed or rejected) and was skipped. It runs on the
	// engine's goroutine and must not block.
	OnEventError func(repo string, eventID string, err error)
	// Logf receives diagnostic messages; nil discards them.
	Logf func(format string, args ...any)
}

// validate checks options and fills defaults.
func (o Options) validate() (Options, error) {
	switch o.Conflict {
	case "":
		o.Conflict = LastWriteWins
	case LastWriteWins, ServerWins, ClientWins, FieldMerge:
	case Custom:
		if o.Resolve == nil {
			return o, invalidf("conflict strategy custom needs a Resolve function")
		}
	default:
		return o, invalidf("unknown conflict strategy " + string(o.Conflict))
	}
	if o.Heartbeat.Interval <= 0 {
		o.Heartbeat.Interval = DefaultHeartbeatInterval
	}
	if o.Heartbeat.Timeout <= 0 {
		o.Heartbeat.Timeout = DefaultHeartbeatTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BatchSize > MaxBatchSize {
		o.BatchSize = MaxBatchSize
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = DefaultMaxEventBytes
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.PageSize > MaxBatchSize {
		o.PageSize = MaxBatchSize
	}
	if len(o.ClientID) > 256 {
		return o, invalidf("client id is longer than 256 bytes")
	}
	for _, r := range o.Repositories {
		if err := validateRepoName(r); err != nil {
			return o, err
		}
	}
	o.Reconnect = o.Reconnect.withDefaults()
	o.Headers = cloneHeaders(o.Headers)
	return o, nil
}

// validateRepoName checks a repository name.
func validateRepoName(name string) error {
	if name == "" {
		return invalidf("repository name is empty")
	}
	if len(name) > 256 {
		return invalidf("repository name is longer than 256 bytes")
	}
	return nil
}

func cloneHeaders(h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = v
	}
	return out
}

// WriteOption changes how a local write is made.
type WriteOption func(*writeConfig)

type writeConfig struct {
	localOnly bool
}

// LocalOnly writes the document locally without an outbox event: the change
// is never synced (needSync: false).
func LocalOnly() WriteOption { return func(c *writeConfig) { c.localOnly = true } }

// Put is one document of an UpsertMany.
type Put struct {
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}
