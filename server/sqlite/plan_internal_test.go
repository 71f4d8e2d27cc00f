package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestQueriesUseIndexes checks that no statement scans a table or sorts in a
// temporary b-tree: every read is an index range scan or lookup, so reading
// the latest event per document never costs a pass over the whole log.
func TestQueriesUseIndexes(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	queries := append((&readStmts{}).queries(), (&writeStmts{}).queries()...)
	for _, q := range queries {
		args := make([]any, strings.Count(q.query, "?"))
		for i := range args {
			args[i] = 1
		}
		rows, err := s.rdb.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q.query, args...)
		if err != nil {
			t.Fatalf("EXPLAIN QUERY PLAN %s failed: %v", q.query, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			// "SCAN CONSTANT ROW" is the VALUES of an INSERT.
			if (strings.HasPrefix(step, "SCAN ") && step != "SCAN CONSTANT ROW") || strings.Contains(step, "TEMP B-TREE") {
				t.Errorf("query %s\nhas plan %q: a table scan or sort", q.query, plan)
			}
		}
	}
}
