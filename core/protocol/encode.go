package protocol

import (
	"encoding/json"
	"sort"
	"strconv"
	"unicode/utf8"
)

// The encoder writes frames by appending to a byte slice: frames are sent on
// every push, ack and fan-out, where encoding/json's reflection over a map
// (and its re-validation of every event's MarshalJSON output) cost more than
// the rest of the server's work per event. Keys are written in a fixed
// order, "type" first. Data and Meta are written as they are: they are JSON
// objects checked when decoded or produced by json.Marshal.

// appendMessage appends the frame of m.
func appendMessage(b []byte, m Message) ([]byte, error) {
	if m.Type == TypeAuth {
		// Rare, and its headers are arbitrary keys: encoding/json sorts
		// and escapes them.
		return marshalAuth(m)
	}
	b = append(b, `{"type":`...)
	b = AppendString(b, m.Type)
	switch m.Type {
	case TypePushEvent:
		b = appendKey(b, "repository")
		b = AppendString(b, m.Repository)
		if len(m.Events) > 0 {
			b = appendKey(b, "event")
			b = appendEvent(b, m.Events[0])
		}
	case TypePushEventsBatch, TypeEvents:
		b = appendKey(b, "repository")
		b = AppendString(b, m.Repository)
		b = appendKey(b, "events")
		b = append(b, '[')
		for i, e := range m.Events {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendEvent(b, e)
		}
		b = append(b, ']')
	case TypeRequestEvents:
		b = appendKey(b, "repository")
		b = AppendString(b, m.Repository)
		if !m.Since.IsZero() {
			b = appendKey(b, "since")
			b = AppendString(b, FormatTime(m.Since))
		} else {
			b = appendKey(b, "afterSequence")
			b = strconv.AppendInt(b, m.AfterSequence, 10)
		}
		if m.Limit > 0 {
			b = appendKey(b, "limit")
			b = strconv.AppendInt(b, int64(m.Limit), 10)
		}
		if m.All {
			b = append(b, `,"reduce":false`...)
		}
	case TypeRequestAllEvents:
		if m.Repository != "" {
			b = appendKey(b, "repository")
			b = AppendString(b, m.Repository)
		}
	case TypeEventsReceived:
		b = appendKey(b, "repository")
		b = AppendString(b, m.Repository)
		b = appendKey(b, "count")
		b = strconv.AppendInt(b, int64(m.Count), 10)
	case TypeAck:
		b = appendKey(b, "eventIds")
		b = appendStrings(b, m.EventIDs)
		b = appendKey(b, "repositories")
		b = append(b, '{')
		for i, repo := range sortedKeys(m.Repositories) {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, repo)
			b = append(b, ':')
			b = appendStrings(b, m.Repositories[repo])
		}
		b = append(b, '}')
		if len(m.Sequences) > 0 {
			b = appendKey(b, "sequences")
			b = append(b, '{')
			for i, id := range sortedKeys(m.Sequences) {
				if i > 0 {
					b = append(b, ',')
				}
				b = AppendString(b, id)
				b = append(b, ':')
				b = strconv.AppendInt(b, m.Sequences[id], 10)
			}
			b = append(b, '}')
		}
	case TypeSyncComplete:
		if m.Repository != "" {
			b = appendKey(b, "repository")
			b = AppendString(b, m.Repository)
		}
		b = appendKey(b, "hasMore")
		b = strconv.AppendBool(b, m.HasMore)
		b = appendKey(b, "lastSequence")
		b = strconv.AppendInt(b, m.LastSequence, 10)
	case TypeError:
		b = appendKey(b, "message")
		b = AppendString(b, m.Text)
		if m.Code != "" {
			b = appendKey(b, "code")
			b = AppendString(b, string(m.Code))
		}
		if m.Repository != "" {
			b = appendKey(b, "repository")
			b = AppendString(b, m.Repository)
		}
		if m.EventID != "" {
			b = appendKey(b, "eventId")
			b = AppendString(b, m.EventID)
		}
	}
	return append(b, '}'), nil
}

// marshalAuth writes an auth frame: the headers, then token and clientId,
// then the type, which no header can overwrite.
func marshalAuth(m Message) ([]byte, error) {
	out := make(map[string]string, len(m.Headers)+3)
	for k, v := range m.Headers {
		out[k] = v
	}
	if m.Token != "" {
		out["token"] = m.Token
	}
	if m.ClientID != "" {
		out["clientId"] = m.ClientID
	}
	out["type"] = m.Type
	return json.Marshal(out)
}

// appendEvent appends an event's coded form.
func appendEvent(b []byte, e Event) []byte {
	b = append(b, `{"_event_id":`...)
	b = AppendString(b, e.ID)
	b = append(b, `,"_operation":`...)
	b = strconv.AppendInt(b, int64(e.Operation), 10)
	b = append(b, `,"_created_at":"`...)
	b = e.CreatedAt.UTC().AppendFormat(b, TimeLayout)
	b = append(b, `","_data_id":`...)
	b = AppendString(b, e.DataID)
	if e.Operation != OpDelete && len(e.Data) > 0 {
		b = append(b, `,"_data":`...)
		b = append(b, e.Data...)
	}
	if e.ServerSequence != 0 {
		b = append(b, `,"serverSequence":`...)
		b = strconv.AppendInt(b, e.ServerSequence, 10)
	}
	if len(e.Meta) > 0 {
		b = append(b, `,"_meta":`...)
		b = append(b, e.Meta...)
	}
	return append(b, '}')
}

// appendKey appends ,"key": .
func appendKey(b []byte, key string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// appendStrings appends a JSON array of strings; nil is [].
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, s)
	}
	return append(b, ']')
}

// sortedKeys returns a map's keys in order, so frames are deterministic.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string. Like encoding/json it escapes
// control characters, U+2028 and U+2029, and writes invalid UTF-8 as
// U+FFFD; unlike it, it leaves <, > and & alone (frames are not HTML).
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
