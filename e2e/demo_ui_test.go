package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDemoFiltersAndBulkActions checks the demo's own controls on one page:
// the filters show the right rows, "Mark all done" and "Clear completed"
// change the store (not just the screen), and the counter follows.
func TestDemoFiltersAndBulkActions(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	p := openDemo(t, sharedBrowser(t), "page", srv.URL()+"/")
	milk := p.addTodoUI("Milk")
	bread := p.addTodoUI("Bread")
	eggs := p.addTodoUI("Eggs")
	p.toggleUI(bread)
	p.waitRowDone(bread, true)

	rows := `[...document.querySelectorAll("#todo-list li")].map((li) => li.dataset.id).join(",")`
	filter := func(name, want string) {
		t.Helper()
		p.do(chromedp.Click(chromedp.CSS(`.filter[data-filter="` + name + `"]`)))
		waitFor[bool](p, syncTimeout, "filter "+name+" to show "+want, rows+` === `+js(want), rows)
	}
	filter("active", milk+","+eggs)
	filter("done", bread)
	filter("all", milk+","+bread+","+eggs)
	waitFor[bool](p, syncTimeout, "the counter to say 2 items left",
		`document.querySelector("#count").textContent === "2 items left"`, `document.querySelector("#count").textContent`)

	p.do(chromedp.Click(chromedp.ID("clear-completed")))
	p.waitRowGone(bread)
	if got := byID(p.todos()); len(got) != 2 || got[bread].ID != "" {
		t.Fatalf("after Clear completed the store holds %+v, want milk and eggs only", got)
	}

	p.do(chromedp.Click(chromedp.ID("toggle-all")))
	p.waitRowDone(milk, true)
	p.waitRowDone(eggs, true)
	for _, td := range p.todos() {
		if !td.Done {
			t.Fatalf("after Mark all done, %+v is not done in the store", td)
		}
	}
	waitFor[bool](p, syncTimeout, "the counter to say 0 items left",
		`document.querySelector("#count").textContent === "0 items left"`, `document.querySelector("#count").textContent`)
	srv.waitDoc(t, "todos", eggs, func(d todo) bool { return d.Done })
	p.waitSynced()
}
