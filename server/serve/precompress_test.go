package serve_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/lfsync/lfsync/server/serve"
)

func TestPrecompressServedByStatic(t *testing.T) {
	dir := t.TempDir()
	wasm := bytes.Repeat([]byte("\x00asm lfsync engine "), 4096)
	mustWrite(t, filepath.Join(dir, "lfsync.wasm"), wasm)
	mustWrite(t, filepath.Join(dir, "sub", "app.js"), []byte("console.log('hi');"))
	mustWrite(t, filepath.Join(dir, "logo.png"), []byte("\x89PNG"))

	got, err := serve.Precompress(dir)
	if err != nil {
		t.Fatalf("Precompress: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Precompress compressed %+v, want lfsync.wasm and sub/app.js only", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "logo.png.br")); !os.IsNotExist(err) {
		t.Errorf("logo.png.br exists (err=%v); images are not compressible", err)
	}
	for _, c := range got {
		if c.Name == "lfsync.wasm" && (c.Brotli >= c.Raw || c.Gzip >= c.Raw) {
			t.Errorf("lfsync.wasm: %+v, want both encodings smaller than raw", c)
		}
	}

	h, err := serve.Static(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		accept, encoding string
		decode           func(io.Reader) (io.Reader, error)
	}{
		{"gzip, deflate, br", "br", func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil }},
		{"gzip", "gzip", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"", "", func(r io.Reader) (io.Reader, error) { return r, nil }},
	} {
		req := httptest.NewRequest(http.MethodGet, "/lfsync.wasm", nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got, want := rec.Header().Get("Content-Encoding"), tc.encoding; got != want {
			t.Errorf("Accept-Encoding %q: Content-Encoding=%q, want %q", tc.accept, got, want)
		}
		if got, want := rec.Header().Get("Content-Type"), "application/wasm"; got != want {
			t.Errorf("Accept-Encoding %q: Content-Type=%q, want %q", tc.accept, got, want)
		}
		r, err := tc.decode(rec.Body)
		if err != nil {
			t.Fatalf("Accept-Encoding %q: %v", tc.accept, err)
		}
		body, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("Accept-Encoding %q: reading body: %v", tc.accept, err)
		}
		if !bytes.Equal(body, wasm) {
			t.Errorf("Accept-Encoding %q: decoded body differs from the file (%d bytes, want %d)", tc.accept, len(body), len(wasm))
		}
	}
}

func TestPrecompressMissingDir(t *testing.T) {
	if _, err := serve.Precompress(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Precompress of a missing directory succeeded")
	}
}

func mustWrite(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
