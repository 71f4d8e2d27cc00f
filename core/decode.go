package core

import (
	"encoding/json"
	"strconv"

	"github.com/lfsync/lfsync/core/protocol"
)

// frame is one frame read from the server: a decoded message, and for an
// events frame the events that could not be decoded.
type frame struct {
	msg  protocol.Message
	bad  []badEvent
	err  error // the frame could not be decoded at all
	size int
}

// badEvent is a remote event that is malformed: it is reported and skipped,
// and its serverSequence (when readable) still counts as delivered so the
// cursor moves past it.
type badEvent struct {
	id  string
	seq int64
	err error
}

// decodeFrame decodes a server frame. An events frame with malformed events
// keeps its good events and lists the bad ones instead of failing whole.
func decodeFrame(b []byte) frame {
	m, err := protocol.Decode(b)
	if err == nil {
		return frame{msg: m, size: len(b)}
	}
	var head struct {
		Type       string            `json:"type"`
		Repository string            `json:"repository"`
		Events     []json.RawMessage `json:"events"`
	}
	if json.Unmarshal(b, &head) != nil || head.Type != protocol.TypeEvents || head.Repository == "" {
		return frame{err: err, size: len(b)}
	}
	f := frame{msg: protocol.Message{Type: protocol.TypeEvents, Repository: head.Repository}, size: len(b)}
	f.msg.Events = make([]protocol.Event, 0, len(head.Events))
	for i, raw := range head.Events {
		var e protocol.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			var id struct {
				ID  any   `json:"_event_id"`
				Alt any   `json:"eventId"`
				Seq int64 `json:"serverSequence"`
			}
			_ = json.Unmarshal(raw, &id)
			be := badEvent{seq: id.Seq, err: errorf(ErrInvalid, "lfsync: event "+strconv.Itoa(i)+" of "+head.Repository+" is malformed: "+err.Error())}
			if s, ok := id.ID.(string); ok {
				be.id = s
			} else if s, ok := id.Alt.(string); ok {
				be.id = s
			}
			f.bad = append(f.bad, be)
			continue
		}
		f.msg.Events = append(f.msg.Events, e)
	}
	return f
}
