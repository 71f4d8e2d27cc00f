package serve

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/andybalholm/brotli"
)

// Compressed reports what Precompress wrote for one file.
type Compressed struct {
	Name              string
	Raw, Gzip, Brotli int
}

// compressible lists the extensions Precompress compresses; Static serves
// their .br and .gz siblings.
var compressible = map[string]bool{
	".wasm": true, ".js": true, ".mjs": true, ".html": true, ".css": true, ".json": true, ".svg": true,
}

// Precompress writes a gzip (.gz) and a brotli (.br) sibling, both at their
// best compression, beside every compressible file under dir, so Static can
// send them without compressing per request.
func Precompress(dir string) ([]Compressed, error) {
	var out []Compressed
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !compressible[filepath.Ext(path)] {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		gz, err := encode(raw, func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, gzip.BestCompression) })
		if err != nil {
			return fmt.Errorf("failed to gzip %s: %w", path, err)
		}
		br, err := encode(raw, func(w io.Writer) (io.WriteCloser, error) {
			return brotli.NewWriterLevel(w, brotli.BestCompression), nil
		})
		if err != nil {
			return fmt.Errorf("failed to brotli %s: %w", path, err)
		}
		if err := os.WriteFile(path+".gz", gz, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(path+".br", br, 0o644); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, Compressed{Name: filepath.ToSlash(rel), Raw: len(raw), Gzip: len(gz), Brotli: len(br)})
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("failed to precompress %s: %w", dir, err)
	}
	return out, nil
}

// encode compresses raw with the writer newWriter makes.
func encode(raw []byte, newWriter func(io.Writer) (io.WriteCloser, error)) ([]byte, error) {
	var buf bytes.Buffer
	w, err := newWriter(&buf)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
