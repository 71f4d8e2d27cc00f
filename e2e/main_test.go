package e2e

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lfsync/lfsync/e2e/headless"
)

var (
	// chromiumPath is the browser binary; empty when none was found.
	chromiumPath string
	// webRoot is the directory the server serves: the wasm engine, the JS
	// package and the demo pages.
	webRoot string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	chromiumPath = headless.Find()
	if chromiumPath == "" {
		// Every test skips (or fails under CI=true) in requireBrowser; no
		// point building the web root.
		return m.Run()
	}

	if dir := os.Getenv("LFSYNC_WEB_DIST"); dir != "" {
		// A relative path is relative to the module root (web/dist).
		if !filepath.IsAbs(dir) {
			root, err := moduleRoot()
			if err != nil {
				fmt.Fprintln(os.Stderr, "e2e:", err)
				return 1
			}
			dir = filepath.Join(root, dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "lfsync.wasm")); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: LFSYNC_WEB_DIST=%s has no lfsync.wasm (run make build): %v\n", dir, err)
			return 1
		}
		webRoot = dir
	} else {
		dir, err := os.MkdirTemp("", "lfsync-e2e-web-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: failed to create the web root:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := buildWebRoot(dir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: failed to build the web root:", err)
			return 1
		}
		webRoot = dir
	}
	code := m.Run()
	closeSharedBrowser()
	return code
}

// requireBrowser skips the test when no Chromium was found, or fails it
// when CI=true.
func requireBrowser(t *testing.T) {
	t.Helper()
	if chromiumPath != "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium not found (set LFSYNC_CHROMIUM or install chromium); CI=true, so this fails")
	}
	t.Skip("Chromium not found; set LFSYNC_CHROMIUM or install chromium")
}

// moduleRoot returns the directory holding the go.mod of this module.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("failed to run go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// buildWebRoot lays out what `make build` puts in web/dist (without the
// precompressed siblings): lfsync.wasm built from ./wasm, the wasm_exec.js
// of the Go that built it, the js/ package files and the web/ demo files.
func buildWebRoot(dst string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dst, "lfsync.wasm"), "./wasm")
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	var stderr bytes.Buffer
	build.Stderr = &stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("failed to build ./wasm: %w\n%s", err, stderr.Bytes())
	}

	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("failed to run go env GOROOT: %w", err)
	}
	shim := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js")
	if _, err := os.Stat(shim); err != nil {
		shim = filepath.Join(strings.TrimSpace(string(goroot)), "misc", "wasm", "wasm_exec.js")
	}
	if err := copyFile(shim, filepath.Join(dst, "wasm_exec.js")); err != nil {
		return err
	}

	var files []string
	for _, pattern := range []string{"js/*.js", "js/*.d.ts", "js/package.json", "web/*.html", "web/*.css", "web/*.js", "web/*.svg", "web/*.ico"} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return fmt.Errorf("failed to list %s: %w", pattern, err)
		}
		files = append(files, matches...)
	}
	for _, f := range files {
		if err := copyFile(f, filepath.Join(dst, filepath.Base(f))); err != nil {
			return err
		}
	}
	for _, must := range []string{"lfsync.global.js", "index.js", "index.html", "app.js", "esm.html"} {
		if _, err := os.Stat(filepath.Join(dst, must)); err != nil {
			return fmt.Errorf("web root is missing %s (is js/ or web/ incomplete?)", must)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("failed to copy %s: %w", src, err)
	}
	return out.Close()
}
