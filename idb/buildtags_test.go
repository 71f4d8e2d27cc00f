//go:build !js

package idb_test

import (
	"go/build/constraint"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildTags fails when a Go file of the package lacks the js && wasm
// constraint: the package uses syscall/js, so an untagged file would break
// native builds of everything that imports it. This file is the exception:
// it needs a file system, so it runs natively only.
func TestBuildTags(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d Go files, want the package's files", len(files))
	}
	for _, name := range files {
		if name == "buildtags_test.go" {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatalf("failed to parse %s: %v", name, err)
		}
		var expr constraint.Expr
		for _, group := range f.Comments {
			if group.Pos() > f.Package {
				break
			}
			for _, c := range group.List {
				if constraint.IsGoBuild(c.Text) {
					if expr, err = constraint.Parse(c.Text); err != nil {
						t.Fatalf("%s: bad build constraint: %v", name, err)
					}
				}
			}
		}
		if expr == nil {
			t.Errorf("%s has no //go:build line; want //go:build js && wasm", name)
			continue
		}
		tags := func(want map[string]bool) func(string) bool {
			return func(tag string) bool { return want[tag] }
		}
		if expr.Eval(tags(map[string]bool{"linux": true, "amd64": true})) ||
			expr.Eval(tags(map[string]bool{"js": true})) ||
			!expr.Eval(tags(map[string]bool{"js": true, "wasm": true})) {
			t.Errorf("%s has //go:build %s; want js && wasm", name, strings.TrimSpace(expr.String()))
		}
	}
}
