package core_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/lfsync/lfsync/core"
)

// benchDocs returns n todo-like documents ordered by id, every tenth a
// tombstone.
func benchDocs(n int) []core.Doc {
	docs := make([]core.Doc, n)
	for i := range docs {
		id := strconv.Itoa(100000 + i)
		if i%10 == 9 {
			docs[i] = core.Doc{ID: id, Deleted: true}
			continue
		}
		docs[i] = core.Doc{ID: id, Data: json.RawMessage(`{"id":"` + id + `","title":"Task ` + strconv.Itoa(i*7919%n) +
			`","done":` + strconv.FormatBool(i%3 == 0) + `,"priority":` + strconv.Itoa(i%5) +
			`,"author":{"name":"user` + strconv.Itoa(i%50) + `","team":"t` + strconv.Itoa(i%4) + `"}` +
			`,"tags":["work","home","t` + strconv.Itoa(i%7) + `"],"notes":"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."}`)}
	}
	return docs
}

func BenchmarkQuery(b *testing.B) {
	docs := benchDocs(10000)
	benches := []struct {
		name string
		q    core.Query
	}{
		{"GetAll", core.Query{}},
		{"WhereOrderByLimit", core.Query{
			Where:   []core.Condition{{Field: "done", Op: "==", Value: json.RawMessage(`false`)}},
			OrderBy: []core.Order{{Field: "priority", Desc: true}, {Field: "title"}},
			Limit:   20,
		}},
		{"NestedWhere", core.Query{
			Where: []core.Condition{
				{Field: "author.team", Op: "in", Value: json.RawMessage(`["t1","t2"]`)},
				{Field: "tags", Op: "contains", Value: json.RawMessage(`"t3"`)},
			},
		}},
		{"OrderAll", core.Query{OrderBy: []core.Order{{Field: "title"}}}},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bb.q.Run(docs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
