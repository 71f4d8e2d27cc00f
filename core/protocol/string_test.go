package protocol_test

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lfsync/lfsync/core/protocol"
)

// TestAppendString checks the JSON string encoder against encoding/json's
// decoder: every string, valid UTF-8 or not, decodes back to itself with
// invalid bytes as U+FFFD.
func TestAppendString(t *testing.T) {
	cases := []string{"", "plain", `quote " and \ backslash`, "\x00\x01\x1f\x7f", "\n\r\t\b\f",
		"é ü 日本 🎉", "\u2028\u2029", "bad \xff\xfe utf8 \xe2\x82", "<script>&amp;</script>"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		enc := protocol.AppendString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("AppendString(%q) = %s: not JSON: %v", s, enc, err)
		}
		if want := replaceInvalid(s); got != want {
			t.Fatalf("AppendString(%q) decodes to %q, want %q", s, got, want)
		}
	}
}

// replaceInvalid replaces each invalid UTF-8 byte of s with U+FFFD, as
// encoding/json does.
func replaceInvalid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError for an invalid byte (size 1)
		i += size
	}
	return b.String()
}
