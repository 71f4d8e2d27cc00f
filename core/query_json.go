package core

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/lfsync/lfsync/core/protocol"
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
	i := protocol.SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return errQueryJSON
	}
	i = protocol.SkipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return errQueryJSON
		}
		ks := i
		end, esc, err := protocol.SkipString(obj, i)
		if err != nil {
			return err
		}
		i = protocol.SkipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return errQueryJSON
		}
		vs := protocol.SkipSpace(obj, i+1)
		ve, err := protocol.SkipValue(obj, vs)
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
		i = protocol.SkipSpace(obj, ve)
		if i >= len(obj) {
			return errQueryJSON
		}
		switch obj[i] {
		case ',':
			i = protocol.SkipSpace(obj, i+1)
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
	i := protocol.SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false, errQueryJSON
	}
	i = protocol.SkipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return false, nil
	}
	for {
		end, err := protocol.SkipValue(arr, i)
		if err != nil {
			return false, err
		}
		if stop, err := fn(arr[i:end]); stop || err != nil {
			return stop, err
		}
		i = protocol.SkipSpace(arr, end)
		if i >= len(arr) {
			return false, errQueryJSON
		}
		switch arr[i] {
		case ',':
			i = protocol.SkipSpace(arr, i+1)
		case ']':
			return false, nil
		default:
			return false, errQueryJSON
		}
	}
}
