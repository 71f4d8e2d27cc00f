package protocol

import (
	"bytes"
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
func (m Message) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, 8)
	switch m.Type {
	case TypeAuth:
		for k, v := range m.Headers {
			out[k] = v
		}
		if m.Token != "" {
			out["token"] = m.Token
		}
		if m.ClientID != "" {
			out["clientId"] = m.ClientID
		}
	case TypePushEvent:
		out["repository"] = m.Repository
		if len(m.Events) > 0 {
			out["event"] = m.Events[0]
		}
	case TypePushEventsBatch, TypeEvents:
		out["repository"] = m.Repository
		events := m.Events
		if events == nil {
			events = []Event{}
		}
		out["events"] = events
	case TypeRequestEvents:
		out["repository"] = m.Repository
		if !m.Since.IsZero() {
			out["since"] = FormatTime(m.Since)
		} else {
			out["afterSequence"] = m.AfterSequence
		}
		if m.Limit > 0 {
			out["limit"] = m.Limit
		}
		if m.All {
			out["reduce"] = false
		}
	case TypeRequestAllEvents:
		if m.Repository != "" {
			out["repository"] = m.Repository
		}
	case TypeEventsReceived:
		out["repository"] = m.Repository
		out["count"] = m.Count
	case TypeAck:
		ids := m.EventIDs
		if ids == nil {
			ids = []string{}
		}
		repos := m.Repositories
		if repos == nil {
			repos = map[string][]string{}
		}
		out["eventIds"] = ids
		out["repositories"] = repos
		if len(m.Sequences) > 0 {
			out["sequences"] = m.Sequences
		}
	case TypeSyncComplete:
		if m.Repository != "" {
			out["repository"] = m.Repository
		}
		out["hasMore"] = m.HasMore
		out["lastSequence"] = m.LastSequence
	case TypeError:
		out["message"] = m.Text
		if m.Code != "" {
			out["code"] = m.Code
		}
		if m.Repository != "" {
			out["repository"] = m.Repository
		}
		if m.EventID != "" {
			out["eventId"] = m.EventID
		}
	}
	// Written last so that no header can overwrite the type.
	out["type"] = m.Type
	return json.Marshal(out)
}

// Encode renders a frame.
func Encode(m Message) ([]byte, error) { return json.Marshal(m) }

// Decode parses a frame. Any failure is an *Error with CodeInvalid naming the
// field at fault; an unknown type is an error too.
func Decode(b []byte) (Message, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return Message{}, Errorf(CodeInvalid, "frame is not a JSON object")
	}
	if dec.More() {
		return Message{}, Errorf(CodeInvalid, "frame has data after the JSON object")
	}
	f := fields(raw)
	var m Message
	if err := f.str("type", &m.Type, true); err != nil {
		return Message{}, err
	}
	var err error
	switch m.Type {
	case TypeAuth:
		err = f.decodeAuth(&m)
	case TypePing, TypePong, TypeAuthSuccess:
	case TypePushEvent:
		err = f.str("repository", &m.Repository, true)
		if err == nil {
			var ev Event
			if err = f.event("event", &ev); err == nil {
				m.Events = []Event{ev}
			}
		}
	case TypePushEventsBatch, TypeEvents:
		if err = f.str("repository", &m.Repository, true); err == nil {
			err = f.events("events", &m.Events)
		}
	case TypeRequestEvents:
		err = f.decodeRequest(&m)
	case TypeRequestAllEvents:
		err = f.str("repository", &m.Repository, false)
	case TypeEventsReceived:
		if err = f.str("repository", &m.Repository, true); err == nil {
			err = f.integer("count", &m.Count)
		}
	case TypeAck:
		err = f.decodeAck(&m)
	case TypeSyncComplete:
		if err = f.str("repository", &m.Repository, false); err == nil {
			if v, ok := raw["hasMore"]; ok && json.Unmarshal(v, &m.HasMore) != nil {
				err = Errorf(CodeInvalid, "hasMore is not a boolean")
			}
		}
		if err == nil {
			err = f.int64("lastSequence", &m.LastSequence)
		}
	case TypeError:
		if err = f.str("message", &m.Text, false); err == nil {
			var code string
			err = f.str("code", &code, false)
			m.Code = Code(code)
		}
		if err == nil {
			err = f.str("repository", &m.Repository, false)
		}
		if err == nil {
			err = f.str("eventId", &m.EventID, false)
		}
	default:
		return Message{}, Errorf(CodeInvalid, "unknown message type "+strconv.Quote(m.Type))
	}
	if err != nil {
		return Message{}, err
	}
	return m, nil
}

// fields is a decoded JSON object whose members are read with type checks.
type fields map[string]json.RawMessage

func (f fields) present(key string) (json.RawMessage, bool) {
	v, ok := f[key]
	if !ok || string(bytes.TrimSpace(v)) == "null" {
		return nil, false
	}
	return v, true
}

func (f fields) str(key string, dst *string, required bool) error {
	v, ok := f.present(key)
	if !ok {
		if required {
			return Errorf(CodeInvalid, key+" is missing")
		}
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return Errorf(CodeInvalid, key+" is not a string")
	}
	if required && *dst == "" {
		return Errorf(CodeInvalid, key+" is empty")
	}
	return nil
}

func (f fields) int64(key string, dst *int64) error {
	v, ok := f.present(key)
	if !ok {
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

func (f fields) integer(key string, dst *int) error {
	var i int64
	if err := f.int64(key, &i); err != nil {
		return err
	}
	if i > 1<<31-1 {
		return Errorf(CodeInvalid, key+" is too large")
	}
	*dst = int(i)
	return nil
}

func (f fields) event(key string, dst *Event) error {
	v, ok := f.present(key)
	if !ok {
		return Errorf(CodeInvalid, key+" is missing")
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return Errorf(CodeInvalid, "invalid event: "+err.Error())
	}
	return nil
}

func (f fields) events(key string, dst *[]Event) error {
	v, ok := f.present(key)
	if !ok {
		return Errorf(CodeInvalid, key+" is missing")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(v, &raws); err != nil {
		return Errorf(CodeInvalid, key+" is not an array")
	}
	out := make([]Event, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return Errorf(CodeInvalid, "invalid event at index "+strconv.Itoa(i)+": "+err.Error())
		}
	}
	*dst = out
	return nil
}

func (f fields) decodeAuth(m *Message) error {
	if err := f.str("token", &m.Token, false); err != nil {
		return err
	}
	if err := f.str("clientId", &m.ClientID, false); err != nil {
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

func (f fields) decodeRequest(m *Message) error {
	if err := f.str("repository", &m.Repository, true); err != nil {
		return err
	}
	if err := f.int64("afterSequence", &m.AfterSequence); err != nil {
		return err
	}
	if v, ok := f.present("since"); ok {
		t, err := ParseTime(v)
		if err != nil {
			return Errorf(CodeInvalid, "since: "+err.Error())
		}
		m.Since = t
	}
	if v, ok := f.present("reduce"); ok {
		var reduce bool
		if err := json.Unmarshal(v, &reduce); err != nil {
			return Errorf(CodeInvalid, "reduce is not a boolean")
		}
		m.All = !reduce
	}
	return f.integer("limit", &m.Limit)
}

func (f fields) decodeAck(m *Message) error {
	if v, ok := f.present("eventIds"); ok {
		if err := json.Unmarshal(v, &m.EventIDs); err != nil {
			return Errorf(CodeInvalid, "eventIds is not an array of strings")
		}
	}
	if v, ok := f.present("repositories"); ok {
		if err := json.Unmarshal(v, &m.Repositories); err != nil {
			return Errorf(CodeInvalid, "repositories is not an object of string arrays")
		}
	}
	if v, ok := f.present("sequences"); ok {
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
