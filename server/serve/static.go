package serve

import (
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strings"
)

// Static serves the files of dir. When the request accepts br (or gzip) and
// a precompressed sibling file.br (or file.gz) exists, it serves that with
// Content-Encoding set; Content-Type always follows the original name.
// HTML, JavaScript and wasm are served with "Cache-Control: no-cache" (their
// names are not fingerprinted, and wasm_exec.js must match the wasm), other
// files may be cached for an hour.
func Static(dir string) (http.Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &static{root: root}, nil
}

type static struct{ root *os.Root }

// contentTypes overrides the platform's MIME table for the types the demo
// depends on.
var contentTypes = map[string]string{
	".wasm": "application/wasm",
	".js":   "text/javascript",
	".mjs":  "text/javascript",
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json",
	".svg":  "image/svg+xml",
}

func (h *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := path.Clean("/" + r.URL.Path)
	if strings.HasSuffix(r.URL.Path, "/") {
		name = path.Join(name, "index.html")
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		name = "index.html"
	}
	info, err := h.root.Stat(name)
	if err == nil && info.IsDir() {
		// Redirect a directory to its slash form so relative links work.
		http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
		return
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
			http.NotFound(w, r)
			return
		}
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}

	ext := strings.ToLower(path.Ext(name))
	ctype, ok := contentTypes[ext]
	if !ok {
		ctype = mime.TypeByExtension(ext)
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	hdr := w.Header()
	hdr.Set("Content-Type", ctype)
	hdr.Set("X-Content-Type-Options", "nosniff")
	switch ext {
	case ".html", ".htm", ".js", ".mjs", ".wasm", "":
		hdr.Set("Cache-Control", "no-cache")
	default:
		hdr.Set("Cache-Control", "public, max-age=3600")
	}

	serveName, encoding := name, ""
	for _, enc := range []struct{ token, suffix string }{{"br", ".br"}, {"gzip", ".gz"}} {
		if _, err := h.root.Stat(name + enc.suffix); err != nil {
			continue
		}
		hdr.Set("Vary", "Accept-Encoding")
		if encoding == "" && accepts(r.Header.Get("Accept-Encoding"), enc.token) {
			serveName, encoding = name+enc.suffix, enc.token
		}
	}
	f, err := h.root.Open(serveName)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "failed to read file", http.StatusInternalServerError)
		return
	}
	if encoding != "" {
		hdr.Set("Content-Encoding", encoding)
	}
	http.ServeContent(w, r, name, st.ModTime(), f)
}

// accepts reports whether an Accept-Encoding header accepts coding (q=0
// refuses it).
func accepts(header, coding string) bool {
	for _, part := range strings.Split(header, ",") {
		fields := strings.Split(part, ";")
		if !strings.EqualFold(strings.TrimSpace(fields[0]), coding) {
			continue
		}
		for _, p := range fields[1:] {
			p = strings.ReplaceAll(strings.TrimSpace(p), " ", "")
			if p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000" {
				return false
			}
		}
		return true
	}
	return false
}
