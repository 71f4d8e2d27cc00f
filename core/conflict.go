package core

import (
	"bytes"
	"encoding/json"
	"io"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

// deletedField is the key of Doc.Fields that holds the stamp of the latest
// delete under field merges: fields stamped before it are gone. It cannot
// collide with a JSON field name a client writes in practice (it starts
// with a NUL byte).
const deletedField = "\x00deleted"

// Compare orders two stamps: by time, then by event id. It returns -1, 0 or
// +1.
func (s Stamp) Compare(o Stamp) int {
	switch {
	case s.At.Before(o.At):
		return -1
	case s.At.After(o.At):
		return 1
	}
	return strings.Compare(s.EventID, o.EventID)
}

// IsZero reports whether the stamp was never set.
func (s Stamp) IsZero() bool { return s.At.IsZero() && s.EventID == "" }

// stampOf returns an event's stamp.
func stampOf(e protocol.Event) Stamp { return Stamp{At: e.CreatedAt, EventID: e.ID} }

// maxStamp returns the later of two stamps.
func maxStamp(a, b Stamp) Stamp {
	if a.Compare(b) >= 0 {
		return a
	}
	return b
}

// nextTime returns a creation time for a new local write: now truncated to
// the wire's millisecond precision, but always after prev (a hybrid logical
// clock), so a local write wins over every write the replica has seen even
// when another writer's clock runs ahead.
func nextTime(now time.Time, prev Stamp) time.Time {
	t := now.UTC().Truncate(time.Millisecond)
	if !prev.At.IsZero() && !t.After(prev.At) {
		t = prev.At.Add(time.Millisecond).UTC().Truncate(time.Millisecond)
	}
	return t
}

// object is a decoded JSON object, values kept raw and compact.
type object map[string]json.RawMessage

// decodeObject parses a JSON object; anything else is ErrInvalid.
func decodeObject(data []byte) (object, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, invalidf("data is not a JSON object")
	}
	var o object
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, invalidf("data is not a valid JSON object: " + err.Error())
	}
	if o == nil {
		o = object{}
	}
	return o, nil
}

// encodeDoc renders a document object with its "id" set to id. Keys come out
// sorted and values compact.
func encodeDoc(id string, o object) json.RawMessage {
	idJSON, _ := json.Marshal(id)
	o["id"] = idJSON
	b, err := json.Marshal(map[string]json.RawMessage(o))
	if err != nil {
		// Values came from json.Unmarshal, so Marshal cannot fail; keep the
		// id at least.
		b = append(append([]byte(`{"id":`), idJSON...), '}')
	}
	return b
}

// visible returns a document's current fields (without "id"), nil for
// absent documents and tombstones.
func visible(d Doc, exists bool) object {
	if !exists || d.Deleted || len(d.Data) == 0 {
		return nil
	}
	o, err := decodeObject(d.Data)
	if err != nil {
		return nil
	}
	delete(o, "id")
	return o
}

// localFields returns the field stamps after a local write of next over the
// document d: changed, added and removed fields get s, unchanged ones keep
// their stamps.
func localFields(d Doc, exists bool, next object, s Stamp) map[string]Stamp {
	cur := visible(d, exists)
	out := make(map[string]Stamp, len(next)+len(d.Fields))
	for k, st := range d.Fields {
		out[k] = st
	}
	for k, v := range next {
		if k == "id" {
			continue
		}
		old, ok := cur[k]
		if _, stamped := out[k]; !ok || !stamped || !bytes.Equal(old, v) {
			out[k] = s
		}
	}
	for k := range cur {
		if _, ok := next[k]; !ok {
			out[k] = s
		}
	}
	return out
}

// fieldMeta is the event metadata (extension key "_meta") that carries
// per-field stamps for field merges.
type fieldMeta struct {
	Fields map[string]wireStamp `json:"fields,omitempty"`
}

// wireStamp is a stamp as _meta spells it.
type wireStamp struct {
	At string `json:"at"`
	ID string `json:"id"`
}

// encodeFieldMeta renders per-field stamps as event metadata.
func encodeFieldMeta(fields map[string]Stamp) json.RawMessage {
	m := fieldMeta{Fields: make(map[string]wireStamp, len(fields))}
	for k, s := range fields {
		if k == deletedField {
			continue
		}
		m.Fields[k] = wireStamp{At: protocol.FormatTime(s.At), ID: s.EventID}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return b
}

// decodeFieldMeta reads per-field stamps from event metadata; ok is false
// when the event carries none (a client that does not merge fields).
func decodeFieldMeta(meta json.RawMessage) (map[string]Stamp, bool) {
	if len(meta) == 0 {
		return nil, false
	}
	var m fieldMeta
	if err := json.Unmarshal(meta, &m); err != nil || m.Fields == nil {
		return nil, false
	}
	out := make(map[string]Stamp, len(m.Fields))
	for k, ws := range m.Fields {
		if k == "id" || k == deletedField {
			continue
		}
		t, err := protocol.ParseTime(json.RawMessage(`"` + ws.At + `"`))
		if err != nil || ws.ID == "" {
			return nil, false
		}
		out[k] = Stamp{At: t, EventID: ws.ID}
	}
	return out, true
}

// overwrite returns the document as the event alone makes it: the whole-
// document outcome of last-write-wins and server order. Field stamps come
// from the event's _meta when it has one (only field merges use them).
func overwrite(id string, e protocol.Event) (Doc, error) {
	s := stampOf(e)
	if e.Operation == protocol.OpDelete {
		return Doc{ID: id, Deleted: true, Version: s, Sequence: e.ServerSequence}, nil
	}
	data, err := withID(id, e.Data)
	if err != nil {
		return Doc{}, err
	}
	fields, _ := decodeFieldMeta(e.Meta)
	return Doc{ID: id, Data: data, Version: s, Fields: fields, Sequence: e.ServerSequence}, nil
}

// withID returns data with its "id" set to id: data itself (copied) when
// it already says so, which is the common case and needs no re-encoding.
func withID(id string, data json.RawMessage) (json.RawMessage, error) {
	var probe struct {
		ID *string `json:"id"`
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &probe) == nil && probe.ID != nil && *probe.ID == id {
		return append(json.RawMessage(nil), trimmed...), nil
	}
	o, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	return encodeDoc(id, o), nil
}

// applyLastWriteWins applies a remote event by stamps: the event wins when
// its stamp is later than the document's (a tombstone's too, so an older
// update never resurrects a deleted document). changed is false when the
// document stays as it is.
func applyLastWriteWins(d Doc, exists bool, e protocol.Event) (next Doc, changed bool, err error) {
	if exists && d.Version.Compare(stampOf(e)) >= 0 {
		return d, false, nil
	}
	next, err = overwrite(e.DataID, e)
	if err != nil {
		return d, false, err
	}
	if exists && d.Sequence > next.Sequence {
		next.Sequence = d.Sequence
	}
	return next, true, nil
}

// applyServerOrder applies a remote event by serverSequence: the event wins
// when the server sequenced it after the last remote event applied.
func applyServerOrder(d Doc, exists bool, e protocol.Event) (next Doc, changed bool, err error) {
	if exists && e.ServerSequence > 0 && e.ServerSequence <= d.Sequence {
		return d, false, nil
	}
	if exists && d.Version.EventID == e.ID {
		if e.ServerSequence > d.Sequence {
			d.Sequence = e.ServerSequence
			return d, true, nil
		}
		return d, false, nil
	}
	next, err = overwrite(e.DataID, e)
	if err != nil {
		return d, false, err
	}
	return next, true, nil
}

// applyFieldMerge merges a remote event field by field: each top-level field
// keeps the value with the later stamp; a delete hides every field stamped
// before it. Merging is commutative, associative and idempotent, so replicas
// that applied the same events hold the same document in any order.
func applyFieldMerge(d Doc, exists bool, e protocol.Event) (next Doc, changed bool, err error) {
	s := stampOf(e)
	id := e.DataID
	if !exists {
		d = Doc{ID: id}
	}
	fields := make(map[string]Stamp, len(d.Fields)+4)
	for k, st := range d.Fields {
		fields[k] = st
	}
	// Current values of every field still stamped (hidden ones are gone).
	values := visible(d, exists)
	if values == nil {
		values = object{}
	}
	if e.Operation == protocol.OpDelete {
		if del, ok := fields[deletedField]; ok && del.Compare(s) >= 0 {
			return d, false, nil
		}
		fields[deletedField] = s
	} else {
		o, derr := decodeObject(e.Data)
		if derr != nil {
			return d, false, derr
		}
		delete(o, "id")
		remote, ok := decodeFieldMeta(e.Meta)
		if !ok {
			// A whole-document write: every field it has, and every field it
			// lacks, is stamped with the event.
			remote = make(map[string]Stamp, len(o)+len(fields))
			for k := range o {
				remote[k] = s
			}
			for k := range fields {
				if k != deletedField {
					if _, has := o[k]; !has {
						remote[k] = s
					}
				}
			}
		}
		for k, rs := range remote {
			if ls, ok := fields[k]; ok && ls.Compare(rs) >= 0 {
				continue
			}
			fields[k] = rs
			if v, has := o[k]; has {
				values[k] = v
			} else {
				delete(values, k)
			}
		}
	}
	version := maxStamp(d.Version, s)
	if !exists {
		version = s
	}
	del, hasDel := fields[deletedField]
	out := Doc{ID: id, Version: version, Fields: fields, Sequence: d.Sequence}
	if e.ServerSequence > out.Sequence {
		out.Sequence = e.ServerSequence
	}
	if hasDel {
		for k := range values {
			if st, ok := fields[k]; !ok || st.Compare(del) <= 0 {
				delete(values, k)
			}
		}
	}
	if hasDel && del.Compare(version) >= 0 {
		out.Deleted = true
	} else {
		out.Data = encodeDoc(id, values)
	}
	changed = !exists || out.Deleted != d.Deleted || out.Version != d.Version ||
		!bytes.Equal(out.Data, d.Data) || !sameStamps(out.Fields, d.Fields)
	return out, changed, nil
}

func sameStamps(a, b map[string]Stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for k, s := range a {
		if o, ok := b[k]; !ok || o != s {
			return false
		}
	}
	return true
}

// sortedKeys returns a map's keys in order (deterministic iteration).
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// content is a document's content for comparisons: deleted, or the JSON
// object without its "id".
type content struct {
	deleted bool
	obj     object
	bad     bool // unreadable: equal to nothing
}

// docContent returns a stored document's content.
func docContent(d Doc) content {
	if d.Deleted {
		return content{deleted: true}
	}
	o, err := decodeObject(d.Data)
	if err != nil {
		return content{bad: true}
	}
	return content{obj: o}
}

// remoteContent returns the content an event writes.
func remoteContent(e protocol.Event) content {
	if e.Operation == protocol.OpDelete {
		return content{deleted: true}
	}
	o, err := decodeObject(e.Data)
	if err != nil {
		return content{bad: true}
	}
	return content{obj: o}
}

// equal reports whether two contents are the same JSON: key order,
// whitespace and number spelling (1, 1.0, 1e0) do not matter; "id" is
// ignored.
func (c content) equal(o content) bool {
	if c.bad || o.bad || c.deleted != o.deleted {
		return false
	}
	if c.deleted {
		return true
	}
	n := 0
	for k, v := range c.obj {
		if k == "id" {
			continue
		}
		n++
		w, ok := o.obj[k]
		if !ok || !sameJSON(v, w) {
			return false
		}
	}
	for k := range o.obj {
		if k != "id" {
			n--
		}
	}
	return n == 0
}

// sameJSON reports whether two JSON values are semantically equal.
func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, ok := decodeJSON(a)
	if !ok {
		return false
	}
	vb, ok := decodeJSON(b)
	if !ok {
		return false
	}
	return equalValues(va, vb)
}

// decodeJSON decodes one JSON value, keeping numbers exact.
func decodeJSON(data []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// equalValues compares decoded JSON values; numbers compare exactly by
// value.
func equalValues(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalValues(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValues(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		if !smallExponent(x) || !smallExponent(y) {
			return false
		}
		rx, okx := new(big.Rat).SetString(string(x))
		ry, oky := new(big.Rat).SetString(string(y))
		return okx && oky && rx.Cmp(ry) == 0
	default:
		// string, bool, nil
		return a == b
	}
}

// smallExponent reports whether a JSON number's exponent is small enough to
// compare it exactly without a huge allocation.
func smallExponent(n json.Number) bool {
	i := strings.IndexAny(string(n), "eE")
	if i < 0 {
		return true
	}
	exp, err := strconv.Atoi(string(n)[i+1:])
	return err == nil && exp >= -1000 && exp <= 1000
}
