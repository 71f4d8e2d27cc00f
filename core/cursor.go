package core

import "sort"

// cursorTrack advances a repository's pull cursor over the contiguous prefix
// of serverSequences applied: a sequence seen beyond a gap waits until the
// gap is filled, so the persisted cursor never skips an event.
type cursorTrack struct {
	// cursor is the highest sequence such that every sequence up to it has
	// been applied.
	cursor int64
	// ahead holds applied sequences beyond cursor+1.
	ahead map[int64]struct{}
}

func newCursorTrack(cursor int64) *cursorTrack {
	return &cursorTrack{cursor: cursor, ahead: make(map[int64]struct{})}
}

// add records applied sequences and returns the new cursor.
func (t *cursorTrack) add(seqs ...int64) int64 {
	for _, s := range seqs {
		if s > t.cursor {
			t.ahead[s] = struct{}{}
		}
	}
	for {
		if _, ok := t.ahead[t.cursor+1]; !ok {
			break
		}
		delete(t.ahead, t.cursor+1)
		t.cursor++
	}
	return t.cursor
}

// covered records that every sequence up to seq was delivered (a reply of
// a server that reduces its replies, whose sequences have gaps by design),
// and returns the new cursor.
func (t *cursorTrack) covered(seq int64) int64 {
	if seq > t.cursor {
		t.cursor = seq
		for s := range t.ahead {
			if s <= seq {
				delete(t.ahead, s)
			}
		}
	}
	return t.add()
}

// gap reports whether sequences beyond a missing one were applied: the
// missing range (cursor, firstAhead) must be requested.
func (t *cursorTrack) gap() bool { return len(t.ahead) > 0 }

// firstAhead returns the lowest sequence beyond the gap, 0 if none.
func (t *cursorTrack) firstAhead() int64 {
	if len(t.ahead) == 0 {
		return 0
	}
	keys := make([]int64, 0, len(t.ahead))
	for s := range t.ahead {
		keys = append(keys, s)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys[0]
}

// highest returns the highest sequence applied.
func (t *cursorTrack) highest() int64 {
	h := t.cursor
	for s := range t.ahead {
		if s > h {
			h = s
		}
	}
	return h
}
