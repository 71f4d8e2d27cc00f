//go:build ignore

// Compress writes a gzip (.gz) and a brotli (.br) sibling next to every
// compressible file of a directory, so the server can send precompressed
// assets. Run it with `go run .ci/compress.go DIR`.
package main

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/andybalholm/brotli"
)

// compressible lists the extensions worth compressing.
var compressible = map[string]bool{".wasm": true, ".js": true, ".mjs": true, ".html": true, ".css": true, ".json": true, ".ts": true, ".svg": true}

func main() {
	log.SetFlags(0)
	if len(os.Args) != 2 {
		log.Fatal("usage: go run .ci/compress.go DIR")
	}
	err := filepath.WalkDir(os.Args[1], func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !compressible[filepath.Ext(path)] || strings.HasSuffix(path, ".d.ts") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(raw)
		if err := zw.Close(); err != nil {
			return err
		}
		var br bytes.Buffer
		bw := brotli.NewWriterLevel(&br, brotli.BestCompression)
		bw.Write(raw)
		if err := bw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(path+".gz", gz.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(path+".br", br.Bytes(), 0o644); err != nil {
			return err
		}
		log.Printf("%-28s raw %8d  gzip %8d  brotli %8d", filepath.Base(path), len(raw), gz.Len(), br.Len())
		return nil
	})
	if err != nil {
		log.Fatalf("compress: %v", err)
	}
}
