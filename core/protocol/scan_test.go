package protocol

import (
	"encoding/json"
	"testing"
)

// FuzzScan checks that the scanner accepts exactly what json.Valid accepts
// for a single top-level value.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `{"a":1}`, `{"a":[1,2,{"b":null}],"c":"\u00e9\n"}`, `-0.5e+10`, `"\ud800"`,
		`{"a":}`, `[1,]`, `01`, `1.`, `1e`, `"\x"`, "\"\x01\"", `tru`, `{"a" 1}`, ` {"a":1} `, `{"a":1}x`,
		"\"\xff\"", `[[[[[]]]]]`, `{"a":1,}`, `nul`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		i := skipSpace(b, 0)
		end, err := skipValue(b, i, 0)
		ok := err == nil && skipSpace(b, end) == len(b)
		if want := json.Valid(b); ok != want {
			t.Fatalf("scanner says valid=%v, json.Valid=%v for %q", ok, want, b)
		}
	})
}

func TestScanDepthLimit(t *testing.T) {
	deep := make([]byte, 0, 2*maxDepth+2)
	for range maxDepth + 1 {
		deep = append(deep, '[')
	}
	for range maxDepth + 1 {
		deep = append(deep, ']')
	}
	if _, err := skipValue(deep, 0, 0); err == nil {
		t.Fatalf("nesting of %d accepted", maxDepth+1)
	}
}
