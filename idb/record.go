//go:build js && wasm

package idb

// Records cross the Go/JS boundary as JSON text: one string per document and
// per outbox event. Building a JS object field by field costs a Go→JS call
// per field (and a nested Data object would need JSON.parse anyway), while a
// string is one call and IndexedDB clones strings cheaply. Reads go the same
// way in bulk: Docs joins the stored strings in JS and decodes them with one
// json.Unmarshal; outbox reads JSON.stringify the records. The encoders below
// append to one buffer per batch without reflection, and copy Data and Meta
// verbatim (json.Marshal would compact and re-escape them).

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/protocol"
)

// appendDoc appends d as JSON in the shape of core.Doc's JSON tags, so
// decoding is json.Unmarshal into core.Doc.
func appendDoc(b []byte, d *core.Doc) []byte {
	b = append(b, `{"id":`...)
	b = protocol.AppendString(b, d.ID)
	if len(d.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, d.Data...)
	}
	if d.Deleted {
		b = append(b, `,"deleted":true`...)
	}
	b = append(b, `,"version":`...)
	b = appendStamp(b, d.Version)
	if len(d.Fields) > 0 {
		b = append(b, `,"fields":{`...)
		first := true
		for k, st := range d.Fields {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = protocol.AppendString(b, k)
			b = append(b, ':')
			b = appendStamp(b, st)
		}
		b = append(b, '}')
	}
	if d.Sequence != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, d.Sequence, 10)
	}
	return append(b, '}')
}

func appendStamp(b []byte, s core.Stamp) []byte {
	b = append(b, `{"at":`...)
	b = appendTime(b, s.At)
	b = append(b, `,"eventId":`...)
	b = protocol.AppendString(b, s.EventID)
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// eventRecord is the stored form of a protocol.Event: every field kept
// exactly (the wire form keeps milliseconds only and validates on decode).
type eventRecord struct {
	ID        string             `json:"id"`
	Operation protocol.Operation `json:"op"`
	CreatedAt time.Time          `json:"at"`
	DataID    string             `json:"dataId"`
	Data      json.RawMessage    `json:"data,omitempty"`
	Sequence  int64              `json:"seq,omitempty"`
	Meta      json.RawMessage    `json:"meta,omitempty"`
}

// appendEvent appends e as the JSON of an eventRecord.
func appendEvent(b []byte, e *protocol.Event) []byte {
	b = append(b, `{"id":`...)
	b = protocol.AppendString(b, e.ID)
	b = append(b, `,"op":`...)
	b = strconv.AppendInt(b, int64(e.Operation), 10)
	b = append(b, `,"at":`...)
	b = appendTime(b, e.CreatedAt)
	b = append(b, `,"dataId":`...)
	b = protocol.AppendString(b, e.DataID)
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	}
	if e.ServerSequence != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, e.ServerSequence, 10)
	}
	if len(e.Meta) > 0 {
		b = append(b, `,"meta":`...)
		b = append(b, e.Meta...)
	}
	return append(b, '}')
}

func (r *eventRecord) event() protocol.Event {
	return protocol.Event{
		ID:             r.ID,
		Operation:      r.Operation,
		CreatedAt:      r.CreatedAt,
		DataID:         r.DataID,
		Data:           r.Data,
		ServerSequence: r.Sequence,
		Meta:           r.Meta,
	}
}

// outboxRecord is an outbox object as JSON.stringify renders it.
type outboxRecord struct {
	ID     string      `json:"id"`
	Order  int64       `json:"order"`
	Status core.Status `json:"status"`
	Error  string      `json:"error"`
	Repo   string      `json:"repo"`
	Event  string      `json:"event"`
}

func (r *outboxRecord) outboxEvent() (core.OutboxEvent, error) {
	var ev eventRecord
	if err := json.Unmarshal([]byte(r.Event), &ev); err != nil {
		return core.OutboxEvent{}, &opError{op: "decode outbox event " + strconv.Quote(r.ID), err: err}
	}
	return core.OutboxEvent{Repo: r.Repo, Event: ev.event(), Status: r.Status, Order: r.Order, Error: r.Error}, nil
}

// validTime reports whether t survives RFC 3339 text: years 0 to 9999.
func validTime(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}
