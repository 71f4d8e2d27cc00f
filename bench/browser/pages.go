package browser

import (
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed pages
var pages embed.FS

// PagesDir is where WriteSite puts the bench pages, below the site root.
const PagesDir = "bench"

// WriteSite fills dst with the files of web (the built web/dist) and the
// bench pages under dst/bench, so that one lfsync server serves both from
// one origin, as an application would serve lfsync beside its own pages.
func WriteSite(dst, web string) error {
	err := filepath.WalkDir(web, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(web, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(target, path)
	})
	if err != nil {
		return fmt.Errorf("failed to copy %s: %w", web, err)
	}
	sub, err := fs.Sub(pages, "pages")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dst, PagesDir), 0o755); err != nil {
		return fmt.Errorf("failed to create the pages directory: %w", err)
	}
	return fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, PagesDir, path), b, 0o644); err != nil {
			return fmt.Errorf("failed to write bench page %s: %w", path, err)
		}
		return nil
	})
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
