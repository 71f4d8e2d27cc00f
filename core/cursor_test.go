package core

import "testing"

func TestCursorAdvancesOnlyOverContiguousSequences(t *testing.T) {
	tr := newCursorTrack(10)
	if got := tr.add(11, 12); got != 12 {
		t.Fatalf("cursor %d after 11,12, want 12", got)
	}
	if got := tr.add(14, 15); got != 12 {
		t.Fatalf("cursor %d after a gap at 13, want 12", got)
	}
	if !tr.gap() || tr.firstAhead() != 14 || tr.highest() != 15 {
		t.Fatalf("gap=%v firstAhead=%d highest=%d, want true 14 15", tr.gap(), tr.firstAhead(), tr.highest())
	}
	if got := tr.add(13); got != 15 {
		t.Fatalf("cursor %d after the gap filled, want 15", got)
	}
	if tr.gap() {
		t.Fatal("gap reported after it was filled")
	}
}

func TestCursorIgnoresOldAndDuplicateSequences(t *testing.T) {
	tr := newCursorTrack(5)
	if got := tr.add(3, 5, 6, 6, 0); got != 6 {
		t.Fatalf("cursor %d, want 6", got)
	}
	if tr.gap() {
		t.Fatal("old sequences counted as ahead")
	}
}

func TestCursorOutOfOrderArrival(t *testing.T) {
	tr := newCursorTrack(0)
	for _, s := range []int64{5, 3, 4, 2} {
		if got := tr.add(s); got != 0 {
			t.Fatalf("cursor moved to %d before sequence 1 arrived", got)
		}
	}
	if got := tr.add(1); got != 5 {
		t.Fatalf("cursor %d after 1 arrived, want 5", got)
	}
}

func TestCursorCoveredSkipsReducedGaps(t *testing.T) {
	tr := newCursorTrack(0)
	tr.add(4, 9)
	if got := tr.covered(7); got != 7 {
		t.Fatalf("covered(7) = %d, want 7", got)
	}
	if !tr.gap() || tr.firstAhead() != 9 {
		t.Fatalf("sequence 9 beyond the covered range was lost")
	}
	if got := tr.add(8); got != 9 {
		t.Fatalf("cursor %d, want 9", got)
	}
	if got := tr.covered(3); got != 9 {
		t.Fatalf("covered below the cursor moved it back to %d", got)
	}
}
