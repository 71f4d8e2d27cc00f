package core

import (
	"encoding/json"
	"errors"
	"strconv"
)

// This file reads just the fields a query needs out of a document's JSON,
// without decoding the rest: one pass over the document finds every field of
// the query, and values stay slices of the document's bytes.

var errQueryJSON = errors.New("malformed JSON")

// queryPathNode is one segment of the dotted field paths a query reads; the
// nodes form a trie so one pass over a document finds every path.
type queryPathNode struct {
	name string
	slot int // index into the extracted values, -1 if no path ends here
	kids []*queryPathNode
}

// add inserts the path segs and returns its slot, assigning next if new.
func (n *queryPathNode) add(segs []string, next *int) int {
	for _, seg := range segs {
		var kid *queryPathNode
		for _, k := range n.kids {
			if k.name == seg {
				kid = k
				break
			}
		}
		if kid == nil {
			kid = &queryPathNode{name: seg, slot: -1}
			n.kids = append(n.kids, kid)
		}
		n = kid
	}
	if n.slot < 0 {
		n.slot = *next
		*next++
	}
	return n.slot
}

// clear forgets the values of n's subtree (a repeated key replaces them).
func (n *queryPathNode) clear(vals [][]byte) {
	for _, k := range n.kids {
		if k.slot >= 0 {
			vals[k.slot] = nil
		}
		k.clear(vals)
	}
}

// extract stores in vals, by slot, the raw value of every path of n's
// subtree found in the JSON object obj. Missing paths stay nil.
func (n *queryPathNode) extract(obj []byte, vals [][]byte) error {
	i := querySkipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return errQueryJSON
	}
	i = querySkipWS(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return errQueryJSON
		}
		ks := i
		end, esc, err := queryScanString(obj, i)
		if err != nil {
			return err
		}
		i = querySkipWS(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return errQueryJSON
		}
		vs := querySkipWS(obj, i+1)
		ve, err := querySkipValue(obj, vs)
		if err != nil {
			return err
		}
		kid, err := n.kid(obj[ks:end], esc)
		if err != nil {
			return err
		}
		if kid != nil {
			if kid.slot >= 0 {
				vals[kid.slot] = obj[vs:ve]
			}
			if len(kid.kids) > 0 {
				kid.clear(vals)
				if obj[vs] == '{' {
					if err := kid.extract(obj[vs:ve], vals); err != nil {
						return err
					}
				}
			}
		}
		i = querySkipWS(obj, ve)
		if i >= len(obj) {
			return errQueryJSON
		}
		switch obj[i] {
		case ',':
			i = querySkipWS(obj, i+1)
		case '}':
			return nil
		default:
			return errQueryJSON
		}
	}
}

// kid returns the child named by the quoted JSON string key, or nil.
func (n *queryPathNode) kid(quoted []byte, esc bool) (*queryPathNode, error) {
	if len(n.kids) == 0 {
		return nil, nil
	}
	key := quoted[1 : len(quoted)-1]
	if esc {
		var s string
		if err := json.Unmarshal(quoted, &s); err != nil {
			return nil, errQueryJSON
		}
		key = []byte(s)
	}
	for _, k := range n.kids {
		if k.name == string(key) {
			return k, nil
		}
	}
	return nil, nil
}

func querySkipWS(b []byte, i int) int {
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

// queryScanString returns the index after the string starting at b[i] (a
// quote) and whether it holds escapes.
func queryScanString(b []byte, i int) (end int, esc bool, err error) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i + 1, esc, nil
		case '\\':
			esc = true
			i++
		}
	}
	return 0, false, errQueryJSON
}

// querySkipValue returns the index after the JSON value starting at b[i].
func querySkipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errQueryJSON
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := queryScanString(b, i)
		return end, err
	case c == '{' || c == '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, _, err := queryScanString(b, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errQueryJSON
	case c == 't' || c == 'f' || c == 'n' || c == '-' || c >= '0' && c <= '9':
		j := i
		for j < len(b) && (b[j] >= 'a' && b[j] <= 'z' || b[j] >= '0' && b[j] <= '9' || b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'E') {
			j++
		}
		return j, nil
	}
	return 0, errQueryJSON
}

// queryKind is a JSON type, in the order orderBy sorts types.
type queryKind uint8

const (
	queryNull queryKind = iota
	queryBool
	queryNumber
	queryString
	queryArray
	queryObject
)

// queryValue is one JSON value as a query compares it. Missing values are
// null.
type queryValue struct {
	kind queryKind
	num  float64 // numbers; booleans as 0 and 1
	raw  []byte  // strings: the unescaped bytes; arrays and objects: the JSON
	tree any     // arrays and objects, decoded when compared
}

// queryParse reads the raw JSON value b (nil means missing).
func queryParse(b []byte) (queryValue, error) {
	if len(b) == 0 {
		return queryValue{}, nil
	}
	switch c := b[0]; {
	case c == 'n':
		if string(b) != "null" {
			return queryValue{}, errQueryJSON
		}
		return queryValue{}, nil
	case c == 't':
		if string(b) != "true" {
			return queryValue{}, errQueryJSON
		}
		return queryValue{kind: queryBool, num: 1}, nil
	case c == 'f':
		if string(b) != "false" {
			return queryValue{}, errQueryJSON
		}
		return queryValue{kind: queryBool}, nil
	case c == '"':
		if len(b) < 2 || b[len(b)-1] != '"' {
			return queryValue{}, errQueryJSON
		}
		for _, x := range b[1 : len(b)-1] {
			if x == '\\' {
				var s string
				if err := json.Unmarshal(b, &s); err != nil {
					return queryValue{}, errQueryJSON
				}
				return queryValue{kind: queryString, raw: []byte(s)}, nil
			}
		}
		return queryValue{kind: queryString, raw: b[1 : len(b)-1]}, nil
	case c == '[':
		return queryValue{kind: queryArray, raw: b}, nil
	case c == '{':
		return queryValue{kind: queryObject, raw: b}, nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return queryValue{}, errQueryJSON
	}
	return queryValue{kind: queryNumber, num: f}, nil
}

// decode fills v.tree for arrays and objects.
func (v *queryValue) decode() error {
	if v.tree != nil || v.kind != queryArray && v.kind != queryObject {
		return nil
	}
	t, err := queryDecode(v.raw)
	v.tree = t
	return err
}

// queryDecode decodes a JSON array or object.
func queryDecode(raw []byte) (any, error) {
	var t any
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, errQueryJSON
	}
	return t, nil
}

// queryEachElem calls fn with every element of the JSON array arr until fn
// returns true; it reports whether fn did.
func queryEachElem(arr []byte, fn func(elem []byte) (bool, error)) (bool, error) {
	i := querySkipWS(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false, errQueryJSON
	}
	i = querySkipWS(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return false, nil
	}
	for {
		end, err := querySkipValue(arr, i)
		if err != nil {
			return false, err
		}
		if stop, err := fn(arr[i:end]); stop || err != nil {
			return stop, err
		}
		i = querySkipWS(arr, end)
		if i >= len(arr) {
			return false, errQueryJSON
		}
		switch arr[i] {
		case ',':
			i = querySkipWS(arr, i+1)
		case ']':
			return false, nil
		default:
			return false, errQueryJSON
		}
	}
}
