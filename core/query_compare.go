package core

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
)

// queryEqual reports whether a and b are the same JSON value: same type and,
// for arrays and objects, deeply equal; numbers compare numerically.
func queryEqual(a, b *queryValue) (bool, error) {
	if a.kind != b.kind {
		return false, nil
	}
	switch a.kind {
	case queryNull:
		return true, nil
	case queryBool, queryNumber:
		return a.num == b.num, nil
	case queryString:
		return bytes.Equal(a.raw, b.raw), nil
	}
	if err := a.decode(); err != nil {
		return false, err
	}
	if err := b.decode(); err != nil {
		return false, err
	}
	return queryCompareAny(a.tree, b.tree) == 0, nil
}

// queryCompare orders a and b: by type rank, then by value. Arrays and
// objects must be decoded.
func queryCompare(a, b *queryValue) int {
	if a.kind != b.kind {
		return cmp.Compare(a.kind, b.kind)
	}
	switch a.kind {
	case queryNull:
		return 0
	case queryBool, queryNumber:
		return cmp.Compare(a.num, b.num)
	case queryString:
		return bytes.Compare(a.raw, b.raw)
	}
	return queryCompareAny(a.tree, b.tree)
}

// queryRank is the type rank of a decoded JSON value.
func queryRank(x any) queryKind {
	switch x.(type) {
	case nil:
		return queryNull
	case bool:
		return queryBool
	case float64:
		return queryNumber
	case string:
		return queryString
	case []any:
		return queryArray
	}
	return queryObject
}

// queryCompareAny orders decoded JSON values: by type rank, then by value;
// arrays element by element, then by length; objects by their sorted keys,
// then by the values of those keys.
func queryCompareAny(x, y any) int {
	rx, ry := queryRank(x), queryRank(y)
	if rx != ry {
		return cmp.Compare(rx, ry)
	}
	switch x := x.(type) {
	case nil:
		return 0
	case bool:
		return queryCompareBool(x, y.(bool))
	case float64:
		return cmp.Compare(x, y.(float64))
	case string:
		return strings.Compare(x, y.(string))
	case []any:
		y := y.([]any)
		for i := 0; i < len(x) && i < len(y); i++ {
			if c := queryCompareAny(x[i], y[i]); c != 0 {
				return c
			}
		}
		return cmp.Compare(len(x), len(y))
	case map[string]any:
		y := y.(map[string]any)
		kx, ky := queryKeys(x), queryKeys(y)
		for i := 0; i < len(kx) && i < len(ky); i++ {
			if c := strings.Compare(kx[i], ky[i]); c != 0 {
				return c
			}
			if c := queryCompareAny(x[kx[i]], y[ky[i]]); c != 0 {
				return c
			}
		}
		return cmp.Compare(len(kx), len(ky))
	}
	return 0
}

func queryCompareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func queryKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
