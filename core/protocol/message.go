package protocol

import (
	"encoding/json"
	"strconv"
	"time"
)

// Message types, client to server.
const (
	TypeAuth             = "auth"
	TypePing             = "ping"
	TypePong             = "pong"
	TypePushEvent        = "push_event"
	TypePushEventsBatch  = "push_events_batch"
	TypeRequestEvents    = "request_events"
	TypeRequestAllEvents = "request_all_events"
	TypeEventsReceived   = "events_received"
)

// Message types, server to client.
const (
	TypeAuthSuccess  = "auth_success"
	TypeEvents       = "events"
	TypeAck          = "ack"
	TypeSyncComplete = "sync_complete"
	TypeError        = "error"
)

// Message is one decoded frame. Which fields are meaningful depends on Type;
// fields marked "extension" are lfsync's and a local_first client ignores them.
type Message struct {
	Type string

	// Token is auth's bearer token (from "token" or an "Authorization: Bearer"
	// header key).
	Token string
	// Headers holds auth's other top-level string keys, the Dart client's
	// custom headers.
	Headers map[string]string
	// ClientID identifies the sending client so the server need not echo its
	// own events back (extension, on auth).
	ClientID string

	// Repository names the repository of push, request, events,
	// events_received and sync_complete frames.
	Repository string
	// Events carries push_event's single event (as one element),
	// push_events_batch's and events' events.
	Events []Event

	// AfterSequence is request_events' cursor.
	AfterSequence int64
	// Since is request_events' README-style timestamp cursor; zero if absent.
	Since time.Time
	// Limit caps request_events' reply; 0 means the server default.
	Limit int
	// All asks request_events for every event after the cursor instead of
	// the latest per document (extension, key "reduce": false), so a
	// catching-up client sees exactly the stream a live client saw.
	All bool
	// Count is events_received's number of events applied.
	Count int

	// EventIDs lists the events an ack acknowledges.
	EventIDs []string
	// Repositories groups an ack's event ids by repository.
	Repositories map[string][]string
	// Sequences maps each acked event id to its serverSequence (extension).
	Sequences map[string]int64

	// HasMore says whether sync_complete ended a page with more to come
	// (extension).
	HasMore bool
	// LastSequence is the highest serverSequence of the repository when
	// sync_complete was sent (extension).
	LastSequence int64

	// Code classifies an error (extension).
	Code Code
	// Text is an error's human-readable message.
	Text string
	// EventID names the event an error concerns, if any (extension).
	EventID string
}

// Code classifies an error frame (extension).
type Code string

// Error codes sent in error frames.
const (
	CodeUnauthorized Code = "unauthorized"
	CodeForbidden    Code = "forbidden"
	CodeInvalid      Code = "invalid"
	CodeTooLarge     Code = "too_large"
	CodeRateLimited  Code = "rate_limited"
	CodeInternal     Code = "internal"
)

// Error is a protocol error with a code; it becomes an error frame.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf makes a protocol error.
func Errorf(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// ErrorMessage turns an error into an error frame.
func ErrorMessage(code Code, text string) Message {
	return Message{Type: TypeError, Code: code, Text: text}
}

// MarshalJSON writes the frame with exactly the keys its type uses.
func (m Message) MarshalJSON() ([]byte, error) { return appendMessage(nil, m) }

// Encode renders a frame.
func Encode(m Message) ([]byte, error) { return appendMessage(make([]byte, 0, 256), m) }

// frameKeys are the members of every frame but auth's headers, as raw JSON
// values.
type frameKeys struct {
	Type, Repository, Event, Events               json.RawMessage
	AfterSequence, Since, Limit, Reduce, Count    json.RawMessage
	EventIDs, Repositories, Sequences             json.RawMessage
	HasMore, LastSequence, Message, Code, EventID json.RawMessage
}

// set records one member; unknown keys are ignored.
func (k *frameKeys) set(key, v []byte) {
	if len(key) < 2 {
		return
	}
	switch string(key[1 : len(key)-1]) {
	case "type":
		k.Type = v
	case "repository":
		k.Repository = v
	case "event":
		k.Event = v
	case "events":
		k.Events = v
	case "afterSequence":
		k.AfterSequence = v
	case "since":
		k.Since = v
	case "limit":
		k.Limit = v
	case "reduce":
		k.Reduce = v
	case "count":
		k.Count = v
	case "eventIds":
		k.EventIDs = v
	case "repositories":
		k.Repositories = v
	case "sequences":
		k.Sequences = v
	case "hasMore":
		k.HasMore = v
	case "lastSequence":
		k.LastSequence = v
	case "message":
		k.Message = v
	case "code":
		k.Code = v
	case "eventId":
		k.EventID = v
	}
}

// Decode parses a frame. Any failure is an *Error with CodeInvalid naming the
// field at fault; an unknown type is an error too.
func Decode(b []byte) (Message, error) {
	var k frameKeys
	if trailing, err := scanObject(b, k.set); err != nil {
		if trailing {
			return Message{}, Errorf(CodeInvalid, "frame has data after the JSON object")
		}
		return Message{}, Errorf(CodeInvalid, "frame is not a JSON object")
	}
	var m Message
	if err := str("type", k.Type, &m.Type, true); err != nil {
		return Message{}, err
	}
	var err error
	switch m.Type {
	case TypeAuth:
		err = decodeAuth(b, &m)
	case TypePing, TypePong, TypeAuthSuccess:
	case TypePushEvent:
		err = str("repository", k.Repository, &m.Repository, true)
		if err == nil {
			var ev Event
			if err = event("event", k.Event, &ev); err == nil {
				m.Events = []Event{ev}
			}
		}
	case TypePushEventsBatch, TypeEvents:
		if err = str("repository", k.Repository, &m.Repository, true); err == nil {
			err = events("events", k.Events, &m.Events)
		}
	case TypeRequestEvents:
		err = decodeRequest(&k, &m)
	case TypeRequestAllEvents:
		err = str("repository", k.Repository, &m.Repository, false)
	case TypeEventsReceived:
		if err = str("repository", k.Repository, &m.Repository, true); err == nil {
			err = integer("count", k.Count, &m.Count)
		}
	case TypeAck:
		err = decodeAck(&k, &m)
	case TypeSyncComplete:
		if err = str("repository", k.Repository, &m.Repository, false); err == nil {
			if v, ok := present(k.HasMore); ok && json.Unmarshal(v, &m.HasMore) != nil {
				err = Errorf(CodeInvalid, "hasMore is not a boolean")
			}
		}
		if err == nil {
			err = int64Field("lastSequence", k.LastSequence, &m.LastSequence)
		}
	case TypeError:
		if err = str("message", k.Message, &m.Text, false); err == nil {
			var code string
			err = str("code", k.Code, &code, false)
			m.Code = Code(code)
		}
		if err == nil {
			err = str("repository", k.Repository, &m.Repository, false)
		}
		if err == nil {
			err = str("eventId", k.EventID, &m.EventID, false)
		}
	default:
		return Message{}, Errorf(CodeInvalid, "unknown message type "+strconv.Quote(m.Type))
	}
	if err != nil {
		return Message{}, err
	}
	return m, nil
}

// present returns a member's value unless it is absent or null.
func present(v json.RawMessage) (json.RawMessage, bool) {
	if v == nil || string(v) == "null" {
		return nil, false
	}
	return v, true
}

func str(key string, raw json.RawMessage, dst *string, required bool) error {
	v, ok := present(raw)
	if !ok {
		if required {
			return Errorf(CodeInvalid, key+" is missing")
		}
		return nil
	}
	s, ok := unquote(v)
	if !ok {
		return Errorf(CodeInvalid, key+" is not a string")
	}
	if required && s == "" {
		return Errorf(CodeInvalid, key+" is empty")
	}
	*dst = s
	return nil
}

func int64Field(key string, raw json.RawMessage, dst *int64) error {
	v, ok := present(raw)
	if !ok {
		return nil
	}
	if i, ok := parseInt(v); ok {
		if i < 0 {
			return Errorf(CodeInvalid, key+" is negative")
		}
		*dst = i
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return Errorf(CodeInvalid, key+" is not a number")
	}
	i, err := n.Int64()
	if err != nil {
		// Accept integral floats such as 5.0, as JSON encoders may send.
		fl, ferr := n.Float64()
		if ferr != nil || fl != float64(int64(fl)) {
			return Errorf(CodeInvalid, key+" is not an integer")
		}
		i = int64(fl)
	}
	if i < 0 {
		return Errorf(CodeInvalid, key+" is negative")
	}
	*dst = i
	return nil
}

func integer(key string, raw json.RawMessage, dst *int) error {
	var i int64
	if err := int64Field(key, raw, &i); err != nil {
		return err
	}
	if i > 1<<31-1 {
		return Errorf(CodeInvalid, key+" is too large")
	}
	*dst = int(i)
	return nil
}

func event(key string, raw json.RawMessage, dst *Event) error {
	v, ok := present(raw)
	if !ok {
		return Errorf(CodeInvalid, key+" is missing")
	}
	if err := dst.UnmarshalJSON(v); err != nil {
		return Errorf(CodeInvalid, "invalid event: "+err.Error())
	}
	return nil
}

func events(key string, raw json.RawMessage, dst *[]Event) error {
	v, ok := present(raw)
	if !ok {
		return Errorf(CodeInvalid, key+" is missing")
	}
	if v[0] != '[' {
		return Errorf(CodeInvalid, key+" is not an array")
	}
	var raws [][]byte
	// The frame was checked as a whole.
	_, _ = skipArray(v, 0, 0, func(elem []byte) { raws = append(raws, elem) })
	out := make([]Event, len(raws))
	for i, r := range raws {
		if err := out[i].UnmarshalJSON(r); err != nil {
			return Errorf(CodeInvalid, "invalid event at index "+strconv.Itoa(i)+": "+err.Error())
		}
	}
	*dst = out
	return nil
}

// decodeAuth reads an auth frame: token, clientId, and every other
// top-level string key as a header.
func decodeAuth(b []byte, m *Message) error {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(b, &f); err != nil {
		return Errorf(CodeInvalid, "frame is not a JSON object")
	}
	if err := str("token", f["token"], &m.Token, false); err != nil {
		return err
	}
	if err := str("clientId", f["clientId"], &m.ClientID, false); err != nil {
		return err
	}
	for k, v := range f {
		if k == "type" || k == "token" || k == "clientId" {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			continue // non-string keys are not headers
		}
		if m.Headers == nil {
			m.Headers = make(map[string]string)
		}
		m.Headers[k] = s
	}
	if m.Token == "" {
		for k, v := range m.Headers {
			if equalFold(k, "authorization") {
				if len(v) > 7 && equalFold(v[:7], "bearer ") {
					m.Token = v[7:]
				}
			}
		}
	}
	return nil
}

func decodeRequest(k *frameKeys, m *Message) error {
	if err := str("repository", k.Repository, &m.Repository, true); err != nil {
		return err
	}
	if err := int64Field("afterSequence", k.AfterSequence, &m.AfterSequence); err != nil {
		return err
	}
	if v, ok := present(k.Since); ok {
		t, err := ParseTime(v)
		if err != nil {
			return Errorf(CodeInvalid, "since: "+err.Error())
		}
		m.Since = t
	}
	if v, ok := present(k.Reduce); ok {
		var reduce bool
		if err := json.Unmarshal(v, &reduce); err != nil {
			return Errorf(CodeInvalid, "reduce is not a boolean")
		}
		m.All = !reduce
	}
	return integer("limit", k.Limit, &m.Limit)
}

func decodeAck(k *frameKeys, m *Message) error {
	if v, ok := present(k.EventIDs); ok {
		if err := json.Unmarshal(v, &m.EventIDs); err != nil {
			return Errorf(CodeInvalid, "eventIds is not an array of strings")
		}
	}
	if v, ok := present(k.Repositories); ok {
		if err := json.Unmarshal(v, &m.Repositories); err != nil {
			return Errorf(CodeInvalid, "repositories is not an object of string arrays")
		}
	}
	if v, ok := present(k.Sequences); ok {
		if err := json.Unmarshal(v, &m.Sequences); err != nil {
			return Errorf(CodeInvalid, "sequences is not an object of integers")
		}
	}
	return nil
}

// equalFold compares ASCII strings case-insensitively.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
