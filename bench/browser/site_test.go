package browser_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lfsync/lfsync/bench/browser"
)

func TestWriteSite(t *testing.T) {
	web := t.TempDir()
	if err := os.MkdirAll(filepath.Join(web, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"index.js": "export {}", "lfsync.wasm.gz": "gz", "sub/x.css": "x"} {
		if err := os.WriteFile(filepath.Join(web, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "site")
	if err := browser.WriteSite(dst, web); err != nil {
		t.Fatalf("WriteSite: %v", err)
	}
	for name, want := range map[string]string{"index.js": "export {}", "lfsync.wasm.gz": "gz", "sub/x.css": "x"} {
		if got, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, page := range []string{"bench.html", "bench.js", "cold.html", "cold.js"} {
		b, err := os.ReadFile(filepath.Join(dst, browser.PagesDir, page))
		if err != nil {
			t.Errorf("page %s missing: %v", page, err)
			continue
		}
		if strings.HasSuffix(page, ".js") && !strings.Contains(string(b), "/index.js") {
			t.Errorf("page %s does not load lfsync from /index.js", page)
		}
	}
}

func TestWriteSiteMissingWeb(t *testing.T) {
	if err := browser.WriteSite(t.TempDir(), filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("WriteSite of a missing web directory succeeded")
	}
}
