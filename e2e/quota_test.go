package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// TestQuotaExceeded gives the origin a small storage quota through CDP: an
// upsert larger than the quota must reject with code "quota_exceeded", the
// data written before must be intact, nothing of the failed write may sync,
// and writes work again once the quota is restored.
func TestQuotaExceeded(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	// Its own browser, on the default profile. Chromium applies the override
	// only to an origin whose quota it has not looked up yet, so it is set
	// before the page first loads.
	p := newBrowser(t, t.TempDir()).newPage(t, "page")
	setQuota(t, p, srv.URL(), 256<<10)
	p.navigate(srv.URL() + "/")
	p.waitDemo()
	id := p.addTodoUI("Written under the small quota")
	srv.waitDoc(t, "todos", id, nil)

	// About 700 kB of base64 of random bytes: IndexedDB compresses values,
	// so repeated characters would fit.
	code := eval[string](p, `(async () => {
		const b = new Uint8Array(525000);
		for (let i = 0; i < b.length; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
		let s = "";
		for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
		try {
			await window.app.todos.upsert({id: "too-big", title: btoa(s), done: false, createdAt: Date.now()});
			return "resolved";
		} catch (e) {
			return (e && e.code) ? e.code : "rejected without a code: " + e;
		}
	})()`)
	if code != "quota_exceeded" {
		t.Fatalf("upsert over quota: %s, want a rejection with code quota_exceeded", code)
	}

	got := byID(p.todos())
	if td, ok := got[id]; !ok || td.Title != "Written under the small quota" {
		t.Fatalf("earlier todo after the failed write: %+v (present %v)", td, ok)
	}
	if _, ok := got["too-big"]; ok || len(got) != 1 {
		t.Fatalf("store after the failed write holds %d todos (too-big present %v), want only the earlier one", len(got), ok)
	}

	setQuota(t, p, srv.URL(), 0)
	after := p.addTodoUI("Written after the quota came back")
	srv.waitDoc(t, "todos", after, nil)
	p.waitSynced()
	if _, ok := srv.doc(t, "todos", "too-big"); ok {
		t.Fatal("the server has the write that failed locally")
	}
}

// setQuota overrides origin's storage quota in bytes; 0 restores the
// default.
func setQuota(t *testing.T, p *page, origin string, bytes float64) {
	t.Helper()
	params := storage.OverrideQuotaForOriginParams{Origin: origin}
	if bytes > 0 {
		params.QuotaSize = &bytes
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, storage.OverrideQuotaForOrigin, params); err != nil {
		t.Fatalf("Storage.overrideQuotaForOrigin(%s, %v): %v", origin, bytes, err)
	}
}
