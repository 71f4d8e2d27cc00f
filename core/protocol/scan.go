package protocol

import (
	"errors"
	"unicode/utf8"
)

// A small validating JSON scanner. Frames are objects whose members the
// decoder picks by key; encoding/json's reflection costs several times more
// than the rest of decoding, in the server's read loop and above all in the
// browser, where catching up decodes thousands of events. The scanner
// accepts exactly what json.Valid accepts (a fuzz test compares them).

var errSyntax = errors.New("invalid JSON")

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue checks the JSON value starting at b[i] (no leading space) and
// returns the index just past it.
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := skipString(b, i)
		return end, err
	case c == '{':
		return skipObject(b, i, depth+1, nil)
	case c == '[':
		return skipArray(b, i, depth+1, nil)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || ('0' <= c && c <= '9'):
		return skipNumber(b, i)
	}
	return 0, errSyntax
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// skipNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, errSyntax
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, errSyntax
		}
		i = j
	}
	return i, nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// skipString checks the string starting at b[i] == '"' and returns the index
// past its closing quote, and whether it holds escapes or non-ASCII bytes
// (so that unquote must go the slow way).
func skipString(b []byte, i int) (end int, slow bool, err error) {
	for i++; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, slow, nil
		case c < 0x20:
			return 0, false, errSyntax
		case c >= utf8.RuneSelf:
			slow = true
		case c == '\\':
			slow = true
			i++
			if i >= len(b) {
				return 0, false, errSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return 0, false, errSyntax
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return 0, false, errSyntax
					}
				}
				i += 4
			default:
				return 0, false, errSyntax
			}
		}
	}
	return 0, false, errSyntax
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// member receives an object's members as the raw key (quotes included) and
// the raw value.
type member func(key, value []byte)

// skipObject checks the object starting at b[i] == '{', calling fn (when not
// nil) for each member, and returns the index past it.
func skipObject(b []byte, i, depth int, fn member) (int, error) {
	if depth > maxDepth {
		return 0, errSyntax
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errSyntax
		}
		kend, _, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i:kend]
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return 0, errSyntax
		}
		vstart := skipSpace(b, i+1)
		vend, err := skipValue(b, vstart, depth)
		if err != nil {
			return 0, err
		}
		if fn != nil {
			fn(key, b[vstart:vend])
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

// skipArray checks the array starting at b[i] == '[', calling fn (when not
// nil) for each element, and returns the index past it.
func skipArray(b []byte, i, depth int, fn func(elem []byte)) (int, error) {
	if depth > maxDepth {
		return 0, errSyntax
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		vend, err := skipValue(b, i, depth)
		if err != nil {
			return 0, err
		}
		if fn != nil {
			fn(b[i:vend])
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

// scanObject checks that b is one JSON object, optionally surrounded by
// space, and calls fn for each member. trailing reports data after it.
func scanObject(b []byte, fn member) (trailing bool, err error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false, errSyntax
	}
	end, err := skipObject(b, i, 0, fn)
	if err != nil {
		return false, err
	}
	if skipSpace(b, end) != len(b) {
		return true, errSyntax
	}
	return false, nil
}

// The scanner's primitives, for other readers of raw JSON (the query engine
// reads fields of stored documents with them).

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(b []byte, i int) int { return skipSpace(b, i) }

// SkipValue checks the JSON value starting at b[i] (no leading space) and
// returns the index just past it.
func SkipValue(b []byte, i int) (int, error) { return skipValue(b, i, 0) }

// SkipString checks the JSON string starting at b[i] == '"' and returns the
// index past its closing quote, and whether it holds escapes or non-ASCII
// bytes (so that reading it needs encoding/json).
func SkipString(b []byte, i int) (end int, slow bool, err error) { return skipString(b, i) }

// keyIs reports whether a raw key (quotes included, as skipObject gives it)
// spells name. Keys with escapes never match: no key the protocol reads
// needs one.
func keyIs(raw []byte, name string) bool {
	return len(raw) == len(name)+2 && string(raw[1:len(raw)-1]) == name
}
