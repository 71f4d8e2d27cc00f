package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestESMPage loads the engine through `import { createClient } from
// "./index.js"` on two isolated pages: a note added in one reaches the
// server and the other.
func TestESMPage(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	br := sharedBrowser(t)
	a := openESM(t, br, "esm-A", srv.URL()+"/esm.html")
	b := openESM(t, br, "esm-B", srv.URL()+"/esm.html")

	a.do(
		chromedp.SendKeys(chromedp.ID("note-text"), "Hello from a module"),
		chromedp.Click(chromedp.ID("add-note")),
	)
	const rowExpr = `(() => { const li = [...document.querySelectorAll("#notes li")].find((li) => li.textContent === "Hello from a module"); return li ? li.dataset.id : ""; })()`
	id := waitFor[string](a, syncTimeout, "the note to render", rowExpr, `document.querySelector("#notes").innerText`)
	if got := waitFor[string](b, syncTimeout, "the note to reach the other page", rowExpr, `document.querySelector("#notes").innerText`); got != id {
		t.Fatalf("other page shows note %q, want %q", got, id)
	}
	waitFor[bool](a, syncTimeout, "the module page to be synced",
		`(async () => { const s = await window.esmApp.client.status(); return s.state === "connected" && s.pending === 0; })()`,
		`(async () => JSON.stringify(await window.esmApp.client.status()))()`)
	srv.waitDoc(t, "notes", id, nil)
}

func openESM(t *testing.T, b *browser, name, url string) *page {
	t.Helper()
	p := b.newPage(t, name)
	p.navigate(url)
	waitFor[bool](p, startTimeout, "the module page to start",
		`!!(window.esmApp && (window.esmApp.ready || window.esmApp.error))`, `JSON.stringify(window.esmApp || null)`)
	if msg := eval[string](p, `window.esmApp.error || ""`); msg != "" {
		t.Fatalf("%s: the module page failed to start: %s", name, msg)
	}
	return p
}
