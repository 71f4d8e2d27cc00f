//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall/js"
	"time"

	"github.com/lfsync/lfsync/core"
)

// options is createClient's options object as the JS package serializes
// it. Durations are in milliseconds. Functions do not cross as JSON: they
// are properties of createClient's second argument, the hooks object (see
// parseOptions).
type options struct {
	URL            string            `json:"url"`
	Token          string            `json:"token"`
	Headers        map[string]string `json:"headers"`
	ClientID       string            `json:"clientId"`
	Repositories   []string          `json:"repositories"`
	Database       string            `json:"database"`
	Conflict       string            `json:"conflict"`
	Reconnect      *reconnectOptions `json:"reconnect"`
	Heartbeat      *heartbeatOptions `json:"heartbeat"`
	ConnectTimeout float64           `json:"connectTimeout"`
	BatchSize      int               `json:"batchSize"`
	PageSize       int               `json:"pageSize"`
	AutoStart      *bool             `json:"autoStart"`
}

type reconnectOptions struct {
	Initial     float64 `json:"initial"`
	Max         float64 `json:"max"`
	Multiplier  float64 `json:"multiplier"`
	MaxAttempts int     `json:"maxAttempts"`
}

type heartbeatOptions struct {
	Interval float64 `json:"interval"`
	Timeout  float64 `json:"timeout"`
}

// defaultDatabase is the IndexedDB database used when options.database is
// empty.
const defaultDatabase = "lfsync"

// parseOptions reads createClient's arguments into engine options, the
// database name and whether to start syncing at once. hooks may hold
// functions: resolve (the conflict function, with conflict "custom" or
// unset), refreshToken, onEventError and log.
func parseOptions(raw string, hooks js.Value) (opts core.Options, database string, autoStart bool, err error) {
	var resolve, refresh, onEventError, logf js.Value
	switch hooks.Type() {
	case js.TypeObject:
		resolve, refresh = hooks.Get("resolve"), hooks.Get("refreshToken")
		onEventError, logf = hooks.Get("onEventError"), hooks.Get("log")
	case js.TypeUndefined, js.TypeNull:
	default:
		return opts, "", false, invalid("hooks must be an object")
	}
	var o options
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return opts, "", false, invalid("options are not valid: " + err.Error())
	}
	if o.ConnectTimeout < 0 || o.BatchSize < 0 || o.PageSize < 0 {
		return opts, "", false, invalid("options.connectTimeout, batchSize and pageSize must not be negative")
	}
	opts = core.Options{
		URL:            o.URL,
		Token:          o.Token,
		Headers:        o.Headers,
		ClientID:       o.ClientID,
		Repositories:   o.Repositories,
		Conflict:       core.ConflictStrategy(o.Conflict),
		ConnectTimeout: millis(o.ConnectTimeout),
		BatchSize:      o.BatchSize,
		PageSize:       o.PageSize,
	}
	if r := o.Reconnect; r != nil {
		if r.Initial < 0 || r.Max < 0 || r.Multiplier < 0 || r.MaxAttempts < 0 {
			return opts, "", false, invalid("options.reconnect values must not be negative")
		}
		opts.Reconnect = core.Backoff{Initial: millis(r.Initial), Max: millis(r.Max), Multiplier: r.Multiplier, MaxAttempts: r.MaxAttempts}
	}
	if h := o.Heartbeat; h != nil {
		if h.Interval < 0 || h.Timeout < 0 {
			return opts, "", false, invalid("options.heartbeat values must not be negative")
		}
		opts.Heartbeat = core.Heartbeat{Interval: millis(h.Interval), Timeout: millis(h.Timeout)}
	}
	switch resolve.Type() {
	case js.TypeFunction:
		if o.Conflict != "" && o.Conflict != "custom" {
			return opts, "", false, invalid("options.conflict is " + o.Conflict + " but a conflict function was given")
		}
		opts.Conflict = "custom"
		opts.Resolve = resolver(resolve)
	case js.TypeUndefined, js.TypeNull:
		if o.Conflict == "custom" {
			return opts, "", false, invalid(`options.conflict "custom" needs a conflict function`)
		}
	default:
		return opts, "", false, invalid("the conflict function must be a function")
	}
	switch refresh.Type() {
	case js.TypeFunction:
		opts.RefreshToken = refresher(refresh)
	case js.TypeUndefined, js.TypeNull:
	default:
		return opts, "", false, invalid("options.refreshToken must be a function")
	}
	switch onEventError.Type() {
	case js.TypeFunction:
		opts.OnEventError = func(repo, eventID string, err error) { invoke(onEventError, repo, eventID, err.Error()) }
	case js.TypeUndefined, js.TypeNull:
	default:
		return opts, "", false, invalid("options.onEventError must be a function")
	}
	switch logf.Type() {
	case js.TypeFunction:
		opts.Logf = func(format string, args ...any) { invoke(logf, fmt.Sprintf(format, args...)) }
	case js.TypeUndefined, js.TypeNull:
	default:
		return opts, "", false, invalid("options.log must be a function")
	}
	database = o.Database
	if database == "" {
		database = defaultDatabase
	}
	autoStart = o.AutoStart == nil || *o.AutoStart
	return opts, database, autoStart, nil
}

// millis converts milliseconds to a duration.
func millis(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// resolver adapts a JS conflict function to the engine. The JS package
// passes a wrapper taking and returning JSON strings:
// (localJSON|null, remoteJSON|null) => mergedJSON, null meaning deleted.
// It runs synchronously on the engine's goroutine.
func resolver(fn js.Value) core.ResolveFunc {
	return func(local, remote json.RawMessage) (json.RawMessage, error) {
		v, err := invoke(fn, jsonOrNull(local), jsonOrNull(remote))
		if err != nil {
			return nil, errors.New("conflict function failed: " + err.Error())
		}
		if v.Type() != js.TypeString {
			return nil, errors.New("conflict function returned no document")
		}
		return json.RawMessage(v.String()), nil
	}
}

// jsonOrNull passes a document to JavaScript as a JSON string, or null
// when there is none.
func jsonOrNull(doc json.RawMessage) any {
	if doc == nil {
		return nil
	}
	return string(doc)
}

// refresher adapts a JS token function, returning a string or a Promise of
// one, to the engine's RefreshToken.
func refresher(fn js.Value) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		v, err := invoke(fn)
		if err != nil {
			return "", errors.New("refreshToken failed: " + err.Error())
		}
		if v, err = await(ctx, v); err != nil {
			return "", errors.New("refreshToken failed: " + err.Error())
		}
		if v.Type() != js.TypeString {
			return "", errors.New("refreshToken returned no token")
		}
		return v.String(), nil
	}
}
