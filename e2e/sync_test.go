package e2e

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTwoBrowsersSync drives the demo in two separate browser processes
// (separate profiles, so separate IndexedDB): an add, a completion, a rename
// and a delete each made in one appear in the other. It leaves a side-by-side
// screenshot in e2e/artifacts/.
func TestTwoBrowsersSync(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	a := openDemo(t, newBrowser(t, t.TempDir()), "A", srv.URL()+"/")
	b := openDemo(t, newBrowser(t, t.TempDir()), "B", srv.URL()+"/")
	a.waitSynced()
	b.waitSynced()

	// Add in A: appears in B.
	id := a.addTodoUI("Buy milk")
	if got := b.waitRow("Buy milk"); got != id {
		t.Fatalf("B shows the todo with id %q, A made %q", got, id)
	}
	a.addTodoUI("Water the plants")
	b.waitRow("Water the plants")

	// Complete in B: A shows it done.
	b.toggleUI(id)
	b.waitRowDone(id, true)
	a.waitRowDone(id, true)

	// Rename in A: B shows the new title.
	a.renameUI(id, "Buy oat milk")
	if got := a.waitRow("Buy oat milk"); got != id {
		t.Fatalf("renamed row in A has id %q, want %q", got, id)
	}
	if open := eval[int](a, `document.querySelectorAll("#todo-list li.editing").length`); open != 0 {
		t.Fatalf("A still shows %d open editors after the rename was saved", open)
	}
	if got := b.waitRow("Buy oat milk"); got != id {
		t.Fatalf("renamed row in B has id %q, want %q", got, id)
	}
	a.waitSynced()
	b.waitSynced()

	// The stores agree, not just the screens.
	for _, p := range []*page{a, b} {
		got := byID(p.todos())
		if tt, ok := got[id]; !ok || tt.Title != "Buy oat milk" || !tt.Done {
			t.Fatalf("%s: stored todo %s = %+v (present %v), want title %q done", p.name, id, tt, ok, "Buy oat milk")
		}
		if len(got) != 2 {
			t.Fatalf("%s: %d todos stored, want 2: %+v", p.name, len(got), got)
		}
	}

	saveSideBySide(t, "two-clients.png", a.screenshot(), b.screenshot())

	// Delete in B: gone from A, screen and store.
	b.deleteUI(id)
	b.waitRowGone(id)
	a.waitRowGone(id)
	if _, ok := byID(a.todos())[id]; ok {
		t.Fatalf("A still stores the todo deleted in B")
	}
}

// byID indexes todos by id.
func byID(todos []todo) map[string]todo {
	m := make(map[string]todo, len(todos))
	for _, t := range todos {
		m[t.ID] = t
	}
	return m
}

// saveSideBySide writes the two PNG screenshots next to each other into
// e2e/artifacts/name.
func saveSideBySide(t *testing.T, name string, left, right []byte) {
	t.Helper()
	l, err := png.Decode(bytes.NewReader(left))
	if err != nil {
		t.Fatalf("failed to decode a screenshot: %v", err)
	}
	r, err := png.Decode(bytes.NewReader(right))
	if err != nil {
		t.Fatalf("failed to decode a screenshot: %v", err)
	}
	const gap = 16
	w := l.Bounds().Dx() + gap + r.Bounds().Dx()
	h := max(l.Bounds().Dy(), r.Bounds().Dy())
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(out, out.Bounds(), &image.Uniform{color.RGBA{0x33, 0x36, 0x44, 0xff}}, image.Point{}, draw.Src)
	draw.Draw(out, l.Bounds().Sub(l.Bounds().Min), l, l.Bounds().Min, draw.Src)
	draw.Draw(out, image.Rect(l.Bounds().Dx()+gap, 0, w, r.Bounds().Dy()), r, r.Bounds().Min, draw.Src)

	dir := "artifacts"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("failed to create %s: %v", dir, err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		t.Fatalf("failed to encode the screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatalf("failed to write %s: %v", path, err)
	}
	t.Logf("screenshot: e2e/%s", path)
}

// TestConflictingEditsConverge has two browsers edit the same todo while the
// server is down; after it returns both sync, and both end with the same
// document, one of the two edits.
func TestConflictingEditsConverge(t *testing.T) {
	requireBrowser(t)
	srv := startServer(t, serverOptions{})
	a := openDemo(t, newBrowser(t, t.TempDir()), "A", srv.URL()+"/")
	b := openDemo(t, newBrowser(t, t.TempDir()), "B", srv.URL()+"/")
	id := a.addTodoUI("Plan the trip")
	b.waitRow("Plan the trip")
	a.waitSynced()
	b.waitSynced()

	srv.Stop()
	a.waitDisconnected()
	b.waitDisconnected()

	a.renameUI(id, "Plan the trip to Lisbon")
	a.waitRow("Plan the trip to Lisbon")
	b.renameUI(id, "Plan the trip to Porto")
	b.waitRow("Plan the trip to Porto")
	b.toggleUI(id)
	b.waitRowDone(id, true)
	a.waitPending(1)
	b.waitPending(1)

	srv.Restart()
	a.waitSynced()
	b.waitSynced()

	// Both stores converge on one document: poll both until they agree.
	expr := `(async () => { const d = await window.app.todos.get(` + js(id) + `); return d ? JSON.stringify([d.title, !!d.done]) : "missing"; })()`
	var final, av, bv string
	for deadline := time.Now().Add(syncTimeout); ; time.Sleep(100 * time.Millisecond) {
		av, bv = eval[string](a, expr), eval[string](b, expr)
		if av == bv {
			final = av
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A and B did not converge within %v: A=%s B=%s", syncTimeout, av, bv)
		}
	}
	var got []any
	if err := json.Unmarshal([]byte(final), &got); err != nil || len(got) != 2 {
		t.Fatalf("converged document %s is not [title, done]", final)
	}
	if got[0] != "Plan the trip to Lisbon" && got[0] != "Plan the trip to Porto" {
		t.Fatalf("converged title %v is neither edit", got[0])
	}
	t.Logf("converged on %s", final)
	// The screens show what the stores hold.
	title := got[0].(string)
	if a.waitRow(title) != id || b.waitRow(title) != id {
		t.Fatalf("the rows titled %q are not todo %s", title, id)
	}
}
