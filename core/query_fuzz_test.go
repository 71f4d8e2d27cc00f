package core_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lfsync/lfsync/core"
)

// FuzzQueryField checks the query's field reader against encoding/json: the
// value found at a path by decoding the whole document must equal (==) what
// the query reads there, and a missing path must read as null. Malformed
// documents must give an error, never a panic.
func FuzzQueryField(f *testing.F) {
	for _, d := range queryDocs {
		if !d.Deleted {
			f.Add(string(d.Data), "author.name")
		}
	}
	f.Add(`{"a":{"b":[1,{"c":"]}"}]},"a":{"b":2}}`, "a.b")
	f.Add(`{"k\u00e9y":"v\n","x":-0.5e-3}`, "kéy")
	f.Add(`{"a":`, "a")
	f.Fuzz(func(t *testing.T, data, field string) {
		q := func(op, value string) core.Query {
			return core.Query{Where: []core.Condition{{Field: field, Op: op, Value: json.RawMessage(value)}}, OrderBy: []core.Order{{Field: field}}}
		}
		if q("isNull", "").Validate() != nil {
			return // not a valid path
		}
		var doc any
		if !utf8.ValidString(data) || json.Unmarshal([]byte(data), &doc) != nil {
			// Malformed or not decodable: any answer but a panic.
			q("isNull", "").Match(json.RawMessage(data))
			q("isNull", "").Run([]core.Doc{{ID: "x", Data: json.RawMessage(data)}})
			return
		}
		obj, ok := doc.(map[string]any)
		if !ok {
			if _, err := q("isNull", "").Match(json.RawMessage(data)); err == nil {
				t.Fatalf("Match over non-object %s succeeded", data)
			}
			return
		}
		var v any = obj
		for _, seg := range strings.Split(field, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[seg]
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []core.Query{q("==", string(want)), q("in", "["+string(want)+"]")} {
			matched, err := c.Match(json.RawMessage(data))
			if err != nil {
				t.Fatalf("Match(%s) with %s %s: %v", data, c.Where[0].Op, want, err)
			}
			if !matched {
				t.Fatalf("Match(%s): %q %s %s is false; encoding/json reads %s there", data, field, c.Where[0].Op, want, want)
			}
			res, err := c.Run([]core.Doc{{ID: "x", Data: json.RawMessage(data)}})
			if err != nil || len(res) != 1 {
				t.Fatalf("Run(%s) with %q == %s = %d results, %v; want the document", data, field, want, len(res), err)
			}
		}
		if isNull, _ := q("isNull", "").Match(json.RawMessage(data)); isNull != (v == nil) {
			t.Fatalf("Match(%s): %q isNull = %v, encoding/json reads %s", data, field, isNull, want)
		}
	})
}
