//go:build !js

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// forbidden are packages the browser runtime must not link: each would add
// hundreds of kilobytes to lfsync.wasm for nothing the browser needs.
// Standard packages match exactly (database/sql/driver, which google/uuid
// needs, is small); a module path matches every package below it. net/http
// and fmt are in already, through coder/websocket's js Dial.
var forbidden = []string{
	"database/sql",
	"encoding/xml",
	"html/template",
	"net/http/httputil",
	"net/http/pprof",
	"text/template",
	"github.com/jackc/pgx/v5",
	"github.com/chromedp/chromedp",
	"github.com/golang-jwt/jwt/v5",
	"github.com/lfsync/lfsync/server",
	"modernc.org/sqlite",
	"github.com/andybalholm/brotli",
	"github.com/Shopify/toxiproxy/v2",
}

// TestDeps fails when lfsync.wasm starts depending on a forbidden package
// (or one below it).
func TestDeps(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	cmd := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}}", ".")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps failed: %v\n%s", err, stderr.Bytes())
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			module := strings.Contains(strings.SplitN(f, "/", 2)[0], ".")
			if dep == f || module && strings.HasPrefix(dep, f+"/") {
				t.Errorf("lfsync.wasm depends on %s (forbidden: %s)", dep, f)
			}
		}
	}
}

// TestBuildTags checks that every non-test Go file of the runtime is
// constrained to js && wasm, so native builds and vet never see syscall/js.
func TestBuildTags(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		n++
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("//go:build js && wasm\n")) {
			t.Errorf("%s does not start with //go:build js && wasm", f)
		}
	}
	if n == 0 {
		t.Fatal("found no Go files")
	}
}
