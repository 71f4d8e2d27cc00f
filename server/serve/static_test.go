package serve_test

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/lfsync/lfsync/server/serve"
)

func writeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "index.html", "html")
	writeFile(t, dir, "lfsync.wasm", "wasm")
	writeFile(t, dir, "lfsync.wasm.br", "wasm-br")
	writeFile(t, dir, "lfsync.wasm.gz", "wasm-gz")
	writeFile(t, dir, "app.mjs", "mjs")
	writeFile(t, dir, "app.mjs.gz", "mjs-gz")
	writeFile(t, dir, "wasm_exec.js", "js")
	writeFile(t, dir, "style.css", "css")
	writeFile(t, dir, "sub/index.html", "sub")
	h, err := serve.Static(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, accept                    string
		status                          int
		body, ctype, encoding, vary, cc string
	}{
		{"/", "", 200, "html", "text/html; charset=utf-8", "", "", "no-cache"},
		{"/index.html", "br", 200, "html", "text/html; charset=utf-8", "", "", "no-cache"},
		{"/lfsync.wasm", "gzip, deflate, br", 200, "wasm-br", "application/wasm", "br", "Accept-Encoding", "no-cache"},
		{"/lfsync.wasm", "gzip", 200, "wasm-gz", "application/wasm", "gzip", "Accept-Encoding", "no-cache"},
		{"/lfsync.wasm", "br;q=0, gzip", 200, "wasm-gz", "application/wasm", "gzip", "Accept-Encoding", "no-cache"},
		{"/lfsync.wasm", "", 200, "wasm", "application/wasm", "", "Accept-Encoding", "no-cache"},
		{"/app.mjs", "br, gzip", 200, "mjs-gz", "text/javascript", "gzip", "Accept-Encoding", "no-cache"},
		{"/wasm_exec.js", "gzip", 200, "js", "text/javascript", "", "", "no-cache"},
		{"/style.css", "", 200, "css", "text/css; charset=utf-8", "", "", "public, max-age=3600"},
		{"/sub/", "", 200, "sub", "text/html; charset=utf-8", "", "", "no-cache"},
		{"/sub", "", 301, "", "", "", "", ""},
		{"/missing.js", "", 404, "", "", "", "", ""},
		{"/../../etc/passwd", "", 404, "", "", "", "", ""},
	} {
		req := httptest.NewRequest("GET", "http://x"+tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode != tc.status {
			t.Errorf("%s (%s): status %d, want %d", tc.path, tc.accept, res.StatusCode, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		hdr := res.Header
		if rec.Body.String() != tc.body || hdr.Get("Content-Type") != tc.ctype || hdr.Get("Content-Encoding") != tc.encoding || hdr.Get("Vary") != tc.vary || hdr.Get("Cache-Control") != tc.cc {
			t.Errorf("%s (%s): body %q type %q encoding %q vary %q cache %q", tc.path, tc.accept, rec.Body.String(), hdr.Get("Content-Type"), hdr.Get("Content-Encoding"), hdr.Get("Vary"), hdr.Get("Cache-Control"))
		}
	}
	if _, err := serve.Static(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("Static of a missing directory succeeded")
	}
}
