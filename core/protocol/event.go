package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
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
	n, ok := parseInt(raw)
	if !ok {
		return 0, errors.New("operation is not an integer")
	}
	op := Operation(n)
	if !op.Valid() {
		return 0, errors.New("unknown operation " + strconv.FormatInt(n, 10))
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
	if end, err := skipNumber(raw, 0); err != nil || end != len(raw) {
		return time.Time{}, errors.New("timestamp is not a string or epoch milliseconds")
	}
	ms, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
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

// eventKeys are the members an event may carry: the coded form and the
// README's aliases, as raw JSON values.
type eventKeys struct {
	ID, EventID, PlainID             []byte
	Operation, PlainOperation        []byte
	CreatedAt, PlainCreatedAt        []byte
	DataID, PlainDataID              []byte
	Data, PlainData, Meta, ServerSeq []byte
}

// set records one member; unknown keys are ignored.
func (k *eventKeys) set(key, v []byte) {
	if len(key) < 2 {
		return
	}
	switch string(key[1 : len(key)-1]) {
	case "_event_id":
		k.ID = v
	case "eventId":
		k.EventID = v
	case "id":
		k.PlainID = v
	case "_operation":
		k.Operation = v
	case "operation":
		k.PlainOperation = v
	case "_created_at":
		k.CreatedAt = v
	case "createdAt":
		k.PlainCreatedAt = v
	case "_data_id":
		k.DataID = v
	case "dataId":
		k.PlainDataID = v
	case "_data":
		k.Data = v
	case "data":
		k.PlainData = v
	case "_meta":
		k.Meta = v
	case "serverSequence":
		k.ServerSeq = v
	}
}

// pick returns the first of raws that is present and not null.
func pick(raws ...[]byte) []byte {
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
	var k eventKeys
	if _, err := scanObject(b, k.set); err != nil {
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
		// A copy: the frame's buffer may be reused by its reader.
		out.Data = append(json.RawMessage(nil), raw...)
	}
	if raw := pick(k.DataID, k.PlainDataID); raw != nil {
		if out.DataID, err = idString(raw); err != nil {
			return errors.New("event data id " + err.Error())
		}
	} else if out.Data != nil {
		var id []byte
		// Data was checked with the event.
		_, _ = scanObject(out.Data, func(key, v []byte) {
			if keyIs(key, "id") {
				id = v
			}
		})
		if id != nil && string(id) != "null" {
			if out.DataID, err = idString(id); err != nil {
				return errors.New("event data.id " + err.Error())
			}
		}
	}
	if raw := pick(k.Meta); raw != nil {
		if raw[0] != '{' {
			return errors.New("event _meta is not a JSON object")
		}
		out.Meta = append(json.RawMessage(nil), raw...)
	}
	if raw := pick(k.ServerSeq); raw != nil {
		n, ok := parseInt(raw)
		if !ok {
			return errors.New("serverSequence is not an integer")
		}
		out.ServerSequence = n
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*e = out
	return nil
}

// parseInt reads a JSON integer written without fraction or exponent.
func parseInt(raw []byte) (int64, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

// unquote reads a JSON string. Strings without escapes or non-ASCII bytes,
// the common case for ids and timestamps, are taken as they are; others go
// through encoding/json.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	end, slow, err := skipString(raw, 0)
	if err != nil || end != len(raw) {
		return "", false
	}
	if !slow {
		return string(raw[1 : end-1]), true
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
