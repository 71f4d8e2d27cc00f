package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Operation is the kind of change an event records.
type Operation int

// The operations, numbered as on the wire.
const (
	OpInsert Operation = 0
	OpUpdate Operation = 1
	OpDelete Operation = 2
)

// String returns the operation's name as the Dart client spells it.
func (o Operation) String() string {
	switch o {
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return "operation(" + strconv.Itoa(int(o)) + ")"
}

// Valid reports whether o is one of the three known operations.
func (o Operation) Valid() bool { return o >= OpInsert && o <= OpDelete }

// ParseOperation reads an operation given as a number or as a name.
func ParseOperation(raw json.RawMessage) (Operation, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, errors.New("operation is missing")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errors.New("operation is not a string or number")
		}
		switch strings.ToLower(s) {
		case "insert", "0":
			return OpInsert, nil
		case "update", "1":
			return OpUpdate, nil
		case "delete", "2":
			return OpDelete, nil
		}
		return 0, errors.New("unknown operation " + strconv.Quote(s))
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, errors.New("operation is not an integer")
	}
	op := Operation(n)
	if !op.Valid() {
		return 0, errors.New("unknown operation " + strconv.Itoa(n))
	}
	return op, nil
}

// TimeLayout is the wire layout of every date: ISO-8601 UTC with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime renders t in the wire layout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime reads a wire date given as an ISO-8601 string or as epoch
// milliseconds.
func ParseTime(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, errors.New("timestamp is missing")
	}
	if raw[0] == '"' {
		s, ok := unquote(raw)
		if !ok {
			return time.Time{}, errors.New("timestamp is not a string")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			// Dart's toIso8601String omits the zone for local times.
			t, err = time.Parse("2006-01-02T15:04:05.999999999", s)
			if err != nil {
				return time.Time{}, errors.New("timestamp " + strconv.Quote(s) + " is not ISO-8601")
			}
		}
		return inRange(t.UTC())
	}
	var ms float64
	if err := json.Unmarshal(raw, &ms); err != nil {
		return time.Time{}, errors.New("timestamp is not a string or epoch milliseconds")
	}
	if ms < minMillis || ms > maxMillis {
		return time.Time{}, errors.New("timestamp is outside the years 1 to 9999")
	}
	return inRange(time.UnixMilli(int64(ms)).UTC())
}

// Bounds of a wire timestamp in epoch milliseconds: years 1 to 9999, the
// range ISO-8601 (and TimeLayout) can write.
const (
	minMillis = -62135596800000
	maxMillis = 253402300799999
)

// inRange rejects times the wire layout cannot write back.
func inRange(t time.Time) (time.Time, error) {
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, errors.New("timestamp is outside the years 1 to 9999")
	}
	return t, nil
}

// Event is one change to one document of a repository.
type Event struct {
	// ID is the event's UUIDv7, the deduplication key.
	ID string
	// Operation says whether the document was inserted, updated or deleted.
	Operation Operation
	// CreatedAt is when the change was made, on the writer's clock.
	CreatedAt time.Time
	// DataID is the id of the document changed.
	DataID string
	// Data is the document as a JSON object; nil on delete.
	Data json.RawMessage
	// ServerSequence is the position the server assigned in the repository's
	// log; 0 until the server has stored the event.
	ServerSequence int64
	// Meta is lfsync's per-event metadata (extension, key "_meta"), such as
	// per-field stamps for field merges: a JSON object the server stores and
	// relays verbatim, which a local_first client ignores.
	Meta json.RawMessage
}

// MaxIDLength bounds event and document ids.
const MaxIDLength = 256

// MarshalJSON writes the coded form.
func (e Event) MarshalJSON() ([]byte, error) {
	return appendEvent(make([]byte, 0, 160+len(e.Data)+len(e.Meta)), e), nil
}

// eventKeys are the keys an event may carry: the coded form and the
// README's aliases. Decoding into a struct is several times cheaper than
// into a map; encoding/json matches keys case-insensitively, which accepts a
// few more spellings and rejects none.
type eventKeys struct {
	ID             json.RawMessage `json:"_event_id"`
	EventID        json.RawMessage `json:"eventId"`
	PlainID        json.RawMessage `json:"id"`
	Operation      json.RawMessage `json:"_operation"`
	PlainOperation json.RawMessage `json:"operation"`
	CreatedAt      json.RawMessage `json:"_created_at"`
	PlainCreatedAt json.RawMessage `json:"createdAt"`
	DataID         json.RawMessage `json:"_data_id"`
	PlainDataID    json.RawMessage `json:"dataId"`
	Data           json.RawMessage `json:"_data"`
	PlainData      json.RawMessage `json:"data"`
	Meta           json.RawMessage `json:"_meta"`
	ServerSequence json.RawMessage `json:"serverSequence"`
}

// pick returns the first of raws that is present and not null.
func pick(raws ...json.RawMessage) json.RawMessage {
	for _, v := range raws {
		if v != nil && string(v) != "null" {
			return v
		}
	}
	return nil
}

// UnmarshalJSON reads the coded form or the README's aliases and validates
// the result.
func (e *Event) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("event is not a JSON object")
	}
	var k eventKeys
	if err := json.Unmarshal(b, &k); err != nil {
		return errors.New("event is not a JSON object")
	}
	var out Event
	if raw := pick(k.ID, k.EventID, k.PlainID); raw != nil {
		var ok bool
		if out.ID, ok = unquote(raw); !ok {
			return errors.New("event id is not a string")
		}
	}
	op, err := ParseOperation(pick(k.Operation, k.PlainOperation))
	if err != nil {
		return err
	}
	out.Operation = op
	if out.CreatedAt, err = ParseTime(pick(k.CreatedAt, k.PlainCreatedAt)); err != nil {
		return err
	}
	if raw := pick(k.Data, k.PlainData); raw != nil {
		if raw[0] != '{' {
			return errors.New("event data is not a JSON object")
		}
		out.Data = raw
	}
	if raw := pick(k.DataID, k.PlainDataID); raw != nil {
		if out.DataID, err = idString(raw); err != nil {
			return errors.New("event data id " + err.Error())
		}
	} else if out.Data != nil {
		var d struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(out.Data, &d) == nil && d.ID != nil && string(d.ID) != "null" {
			if out.DataID, err = idString(d.ID); err != nil {
				return errors.New("event data.id " + err.Error())
			}
		}
	}
	if raw := pick(k.Meta); raw != nil {
		if raw[0] != '{' {
			return errors.New("event _meta is not a JSON object")
		}
		out.Meta = raw
	}
	if raw := pick(k.ServerSequence); raw != nil {
		if err := json.Unmarshal(raw, &out.ServerSequence); err != nil {
			return errors.New("serverSequence is not an integer")
		}
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*e = out
	return nil
}

// unquote reads a JSON string. Strings without escapes, the common case for
// ids and timestamps, are taken as they are; others go through
// encoding/json.
func unquote(raw json.RawMessage) (string, bool) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		inner := raw[1 : n-1]
		plain := true
		for _, c := range inner {
			if c == '\\' || c == '"' || c < 0x20 || c >= utf8.RuneSelf {
				plain = false
				break
			}
		}
		if plain {
			return string(inner), true
		}
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// idString accepts a JSON string or integer id and returns it as a string.
func idString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		s, ok := unquote(raw)
		if !ok {
			return "", errors.New("is not a string")
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", errors.New("is not a string or number")
	}
	if _, err := n.Int64(); err != nil {
		return "", errors.New("is not an integer")
	}
	return n.String(), nil
}

// Validate reports what is wrong with an event, or nil.
func (e Event) Validate() error {
	switch {
	case e.ID == "":
		return errors.New("event id is missing")
	case len(e.ID) > MaxIDLength:
		return errors.New("event id is longer than 256 bytes")
	case e.DataID == "":
		return errors.New("event " + e.ID + " has no document id")
	case len(e.DataID) > MaxIDLength:
		return errors.New("event " + e.ID + " has a document id longer than 256 bytes")
	case !e.Operation.Valid():
		return errors.New("event " + e.ID + " has an unknown operation")
	case e.CreatedAt.IsZero():
		return errors.New("event " + e.ID + " has no creation time")
	case e.Operation != OpDelete && e.Data == nil:
		return errors.New("event " + e.ID + " has no data")
	case e.ServerSequence < 0:
		return errors.New("event " + e.ID + " has a negative serverSequence")
	}
	return nil
}
