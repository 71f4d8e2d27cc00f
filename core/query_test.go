package core_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/lfsync/lfsync/core"
)

// queryDocs is the document set the query tests run over.
var queryDocs = []core.Doc{
	{ID: "a", Data: json.RawMessage(`{"id":"a","title":"Apple","n":3,"done":false,"tags":["red","fruit"],"author":{"name":"Ann","age":30},"score":null}`)},
	{ID: "b", Data: json.RawMessage(`{"id":"b","title":"banana","n":10,"done":true,"tags":["yellow","fruit"],"author":{"name":"Bob"}}`)},
	// Same fields, other types.
	{ID: "c", Data: json.RawMessage(`{"id":"c","title":"Cherry","n":"3","done":"false","tags":"red","author":"Carl"}`)},
	// Escapes, whitespace, an empty array, a null nested field.
	{ID: "d", Data: json.RawMessage(`{ "id" : "d", "n" : 2.5e0, "done" : false, "tags" : [ ], "author" : { "name" : null }, "title" : "d\u00e9j\u00e0 \"vu\"" }`)},
	// Nested arrays and objects; done and author missing.
	{ID: "e", Data: json.RawMessage(`{"id":"e","title":"Apple pie","n":-1,"tags":[["nested"],{"k":1}],"meta":{"a":[1,2]}}`)},
	{ID: "t", Deleted: true},
}

// ids returns the "id" of every result.
func ids(t *testing.T, results []json.RawMessage) []string {
	t.Helper()
	out := []string{}
	for _, r := range results {
		var d struct{ ID string }
		if err := json.Unmarshal(r, &d); err != nil {
			t.Fatalf("result %s: %v", r, err)
		}
		out = append(out, d.ID)
	}
	return out
}

func where(field, op, value string) core.Query {
	return core.Query{Where: []core.Condition{{Field: field, Op: op, Value: json.RawMessage(value)}}}
}

func TestQueryOperators(t *testing.T) {
	tests := []struct {
		name string
		q    core.Query
		want string // ids, space separated
	}{
		{"eq bool", where("done", "==", `false`), "a d"},
		{"eq bool true", where("done", "==", `true`), "b"},
		{"ne is not eq, missing included", where("done", "!=", `false`), "b c e"},
		{"eq number", where("n", "==", `3`), "a"},
		{"eq number numerically", where("n", "==", `3.0`), "a"},
		{"eq string is not number", where("n", "==", `"3"`), "c"},
		{"eq exponent", where("n", "==", `25e-1`), "d"},
		{"eq object deep, key order free", where("author", "==", `{"age":30.0,"name":"Ann"}`), "a"},
		{"eq object differs", where("author", "==", `{"name":"Ann"}`), ""},
		{"eq array", where("tags", "==", `["red","fruit"]`), "a"},
		{"eq array order matters", where("tags", "==", `["fruit","red"]`), ""},
		{"eq empty array", where("tags", "==", `[]`), "d"},
		{"eq nested array", where("meta.a", "==", `[1.0,2]`), "e"},
		{"eq null matches null and missing", where("score", "==", `null`), "a b c d e"},
		{"ne null", where("author.name", "!=", `null`), "a b"},
		{"eq escaped string", where("title", "==", `"déjà \"vu\""`), "d"},
		{"eq escaped value", where("title", "==", `"\u0041pple"`), "a"},
		{"lt number skips other types", where("n", "<", `3`), "d e"},
		{"le number", where("n", "<=", `3`), "a d e"},
		{"gt number", where("n", ">", `3`), "b"},
		{"ge number", where("n", ">=", `3`), "a b"},
		{"lt string bytes", where("title", "<", `"B"`), "a e"},
		{"ge string bytes", where("title", ">=", `"a"`), "b d"},
		{"lt bool", where("done", "<", `true`), "a d"},
		{"gt string on numbers", where("n", ">", `"2"`), "c"},
		{"ge nested", where("author.age", ">=", `30`), "a"},
		{"in", where("n", "in", `[3,"3"]`), "a c"},
		{"in empty", where("n", "in", `[]`), ""},
		{"in objects", where("author", "in", `[{"name":"Bob"},"Carl"]`), "b c"},
		{"in null matches missing", where("done", "in", `[null,true]`), "b e"},
		{"notIn", where("n", "notIn", `[3,10]`), "c d e"},
		{"notIn empty", where("n", "notIn", `[]`), "a b c d e"},
		{"contains array element", where("tags", "contains", `"fruit"`), "a b"},
		{"contains element or substring", where("tags", "contains", `"red"`), "a c"},
		{"contains substring only in strings", where("tags", "contains", `"re"`), "c"},
		{"contains array in array", where("tags", "contains", `["nested"]`), "e"},
		{"contains object in array", where("tags", "contains", `{"k":1.0}`), "e"},
		{"contains number in array", where("meta.a", "contains", `2`), "e"},
		{"contains on number field", where("n", "contains", `3`), ""},
		{"contains string", where("title", "contains", `"pp"`), "a e"},
		{"contains escaped", where("title", "contains", `"\"vu\""`), "d"},
		{"startsWith", where("title", "startsWith", `"Apple"`), "a e"},
		{"startsWith case sensitive", where("title", "startsWith", `"apple"`), ""},
		{"startsWith unicode", where("title", "startsWith", `"déjà"`), "d"},
		{"startsWith skips non-strings", where("n", "startsWith", `"3"`), "c"},
		{"endsWith", where("title", "endsWith", `"pie"`), "e"},
		{"endsWith empty", where("title", "endsWith", `""`), "a b c d e"},
		{"isNull nested, through non-object", where("author.name", "isNull", ``), "c d e"},
		{"isNull with null value", where("author.name", "isNull", `null`), "c d e"},
		{"isNotNull", where("author.name", "isNotNull", ``), "a b"},
		{"isNull missing", where("done", "isNull", ``), "e"},
		{"isNull deep missing", where("author.name.first", "isNull", ``), "a b c d e"},
		{"isNull null field", where("score", "isNull", ``), "a b c d e"},
		{"eq nested", where("author.name", "==", `"Ann"`), "a"},
		{"nested path into array is missing", where("tags.0", "isNull", ``), "a b c d e"},
		{"where is ANDed", core.Query{Where: []core.Condition{
			{Field: "done", Op: "==", Value: json.RawMessage(`false`)},
			{Field: "n", Op: ">", Value: json.RawMessage(`2.6`)},
		}}, "a"},
		{"same field twice", core.Query{Where: []core.Condition{
			{Field: "n", Op: ">=", Value: json.RawMessage(`0`)},
			{Field: "n", Op: "<", Value: json.RawMessage(`5`)},
		}}, "a d"},
		{"field and its parent", core.Query{Where: []core.Condition{
			{Field: "author", Op: "isNotNull"},
			{Field: "author.name", Op: "isNull"},
		}}, "c d"},
		{"no conditions skips tombstones", core.Query{}, "a b c d e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.q.Run(queryDocs)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			want := strings.Fields(tt.want)
			if got := ids(t, res); !reflect.DeepEqual(got, want) {
				t.Fatalf("Run = %q, want %q", got, want)
			}
			// Match agrees with Run on every live document.
			for _, d := range queryDocs {
				if d.Deleted {
					continue
				}
				ok, err := tt.q.Match(d.Data)
				if err != nil {
					t.Fatalf("Match(%s): %v", d.ID, err)
				}
				if in := strings.Contains(" "+tt.want+" ", " "+d.ID+" "); ok != in {
					t.Fatalf("Match(%s) = %v, want %v", d.ID, ok, in)
				}
			}
		})
	}
}

func TestQueryOrder(t *testing.T) {
	order := func(keys ...core.Order) core.Query { return core.Query{OrderBy: keys} }
	tests := []struct {
		name string
		q    core.Query
		want string
	}{
		{"number asc, strings after numbers", order(core.Order{Field: "n"}), "e d a b c"},
		{"number desc", order(core.Order{Field: "n", Desc: true}), "c b a d e"},
		{"nulls first asc, ties by id", order(core.Order{Field: "done"}), "e a d b c"},
		{"nulls last desc, ties by id", order(core.Order{Field: "done", Desc: true}), "c b a d e"},
		{"several keys", order(core.Order{Field: "done"}, core.Order{Field: "title", Desc: true}), "e d a b c"},
		{"nested, missing and null alike", order(core.Order{Field: "author.name"}), "c d e a b"},
		{"nested desc", order(core.Order{Field: "author.name", Desc: true}), "b a c d e"},
		{"arrays by element, then length", order(core.Order{Field: "tags"}), "c d a b e"},
		{"objects by key, then value", order(core.Order{Field: "author"}), "e c a d b"},
		{"missing everywhere: by id", order(core.Order{Field: "nope"}), "a b c d e"},
		{"where with order", core.Query{
			Where:   []core.Condition{{Field: "n", Op: "isNotNull"}},
			OrderBy: []core.Order{{Field: "title"}},
		}, "a e c b d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.q.Run(queryDocs)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got, want := ids(t, res), strings.Fields(tt.want); !reflect.DeepEqual(got, want) {
				t.Fatalf("Run = %q, want %q", got, want)
			}
		})
	}
}

func TestQueryUnsortedInput(t *testing.T) {
	docs := []core.Doc{queryDocs[3], queryDocs[0], queryDocs[5], queryDocs[4], queryDocs[1]}
	res, err := core.Query{}.Run(docs)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, res), []string{"a", "b", "d", "e"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Run = %q, want %q (by id)", got, want)
	}
}

func TestQueryPaging(t *testing.T) {
	byN := []core.Order{{Field: "n"}} // e d a b c
	tests := []struct {
		limit, offset int
		want          string
	}{
		{0, 0, "e d a b c"},
		{2, 0, "e d"},
		{2, 1, "d a"},
		{10, 3, "b c"},
		{0, 4, "c"},
		{1, 5, ""},
		{0, 50, ""},
	}
	for _, tt := range tests {
		q := core.Query{OrderBy: byN, Limit: tt.limit, Offset: tt.offset}
		res, err := q.Run(queryDocs)
		if err != nil {
			t.Fatalf("limit %d offset %d: %v", tt.limit, tt.offset, err)
		}
		if res == nil {
			t.Fatalf("limit %d offset %d: Run returned nil, want an empty slice", tt.limit, tt.offset)
		}
		if got, want := ids(t, res), strings.Fields(tt.want); !reflect.DeepEqual(got, want) {
			t.Fatalf("limit %d offset %d: Run = %q, want %q", tt.limit, tt.offset, got, want)
		}
	}
}

func TestQueryValidate(t *testing.T) {
	c := func(field, op, value string) core.Query { return where(field, op, value) }
	tests := []struct {
		name string
		q    core.Query
		want string // in the error
	}{
		{"empty field", c("", "==", `1`), "where[0]: field is missing"},
		{"empty segment", c("a..b", "==", `1`), `field "a..b" has an empty segment`},
		{"trailing dot", c("a.", "==", `1`), "empty segment"},
		{"missing op", c("a", "", `1`), "where[0]: op is missing"},
		{"unknown op", c("a", "~=", `1`), `unknown op "~="`},
		{"op is case sensitive", c("a", "NOTIN", `[]`), `unknown op "NOTIN"`},
		{"eq without value", c("a", "==", ``), "value is missing"},
		{"contains without value", c("a", "contains", ``), "value is missing"},
		{"lt without value", c("a", "<", ``), "value is missing"},
		{"lt null", c("a", "<", `null`), "must be a number, string or boolean"},
		{"lt array", c("a", "<", `[1]`), "must be a number, string or boolean"},
		{"in not array", c("a", "in", `1`), "value must be an array"},
		{"notIn missing", c("a", "notIn", ``), "value must be an array"},
		{"startsWith number", c("a", "startsWith", `1`), "value must be a string"},
		{"endsWith missing", c("a", "endsWith", ``), "value must be a string"},
		{"isNull with value", c("a", "isNull", `1`), "takes no value"},
		{"bad JSON", c("a", "==", `{"x":`), "value is not valid JSON"},
		{"negative limit", core.Query{Limit: -1}, "limit -1 is negative"},
		{"negative offset", core.Query{Offset: -2}, "offset -2 is negative"},
		{"orderBy empty field", core.Query{OrderBy: []core.Order{{Field: "a"}, {}}}, "orderBy[1]: field is missing"},
		{"second condition", core.Query{Where: []core.Condition{
			{Field: "a", Op: "isNull"}, {Field: "b", Op: "in", Value: json.RawMessage(`"x"`)},
		}}, `where[1]: op in on "b": value must be an array`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.q.Validate()
			if err == nil {
				t.Fatal("Validate accepted the query")
			}
			if !errors.Is(err, core.ErrInvalidQuery) {
				t.Fatalf("Validate = %v, want an error wrapping ErrInvalidQuery", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %q, want it to say %q", err, tt.want)
			}
			if _, err := tt.q.Run(queryDocs); !errors.Is(err, core.ErrInvalidQuery) {
				t.Fatalf("Run = %v, want ErrInvalidQuery", err)
			}
			if _, err := tt.q.Match(queryDocs[0].Data); !errors.Is(err, core.ErrInvalidQuery) {
				t.Fatalf("Match = %v, want ErrInvalidQuery", err)
			}
		})
	}
	for _, q := range []core.Query{
		{},
		c("a", "isNull", `null`),
		c("a.b.c", "in", `[]`),
		c("a", "<", `true`),
		c("a", "==", ` {"x":[1,{"y":null}]} `),
		{Limit: 5, Offset: 3, OrderBy: []core.Order{{Field: "a", Desc: true}}},
	} {
		if err := q.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", q, err)
		}
	}
}

func TestQueryJSON(t *testing.T) {
	const in = `{"where":[{"field":"done","op":"==","value":false}],"orderBy":[{"field":"title","desc":true}],"limit":20}`
	var q core.Query
	if err := json.Unmarshal([]byte(in), &q); err != nil {
		t.Fatal(err)
	}
	want := core.Query{
		Where:   []core.Condition{{Field: "done", Op: "==", Value: json.RawMessage(`false`)}},
		OrderBy: []core.Order{{Field: "title", Desc: true}},
		Limit:   20,
	}
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("decoded %+v, want %+v", q, want)
	}
	out, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("encoded %s, want %s", out, in)
	}
	res, err := q.Run(queryDocs)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, res); !reflect.DeepEqual(got, []string{"d", "a"}) {
		t.Fatalf("Run = %q, want [d a]", got)
	}

	// A JSON null value survives the round trip and means null.
	q = core.Query{}
	if err := json.Unmarshal([]byte(`{"where":[{"field":"score","op":"==","value":null}]}`), &q); err != nil {
		t.Fatal(err)
	}
	if string(q.Where[0].Value) != "null" {
		t.Fatalf("null value decoded as %q", q.Where[0].Value)
	}
	if out, _ := json.Marshal(q); string(out) != `{"where":[{"field":"score","op":"==","value":null}]}` {
		t.Fatalf("encoded %s", out)
	}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	// Empty query encodes as {}.
	if out, _ := json.Marshal(core.Query{}); string(out) != `{}` {
		t.Fatalf("empty query encoded as %s", out)
	}
}

func TestQueryDocuments(t *testing.T) {
	match := func(q core.Query, data string) (bool, error) { return q.Match(json.RawMessage(data)) }
	tests := []struct {
		name string
		q    core.Query
		data string
		want bool
	}{
		{"escaped key", where("title", "==", `"x"`), `{"ti\u0074le":"x"}`, true},
		{"last duplicate key wins", where("n", "==", `2`), `{"n":1,"n":2}`, true},
		{"duplicate parent replaced", where("a.b", "isNull", ``), `{"a":{"b":1},"a":3}`, true},
		{"whitespace everywhere", where("a.b", "==", `1`), "{ \"a\" :\n\t{ \"b\" : 1 } }", true},
		{"braces in strings", where("b", "==", `2`), `{"a":"}{][\"","b":2}`, true},
		{"deep value skipped", where("z", "==", `true`), `{"a":[{"b":[1,{"c":"]"}]}],"z":true}`, true},
		{"empty object", where("a", "isNull", ``), `{}`, true},
		{"large number", where("n", ">", `1e300`), `{"n":1e400}`, true},
		{"negative zero", where("n", "==", `0`), `{"n":-0}`, true},
	}
	for _, tt := range tests {
		got, err := match(tt.q, tt.data)
		if err != nil {
			t.Fatalf("%s: Match: %v", tt.name, err)
		}
		if got != tt.want {
			t.Fatalf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}

	if ok, err := where("a", "isNull", ``).Match(nil); ok || err != nil {
		t.Fatalf("Match(nil) = %v, %v; want false, nil", ok, err)
	}
	for _, bad := range []string{`{"a":`, `[1]`, `"x"`, `{"a" 1}`, `{"a":1,}`, `{"a":tru}`, `{"a":"x}`, `{"a":1-}`} {
		if _, err := where("a", "==", `1`).Match(json.RawMessage(bad)); err == nil {
			t.Errorf("Match(%s) succeeded, want an error", bad)
		}
		docs := []core.Doc{{ID: "bad", Data: json.RawMessage(bad)}}
		if _, err := where("a", "==", `1`).Run(docs); err == nil || !strings.Contains(err.Error(), `"bad"`) {
			t.Errorf("Run over %s = %v, want an error naming the document", bad, err)
		}
	}
}

func TestQueryRunReturnsDocumentData(t *testing.T) {
	res, err := where("n", "==", `10`).Run(queryDocs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || string(res[0]) != string(queryDocs[1].Data) {
		t.Fatalf("Run = %s, want the data of b", res)
	}
}
