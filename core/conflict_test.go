package core

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ev(id string, at time.Duration, op protocol.Operation, data string) protocol.Event {
	e := protocol.Event{ID: id, Operation: op, CreatedAt: t0.Add(at), DataID: "d1"}
	if data != "" {
		e.Data = json.RawMessage(data)
	}
	return e
}

func mustData(t *testing.T, d Doc) map[string]any {
	t.Helper()
	if d.Deleted {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(d.Data, &m); err != nil {
		t.Fatalf("document data %s: %v", d.Data, err)
	}
	return m
}

func TestStampCompareTieBreaksByEventID(t *testing.T) {
	a := Stamp{At: t0, EventID: "a"}
	b := Stamp{At: t0, EventID: "b"}
	later := Stamp{At: t0.Add(time.Millisecond), EventID: "a"}
	if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
		t.Fatalf("same-time stamps do not order by event id")
	}
	if later.Compare(b) != 1 {
		t.Fatalf("a later stamp does not win over a larger event id")
	}
}

func TestNextTimeIsAfterEverythingSeen(t *testing.T) {
	now := t0
	if got := nextTime(now, Stamp{}); !got.Equal(now) {
		t.Fatalf("nextTime with no history = %v, want now", got)
	}
	ahead := Stamp{At: t0.Add(time.Hour), EventID: "x"}
	if got := nextTime(now, ahead); !got.After(ahead.At) {
		t.Fatalf("nextTime(%v) = %v, not after the stamp seen", ahead.At, got)
	}
	if got := nextTime(t0.Add(1500*time.Microsecond), Stamp{}); got.Nanosecond()%int(time.Millisecond) != 0 {
		t.Fatalf("nextTime kept sub-millisecond precision the wire drops: %v", got)
	}
}

func TestLastWriteWinsLaterStampWins(t *testing.T) {
	d, _, err := applyLastWriteWins(Doc{}, false, ev("e1", 0, protocol.OpInsert, `{"id":"d1","v":1}`))
	if err != nil {
		t.Fatal(err)
	}
	d, changed, _ := applyLastWriteWins(d, true, ev("e0", -time.Second, protocol.OpUpdate, `{"id":"d1","v":0}`))
	if changed || mustData(t, d)["v"] != 1.0 {
		t.Fatalf("an older update overwrote a newer one: %s", d.Data)
	}
	d, changed, _ = applyLastWriteWins(d, true, ev("e2", time.Second, protocol.OpUpdate, `{"id":"d1","v":2}`))
	if !changed || mustData(t, d)["v"] != 2.0 {
		t.Fatalf("a newer update did not win: %s", d.Data)
	}
	if _, changed, _ := applyLastWriteWins(d, true, ev("e2", time.Second, protocol.OpUpdate, `{"id":"d1","v":2}`)); changed {
		t.Fatal("re-applying the same event changed the document")
	}
}

func TestLastWriteWinsTieIsDeterministic(t *testing.T) {
	a := ev("0190-aaaa", 0, protocol.OpUpdate, `{"id":"d1","v":"a"}`)
	b := ev("0190-bbbb", 0, protocol.OpUpdate, `{"id":"d1","v":"b"}`)
	ab, _, _ := applyLastWriteWins(Doc{}, false, a)
	ab, _, _ = applyLastWriteWins(ab, true, b)
	ba, _, _ := applyLastWriteWins(Doc{}, false, b)
	ba, _, _ = applyLastWriteWins(ba, true, a)
	if !bytes.Equal(ab.Data, ba.Data) || mustData(t, ab)["v"] != "b" {
		t.Fatalf("replicas disagree on a tie: %s vs %s (want v=b, the larger event id)", ab.Data, ba.Data)
	}
}

func TestLastWriteWinsTombstoneBlocksOlderUpdate(t *testing.T) {
	d, _, _ := applyLastWriteWins(Doc{}, false, ev("e1", 0, protocol.OpInsert, `{"id":"d1","v":1}`))
	d, changed, _ := applyLastWriteWins(d, true, ev("e3", 2*time.Second, protocol.OpDelete, ""))
	if !changed || !d.Deleted || d.Data != nil {
		t.Fatalf("delete did not leave a tombstone: %+v", d)
	}
	d, changed, _ = applyLastWriteWins(d, true, ev("e2", time.Second, protocol.OpUpdate, `{"id":"d1","v":2}`))
	if changed || !d.Deleted {
		t.Fatalf("a late, older update resurrected a deleted document: %+v", d)
	}
	d, changed, _ = applyLastWriteWins(d, true, ev("e4", 3*time.Second, protocol.OpUpdate, `{"id":"d1","v":4}`))
	if !changed || d.Deleted || mustData(t, d)["v"] != 4.0 {
		t.Fatalf("an update stamped after the delete did not resurrect: %+v", d)
	}
}

func TestServerOrderFollowsSequenceNotTime(t *testing.T) {
	late := ev("e1", time.Hour, protocol.OpUpdate, `{"id":"d1","v":"late-clock"}`)
	late.ServerSequence = 1
	early := ev("e2", 0, protocol.OpUpdate, `{"id":"d1","v":"sequenced-last"}`)
	early.ServerSequence = 2
	d, _, _ := applyServerOrder(Doc{}, false, late)
	d, _, _ = applyServerOrder(d, true, early)
	if mustData(t, d)["v"] != "sequenced-last" || d.Sequence != 2 {
		t.Fatalf("server order did not follow sequences: %s seq %d", d.Data, d.Sequence)
	}
	if _, changed, _ := applyServerOrder(d, true, late); changed {
		t.Fatal("an event sequenced earlier overwrote a later one")
	}
}

// fieldClient makes local changes the way a client under fieldMerge does.
var fieldClient = &Client{opts: Options{Conflict: FieldMerge}}

func localWrite(t *testing.T, c *Client, d Doc, exists bool, at time.Time, data string) (Doc, protocol.Event) {
	t.Helper()
	var obj object
	del := data == ""
	if !del {
		var err error
		if obj, err = decodeObject([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	doc, e, err := c.localChange(at, d, exists, "d1", obj, del)
	if err != nil {
		t.Fatal(err)
	}
	return doc, e
}

func TestFieldMergeKeepsConcurrentEditsOfDifferentFields(t *testing.T) {
	base, e0 := localWrite(t, fieldClient, Doc{}, false, t0, `{"title":"a","done":false}`)
	// Two replicas hold base, then edit different fields concurrently.
	r1, e1 := localWrite(t, fieldClient, base, true, t0.Add(time.Second), `{"title":"b","done":false}`)
	r2, e2 := localWrite(t, fieldClient, base, true, t0.Add(time.Second), `{"title":"a","done":true}`)
	r1, _, err := applyFieldMerge(r1, true, e2)
	if err != nil {
		t.Fatal(err)
	}
	r2, _, err = applyFieldMerge(r2, true, e1)
	if err != nil {
		t.Fatal(err)
	}
	// A third replica that only now sees everything, in another order.
	r3, _, _ := applyFieldMerge(Doc{}, false, e2)
	r3, _, _ = applyFieldMerge(r3, true, e0)
	r3, _, _ = applyFieldMerge(r3, true, e1)
	for i, d := range []Doc{r1, r2, r3} {
		m := mustData(t, d)
		if m["title"] != "b" || m["done"] != true || m["id"] != "d1" {
			t.Errorf("replica %d: %s, want title=b done=true", i+1, d.Data)
		}
	}
	if !bytes.Equal(r1.Data, r2.Data) || !bytes.Equal(r2.Data, r3.Data) {
		t.Fatalf("replicas differ: %s / %s / %s", r1.Data, r2.Data, r3.Data)
	}
}

func TestFieldMergeSameFieldLaterWins(t *testing.T) {
	base, _ := localWrite(t, fieldClient, Doc{}, false, t0, `{"title":"a"}`)
	_, e1 := localWrite(t, fieldClient, base, true, t0.Add(time.Second), `{"title":"one"}`)
	_, e2 := localWrite(t, fieldClient, base, true, t0.Add(2*time.Second), `{"title":"two"}`)
	x, _, _ := applyFieldMerge(base, true, e2)
	x, _, _ = applyFieldMerge(x, true, e1)
	if mustData(t, x)["title"] != "two" {
		t.Fatalf("older field value won: %s", x.Data)
	}
}

func TestFieldMergeDeleteHidesOlderFields(t *testing.T) {
	base, _ := localWrite(t, fieldClient, Doc{}, false, t0, `{"a":1,"b":1}`)
	_, olderEdit := localWrite(t, fieldClient, base, true, t0.Add(time.Second), `{"a":2,"b":1,"c":5}`)
	_, del := localWrite(t, fieldClient, base, true, t0.Add(2*time.Second), "")
	x, _, _ := applyFieldMerge(base, true, del)
	x, changed, _ := applyFieldMerge(x, true, olderEdit)
	if !x.Deleted {
		t.Fatalf("an edit older than the delete resurrected the document (changed=%v): %s", changed, x.Data)
	}
	y, _, _ := applyFieldMerge(base, true, olderEdit)
	y, _, _ = applyFieldMerge(y, true, del)
	if !y.Deleted {
		t.Fatalf("delete after the edit did not delete: %s", y.Data)
	}
	_, newer := localWrite(t, fieldClient, x, true, t0.Add(3*time.Second), `{"z":1}`)
	x, _, _ = applyFieldMerge(x, true, newer)
	y, _, _ = applyFieldMerge(y, true, newer)
	if x.Deleted || !bytes.Equal(x.Data, y.Data) || mustData(t, x)["z"] != 1.0 || mustData(t, x)["c"] != nil {
		t.Fatalf("resurrection differs or kept deleted fields: %s vs %s", x.Data, y.Data)
	}
}

// TestStrategiesConverge lets replicas write concurrently, then delivers
// every event to every replica in a different random order: under
// lastWriteWins and fieldMerge all replicas must end identical.
func TestStrategiesConverge(t *testing.T) {
	for _, strategy := range []ConflictStrategy{LastWriteWins, FieldMerge} {
		t.Run(string(strategy), func(t *testing.T) {
			c := &Client{opts: Options{Conflict: strategy}}
			apply := applyLastWriteWins
			if strategy == FieldMerge {
				apply = applyFieldMerge
			}
			rng := rand.New(rand.NewPCG(1, uint64(len(strategy))))
			for round := 0; round < 200; round++ {
				const replicas = 3
				docs := make([]Doc, replicas)
				exists := make([]bool, replicas)
				var all []protocol.Event
				// Each replica writes a few times, seeing only its own writes
				// and, sometimes, the events so far.
				for step := 0; step < 8; step++ {
					r := rng.IntN(replicas)
					if rng.IntN(3) == 0 {
						for _, e := range all {
							docs[r], _, _ = apply(docs[r], exists[r], e)
							exists[r] = true
						}
					}
					data := ""
					if rng.IntN(5) != 0 {
						m := map[string]int{}
						for _, f := range []string{"a", "b", "c"} {
							if rng.IntN(3) != 0 {
								m[f] = rng.IntN(4)
							}
						}
						b, _ := json.Marshal(m)
						data = string(b)
					} else if !exists[r] || docs[r].Deleted {
						continue
					}
					at := t0.Add(time.Duration(rng.IntN(4)) * time.Millisecond)
					var e protocol.Event
					docs[r], e = localWrite(t, c, docs[r], exists[r], at, data)
					exists[r] = true
					all = append(all, e)
				}
				var final []Doc
				for r := 0; r < replicas; r++ {
					order := rng.Perm(len(all))
					for _, i := range order {
						d, _, err := apply(docs[r], exists[r], all[i])
						if err != nil {
							t.Fatal(err)
						}
						docs[r], exists[r] = d, true
					}
					final = append(final, docs[r])
				}
				for r := 1; r < replicas; r++ {
					if final[r].Deleted != final[0].Deleted || !bytes.Equal(final[r].Data, final[0].Data) {
						t.Fatalf("round %d: replica %d holds %s (deleted %v), replica 0 holds %s (deleted %v)",
							round, r, final[r].Data, final[r].Deleted, final[0].Data, final[0].Deleted)
					}
				}
			}
		})
	}
}

func TestLocalFieldsStampOnlyChangedFields(t *testing.T) {
	base, _ := localWrite(t, fieldClient, Doc{}, false, t0, `{"a":1,"b":2}`)
	next, e := localWrite(t, fieldClient, base, true, t0.Add(time.Second), `{"a":1,"b":3}`)
	if next.Fields["a"] != base.Fields["a"] {
		t.Errorf("unchanged field a got a new stamp")
	}
	if next.Fields["b"].EventID != e.ID {
		t.Errorf("changed field b kept its old stamp")
	}
	removed, e2 := localWrite(t, fieldClient, next, true, t0.Add(2*time.Second), `{"a":1}`)
	if removed.Fields["b"].EventID != e2.ID {
		t.Errorf("removed field b was not stamped with the removal")
	}
	if e2.Operation != protocol.OpUpdate || e.Meta == nil {
		t.Errorf("operation %v, meta %s", e2.Operation, e.Meta)
	}
	fields, ok := decodeFieldMeta(e2.Meta)
	if !ok || fields["b"].EventID != e2.ID || fields["a"] != base.Fields["a"] {
		t.Errorf("meta %s does not carry the field stamps", e2.Meta)
	}
}

func TestDecodeObjectRejectsNonObjects(t *testing.T) {
	for _, in := range []string{``, `[]`, `"x"`, `1`, `null`, `{"a":`, `{} x`} {
		if _, err := decodeObject([]byte(in)); Code(err) != CodeInvalid {
			t.Errorf("decodeObject(%q) error %v, want invalid", in, err)
		}
	}
	if o, err := decodeObject([]byte(` {"a":1} `)); err != nil || string(o["a"]) != "1" {
		t.Errorf("decodeObject of an object: %v %v", o, err)
	}
}
