package core

import (
	"encoding/json"
	"strconv"
	"testing"
)

func TestDocCacheBounds(t *testing.T) {
	dc := newDocCache()
	docs := make([]Doc, cachePartialDocs+10)
	for i := range docs {
		docs[i] = Doc{ID: "d" + strconv.Itoa(i), Data: json.RawMessage(`{}`)}
	}
	// Documents written into a repository not held whole: least recently
	// used dropped beyond the bound.
	dc.wrote("p", 4, 5, docs)
	rc := dc.repos["p"]
	if rc.full || len(rc.docs) != cachePartialDocs || rc.lru.Len() != cachePartialDocs {
		t.Fatalf("partial cache holds %d documents (%d in LRU), want %d", len(rc.docs), rc.lru.Len(), cachePartialDocs)
	}
	if _, _, known := dc.get("p", 5, "d0"); known {
		t.Fatal("the least recently used document was kept")
	}
	if _, ok, known := dc.get("p", 5, "d"+strconv.Itoa(len(docs)-1)); !ok || !known {
		t.Fatal("the last document written was dropped")
	}
	if _, _, known := dc.get("p", 5, "never"); known {
		t.Fatal("a partial cache claims to know an absent document")
	}
	if _, _, known := dc.get("p", 4, "d9"); known {
		t.Fatal("served for another generation")
	}
	// A whole repository above the bound is not held whole.
	big := make([]Doc, cacheFullDocs+1)
	for i := range big {
		big[i] = Doc{ID: strconv.Itoa(i)}
	}
	dc.fill("big", 1, big)
	if _, ok := dc.all("big", 1); ok {
		t.Fatal("a repository above the bound was cached whole")
	}
	// One that grows above it by writes falls back to the documents written.
	dc.fill("grow", 1, big[:cacheFullDocs])
	if _, ok := dc.all("grow", 1); !ok {
		t.Fatal("a repository at the bound was not cached whole")
	}
	dc.wrote("grow", 1, 2, big[cacheFullDocs:])
	if rc := dc.repos["grow"]; rc.full || len(rc.docs) != 1 {
		t.Fatalf("after growing past the bound: full %v, %d documents", rc.full, len(rc.docs))
	}
	// Large documents count by bytes.
	fat := []Doc{{ID: "f", Data: make(json.RawMessage, cacheFullBytes)}}
	dc.fill("fat", 1, fat)
	if _, ok := dc.all("fat", 1); ok {
		t.Fatal("a repository above the byte bound was cached whole")
	}
}

func TestDocCacheReturnsCopies(t *testing.T) {
	dc := newDocCache()
	dc.fill("r", 3, []Doc{{ID: "a"}, {ID: "b"}})
	got, _ := dc.all("r", 3)
	got[0], got[1] = got[1], got[0] // a caller reordering its result
	again, _ := dc.all("r", 3)
	if again[0].ID != "a" || again[1].ID != "b" {
		t.Fatalf("cache order changed by a caller: %v", again)
	}
	// A newer write is not overwritten by an older read.
	dc.wrote("r", 3, 4, []Doc{{ID: "c"}})
	dc.fill("r", 3, []Doc{{ID: "a"}})
	if all, ok := dc.all("r", 4); !ok || len(all) != 3 || all[2].ID != "c" {
		t.Fatalf("after an older fill: %v, %v", all, ok)
	}
}
