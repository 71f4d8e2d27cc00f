package e2e

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Timeouts for conditions; generous, because the machine is shared. They
// bound a wait, they are not what a test measures.
const (
	startTimeout = 45 * time.Second // wasm download, compile, IndexedDB open
	syncTimeout  = 30 * time.Second // a change reaching the other side
)

// todo is a document of the demo's "todos" repository.
type todo struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Done  bool   `json:"done"`
}

// status mirrors the JS client's status object.
type status struct {
	State     string `json:"state"`
	Pending   int    `json:"pending"`
	LastError string `json:"lastError"`
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// openDemo opens the todo demo at url in a new tab of b and waits until it
// has rendered its first result.
func openDemo(t *testing.T, b *browser, name, url string) *page {
	t.Helper()
	p := b.newPage(t, name)
	p.navigate(url)
	p.waitDemo()
	return p
}

// waitDemo waits for the demo's first render after a load; it fails the
// test when the page reports that the engine failed to start.
func (p *page) waitDemo() {
	p.t.Helper()
	waitFor[bool](p, startTimeout, "the demo page to start",
		`!!(window.app && (window.app.ready || window.app.error))`,
		`JSON.stringify({app: !!window.app, error: window.app && window.app.error, lfsync: typeof window.lfsync})`)
	if msg := eval[string](p, `window.app.error || ""`); msg != "" {
		p.t.Fatalf("%s: the demo failed to start: %s", p.name, msg)
	}
}

// statusExpr evaluates to the client's status (status() may be sync or a
// promise).
const statusExpr = `(async () => await window.app.client.status())()`

const statusDiag = `(async () => JSON.stringify({status: await window.app.client.status(), badge: document.querySelector("#status").dataset.state, metrics: await window.app.client.metrics()}))()`

// clientStatus returns the page's current client status.
func (p *page) clientStatus() status {
	p.t.Helper()
	return eval[status](p, statusExpr)
}

// waitState waits until the client reports state.
func (p *page) waitState(state string) {
	p.t.Helper()
	waitFor[bool](p, syncTimeout, "client state "+state,
		`(async () => (await window.app.client.status()).state === `+js(state)+`)()`, statusDiag)
}

// waitSynced waits until the client is connected with an empty outbox.
func (p *page) waitSynced() {
	p.t.Helper()
	waitFor[bool](p, syncTimeout, "the client to be connected with nothing pending",
		`(async () => { const s = await window.app.client.status(); return s.state === "connected" && s.pending === 0; })()`, statusDiag)
}

// waitPending waits until the outbox holds at least n changes.
func (p *page) waitPending(n int) {
	p.t.Helper()
	waitFor[bool](p, syncTimeout, strconv.Itoa(n)+" pending changes",
		`(async () => (await window.app.client.status()).pending >= `+strconv.Itoa(n)+`)()`, statusDiag)
}

// todos reads every todo from the page's repository (IndexedDB).
func (p *page) todos() []todo {
	p.t.Helper()
	return eval[[]todo](p, `window.app.todos.getAll()`)
}

// addTodoUI types title into the new-todo field and presses Add, as a
// person would, then waits for the row to render.
func (p *page) addTodoUI(title string) string {
	p.t.Helper()
	p.do(
		chromedp.SendKeys(chromedp.ID("new-title"), title),
		chromedp.Click(chromedp.ID("add")),
	)
	return p.waitRow(title)
}

// rowID returns the data-id of the rendered row titled title, or "".
func rowIDExpr(title string) string {
	return `(() => { const li = [...document.querySelectorAll("#todo-list li")].find((li) => li.querySelector(".title").textContent === ` + js(title) + `); return li ? li.dataset.id : ""; })()`
}

// waitRow waits until a row titled title is rendered and returns its id.
func (p *page) waitRow(title string) string {
	p.t.Helper()
	return waitFor[string](p, syncTimeout, "a row titled "+strconv.Quote(title), rowIDExpr(title), `document.querySelector("#todo-list").innerText`)
}

// waitRowGone waits until no row has the id.
func (p *page) waitRowGone(id string) {
	p.t.Helper()
	waitFor[bool](p, syncTimeout, "row "+id+" to disappear",
		`!document.querySelector('#todo-list li[data-id=`+js(id)+`]')`, `document.querySelector("#todo-list").innerText`)
}

// waitRowDone waits until the row's checkbox shows done.
func (p *page) waitRowDone(id string, done bool) {
	p.t.Helper()
	waitFor[bool](p, syncTimeout, "row "+id+" done="+strconv.FormatBool(done),
		`(() => { const li = document.querySelector('#todo-list li[data-id=`+js(id)+`]'); return !!li && li.querySelector(".toggle").checked === `+strconv.FormatBool(done)+` && li.classList.contains("done") === `+strconv.FormatBool(done)+`; })()`,
		`document.querySelector("#todo-list").innerHTML`)
}

func rowSel(id, child string) chromedp.CSS {
	return chromedp.CSS(`#todo-list li[data-id="` + id + `"] ` + child)
}

// toggleUI clicks the row's checkbox.
func (p *page) toggleUI(id string) {
	p.t.Helper()
	p.do(chromedp.Click(rowSel(id, ".toggle")))
}

// renameUI double-clicks the row's title, types the new title and presses
// Enter.
func (p *page) renameUI(id, title string) {
	p.t.Helper()
	p.do(
		chromedp.DoubleClick(rowSel(id, ".title")),
		chromedp.WaitVisible(rowSel(id, ".edit")),
		chromedp.SetValue(rowSel(id, ".edit"), title),
		chromedp.SendKeys(rowSel(id, ".edit"), kb.Enter),
	)
}

// deleteUI clicks the row's delete button.
func (p *page) deleteUI(id string) {
	p.t.Helper()
	p.do(chromedp.Click(rowSel(id, ".delete-btn")))
}

// waitDisconnected waits until the client no longer reports connected.
func (p *page) waitDisconnected() {
	p.t.Helper()
	waitFor[bool](p, syncTimeout, "the client to notice the server is gone",
		`(async () => (await window.app.client.status()).state !== "connected")()`, statusDiag)
}
