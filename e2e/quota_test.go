package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// TestQuotaExceeded shrinks the origin's storage quota through CDP: a large
// upsert must reject with code "quota_exceeded", the data written before
// must be intact, and writes work again once the quota is restored.
func TestQuotaExceeded(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	// Its own browser: the quota override applies to the default profile.
	p := openDemo(t, newBrowser(t, t.TempDir()), "page", srv.URL()+"/")
	p.waitSynced()
	id := p.addTodoUI("Written before the quota shrank")
	p.waitSynced()

	setQuota(t, p, srv.URL(), 1)
	code := eval[string](p, `window.app.todos.upsert({id: "too-big", title: "x".repeat(4 << 20), done: false, createdAt: Date.now()})
		.then(() => "resolved", (e) => (e && e.code) ? e.code : "rejected without a code: " + e)`)
	if code != "quota_exceeded" {
		t.Fatalf("upsert over quota: %s, want a rejection with code quota_exceeded", code)
	}

	got := byID(p.todos())
	if td, ok := got[id]; !ok || td.Title != "Written before the quota shrank" {
		t.Fatalf("earlier todo after the failed write: %+v (present %v)", td, ok)
	}
	if _, ok := got["too-big"]; ok || len(got) != 1 {
		t.Fatalf("store after the failed write holds %d todos (too-big present %v), want only the earlier one", len(got), ok)
	}

	setQuota(t, p, srv.URL(), 0)
	p.addTodoUI("Written after the quota came back")
	p.waitSynced()
	if _, ok := srv.doc(t, "todos", id); !ok {
		t.Fatal("the server lost the earlier todo")
	}
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
