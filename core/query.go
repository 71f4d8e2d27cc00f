package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Query selects, orders and pages the documents of a repository. It is
// JSON-shaped so the JS API passes queries through unchanged:
//
//	{"where":[{"field":"done","op":"==","value":false}],"orderBy":[{"field":"title","desc":true}],"limit":20}
//
// Comparisons follow what Firestore and RxDB users expect: numbers compare
// numerically, strings by bytes, false < true; values of different JSON types
// are never equal, and orderBy sorts types null < bool < number < string <
// array < object. A missing field is null, so nulls and missing fields come
// first ascending and last descending. Ties break by document id.
type Query struct {
	// Where holds conditions that must all hold.
	Where []Condition `json:"where,omitempty"`
	// OrderBy sorts by each key in turn, then by document id.
	OrderBy []Order `json:"orderBy,omitempty"`
	// Limit caps the results; 0 means no limit.
	Limit int `json:"limit,omitempty"`
	// Offset skips that many results, after ordering.
	Offset int `json:"offset,omitempty"`
}

// Condition tests one field of a document.
//
// Ops: "==" and "!=" (deep equality for arrays and objects; "!=" is exactly
// not "=="), "<" "<=" ">" ">=" (false when the field's type differs from the
// value's), "in" and "notIn" (value is an array; "notIn" is exactly not
// "in"), "contains" (substring of a string field, or element of an array
// field), "startsWith" and "endsWith" (string field and value), "isNull" and
// "isNotNull" (no value; a missing field is null).
type Condition struct {
	// Field is a dotted path into the document ("author.name"). A path
	// through a non-object value is missing.
	Field string `json:"field"`
	// Op is the comparison, one of the ops above.
	Op string `json:"op"`
	// Value is the JSON value compared with.
	Value json.RawMessage `json:"value,omitempty"`
}

// Order is one sort key.
type Order struct {
	// Field is a dotted path into the document.
	Field string `json:"field"`
	// Desc sorts descending.
	Desc bool `json:"desc,omitempty"`
}

// ErrInvalidQuery is wrapped by the error Validate, Run and Match return for
// a query that cannot run.
var ErrInvalidQuery = errors.New("lfsync: invalid query")

// invalidQueryError says what is wrong with a query.
type invalidQueryError struct{ msg string }

func (e *invalidQueryError) Error() string { return ErrInvalidQuery.Error() + ": " + e.msg }
func (e *invalidQueryError) Unwrap() error { return ErrInvalidQuery }

type queryOp uint8

const (
	queryEq queryOp = iota + 1
	queryNe
	queryLt
	queryLe
	queryGt
	queryGe
	queryIn
	queryNotIn
	queryContains
	queryStartsWith
	queryEndsWith
	queryIsNull
	queryIsNotNull
)

var queryOps = map[string]queryOp{
	"==": queryEq, "!=": queryNe, "<": queryLt, "<=": queryLe, ">": queryGt, ">=": queryGe,
	"in": queryIn, "notIn": queryNotIn, "contains": queryContains,
	"startsWith": queryStartsWith, "endsWith": queryEndsWith,
	"isNull": queryIsNull, "isNotNull": queryIsNotNull,
}

// queryPlan is a validated query ready to run.
type queryPlan struct {
	paths  queryPathNode
	nSlots int
	conds  []queryCond
	orders []queryKey
	limit  int
	offset int
}

type queryCond struct {
	slot int
	op   queryOp
	val  queryValue
	list []queryValue // in, notIn
}

type queryKey struct {
	slot int
	desc bool
}

// Validate reports what is wrong with q, or nil. The error wraps
// ErrInvalidQuery.
func (q Query) Validate() error {
	_, err := q.plan()
	return err
}

func (q Query) plan() (*queryPlan, error) {
	p := &queryPlan{paths: queryPathNode{slot: -1}, limit: q.Limit, offset: q.Offset}
	if q.Limit < 0 {
		return nil, &invalidQueryError{"limit " + strconv.Itoa(q.Limit) + " is negative"}
	}
	if q.Offset < 0 {
		return nil, &invalidQueryError{"offset " + strconv.Itoa(q.Offset) + " is negative"}
	}
	for i, c := range q.Where {
		where := "where[" + strconv.Itoa(i) + "]"
		segs, err := queryPath(c.Field)
		if err != nil {
			return nil, &invalidQueryError{where + ": " + err.Error()}
		}
		op, ok := queryOps[c.Op]
		if !ok {
			if c.Op == "" {
				return nil, &invalidQueryError{where + ": op is missing"}
			}
			return nil, &invalidQueryError{where + ": unknown op " + strconv.Quote(c.Op)}
		}
		cond := queryCond{slot: p.paths.add(segs, &p.nSlots), op: op}
		if err := cond.setValue(c.Value); err != nil {
			return nil, &invalidQueryError{where + ": op " + c.Op + " on " + strconv.Quote(c.Field) + ": " + err.Error()}
		}
		p.conds = append(p.conds, cond)
	}
	for i, o := range q.OrderBy {
		segs, err := queryPath(o.Field)
		if err != nil {
			return nil, &invalidQueryError{"orderBy[" + strconv.Itoa(i) + "]: " + err.Error()}
		}
		p.orders = append(p.orders, queryKey{slot: p.paths.add(segs, &p.nSlots), desc: o.Desc})
	}
	return p, nil
}

// queryPath splits a dotted field path.
func queryPath(field string) ([]string, error) {
	if field == "" {
		return nil, errors.New("field is missing")
	}
	segs := strings.Split(field, ".")
	for _, s := range segs {
		if s == "" {
			return nil, errors.New("field " + strconv.Quote(field) + " has an empty segment")
		}
	}
	return segs, nil
}

// setValue checks raw against c.op and keeps it parsed.
func (c *queryCond) setValue(raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && !json.Valid(raw) {
		return errors.New("value is not valid JSON")
	}
	var err error
	if c.val, err = queryParse(raw); err != nil {
		return errors.New("value is not valid JSON")
	}
	if err := c.val.decode(); err != nil {
		return errors.New("value is not valid JSON")
	}
	switch c.op {
	case queryEq, queryNe, queryContains:
		if len(raw) == 0 {
			return errors.New("value is missing")
		}
	case queryLt, queryLe, queryGt, queryGe:
		if len(raw) == 0 {
			return errors.New("value is missing")
		}
		if k := c.val.kind; k != queryNumber && k != queryString && k != queryBool {
			return errors.New("value must be a number, string or boolean")
		}
	case queryIn, queryNotIn:
		if c.val.kind != queryArray {
			return errors.New("value must be an array")
		}
		_, err := queryEachElem(raw, func(elem []byte) (bool, error) {
			v, err := queryParse(elem)
			if err == nil {
				err = v.decode()
			}
			c.list = append(c.list, v)
			return false, err
		})
		if err != nil {
			return errors.New("value is not valid JSON")
		}
	case queryStartsWith, queryEndsWith:
		if c.val.kind != queryString || len(raw) == 0 {
			return errors.New("value must be a string")
		}
	case queryIsNull, queryIsNotNull:
		if len(raw) > 0 && c.val.kind != queryNull {
			return errors.New("takes no value")
		}
	}
	return nil
}

// Run returns the data of the documents that match q, ordered and paged; it
// skips tombstones. Without OrderBy results are ordered by id. The slices
// returned are the documents' Data, not copies.
func (q Query) Run(docs []Doc) ([]json.RawMessage, error) {
	p, err := q.plan()
	if err != nil {
		return nil, err
	}
	return p.run(docs)
}

// Match reports whether a live document with this data matches q's
// conditions (ordering and paging aside); empty data never matches.
func (q Query) Match(data json.RawMessage) (bool, error) {
	p, err := q.plan()
	if err != nil {
		return false, err
	}
	if len(data) == 0 {
		return false, nil
	}
	vals := make([][]byte, p.nSlots)
	if p.nSlots > 0 {
		if err := p.paths.extract(data, vals); err != nil {
			return false, errors.New("failed to read document: " + err.Error())
		}
	}
	return p.match(vals)
}

// match evaluates every condition on the extracted values.
func (p *queryPlan) match(vals [][]byte) (bool, error) {
	for i := range p.conds {
		c := &p.conds[i]
		v, err := queryParse(vals[c.slot])
		if err != nil {
			return false, err
		}
		ok, err := c.test(&v)
		if !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

func (p *queryPlan) run(docs []Doc) ([]json.RawMessage, error) {
	nKeys := len(p.orders)
	type row struct {
		doc  *Doc
		keys []queryValue
	}
	rows := make([]row, 0, len(docs))
	var keys []queryValue
	if nKeys > 0 {
		keys = make([]queryValue, 0, len(docs)*nKeys)
	}
	vals := make([][]byte, p.nSlots)
	for i := range docs {
		d := &docs[i]
		if d.Deleted {
			continue
		}
		if p.nSlots > 0 {
			clear(vals)
			if err := p.paths.extract(d.Data, vals); err != nil {
				return nil, errors.New("failed to read document " + strconv.Quote(d.ID) + ": " + err.Error())
			}
			ok, err := p.match(vals)
			if err != nil {
				return nil, errors.New("failed to read document " + strconv.Quote(d.ID) + ": " + err.Error())
			}
			if !ok {
				continue
			}
		}
		r := row{doc: d}
		if nKeys > 0 {
			start := len(keys)
			for _, k := range p.orders {
				v, err := queryParse(vals[k.slot])
				if err == nil {
					err = v.decode()
				}
				if err != nil {
					return nil, errors.New("failed to read document " + strconv.Quote(d.ID) + ": " + err.Error())
				}
				keys = append(keys, v)
			}
			r.keys = keys[start:len(keys):len(keys)]
		}
		rows = append(rows, r)
	}
	byKeys := func(a, b row) int {
		for i, k := range p.orders {
			c := queryCompare(&a.keys[i], &b.keys[i])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return strings.Compare(a.doc.ID, b.doc.ID)
	}
	// Ids are unique within a repository, so byKeys is a total order and
	// an unstable sort gives one result.
	if n := p.offset + p.limit; p.limit > 0 && n < len(rows)/4 {
		rows = queryTop(rows, n, byKeys)
	} else if nKeys > 0 || !slices.IsSortedFunc(rows, byKeys) {
		slices.SortFunc(rows, byKeys)
	}
	if p.offset >= len(rows) {
		return []json.RawMessage{}, nil
	}
	rows = rows[p.offset:]
	if p.limit > 0 && p.limit < len(rows) {
		rows = rows[:p.limit]
	}
	out := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		out[i] = r.doc.Data
	}
	return out, nil
}

// test applies the condition to the document's value v.
func (c *queryCond) test(v *queryValue) (bool, error) {
	switch c.op {
	case queryEq, queryNe:
		eq, err := queryEqual(v, &c.val)
		return eq == (c.op == queryEq), err
	case queryLt, queryLe, queryGt, queryGe:
		if v.kind != c.val.kind {
			return false, nil
		}
		cmp := queryCompare(v, &c.val)
		switch c.op {
		case queryLt:
			return cmp < 0, nil
		case queryLe:
			return cmp <= 0, nil
		case queryGt:
			return cmp > 0, nil
		}
		return cmp >= 0, nil
	case queryIn, queryNotIn:
		for i := range c.list {
			eq, err := queryEqual(v, &c.list[i])
			if err != nil {
				return false, err
			}
			if eq {
				return c.op == queryIn, nil
			}
		}
		return c.op == queryNotIn, nil
	case queryContains:
		switch v.kind {
		case queryString:
			return c.val.kind == queryString && bytes.Contains(v.raw, c.val.raw), nil
		case queryArray:
			return queryEachElem(v.raw, func(elem []byte) (bool, error) {
				e, err := queryParse(elem)
				if err != nil {
					return false, err
				}
				return queryEqual(&e, &c.val)
			})
		}
		return false, nil
	case queryStartsWith:
		return v.kind == queryString && bytes.HasPrefix(v.raw, c.val.raw), nil
	case queryEndsWith:
		return v.kind == queryString && bytes.HasSuffix(v.raw, c.val.raw), nil
	case queryIsNull:
		return v.kind == queryNull, nil
	case queryIsNotNull:
		return v.kind != queryNull, nil
	}
	return false, nil
}

// queryTop returns the n smallest rows by cmp, sorted, reusing rows: a
// bounded max-heap, so a small limit over many documents sorts only the
// kept ones.
func queryTop[T any](rows []T, n int, cmp func(a, b T) int) []T {
	if n <= 0 {
		return rows[:0]
	}
	heap := rows[:0:n] // rows[:n] holds the heap; later rows are read after
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(heap) {
				return
			}
			if r := l + 1; r < len(heap) && cmp(heap[r], heap[l]) > 0 {
				l = r
			}
			if cmp(heap[l], heap[i]) <= 0 {
				return
			}
			heap[i], heap[l] = heap[l], heap[i]
			i = l
		}
	}
	for i := range rows {
		r := rows[i]
		if len(heap) < n {
			heap = append(heap, r)
			for j := len(heap) - 1; j > 0; { // up
				parent := (j - 1) / 2
				if cmp(heap[j], heap[parent]) <= 0 {
					break
				}
				heap[j], heap[parent] = heap[parent], heap[j]
				j = parent
			}
			continue
		}
		if cmp(r, heap[0]) < 0 {
			heap[0] = r
			down(0)
		}
	}
	slices.SortFunc(heap, cmp)
	return heap
}
