package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lfsync/lfsync/core/protocol"
	"github.com/lfsync/lfsync/server/sqlite"
)

// crashEnv names the database a crashing child process appends to.
const crashEnv = "LFSYNC_SQLITE_CRASH_DB"

// TestCrashRecovery runs a child process that appends from many goroutines
// and exits abruptly, without Close, while appends are in flight. Every
// append the child saw acknowledged must be in the reopened database at its
// acknowledged sequence, and the log must run 1..N without gaps.
func TestCrashRecovery(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("child exited with %d (%v), want 3; stderr:\n%s", code, err, stderr.String())
	}
	acked := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			continue
		}
		seq, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("bad child line %q", sc.Text())
		}
		acked[f[1]] = seq
	}
	if len(acked) < 200 {
		t.Fatalf("child reported %d acks, want at least 200; stderr:\n%s", len(acked), stderr.String())
	}

	s := open(t, path)
	stored := map[string]int64{}
	var after int64
	for {
		events, more, err := s.Range(context.Background(), "ns", "todos", after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.ServerSequence != after+1 {
				t.Fatalf("log jumps from sequence %d to %d after the crash", after, e.ServerSequence)
			}
			after = e.ServerSequence
			stored[e.ID] = e.ServerSequence
		}
		if !more {
			break
		}
	}
	for id, seq := range acked {
		if got, ok := stored[id]; !ok || got != seq {
			t.Fatalf("acked event %s at %d is stored at %d (present %v) after the crash", id, seq, got, ok)
		}
	}
	if last, err := s.LastSequence(context.Background(), "ns", "todos"); err != nil || last != after {
		t.Fatalf("LastSequence() after the crash = %d, %v; want %d", last, err, after)
	}
	res, err := s.Append(context.Background(), "ns", "todos", []protocol.Event{{
		ID: "after-crash", Operation: protocol.OpInsert, CreatedAt: time.Now(), DataID: "d", Data: []byte(`{"id":"d"}`),
	}})
	if err != nil || res[0].Sequence != after+1 {
		t.Fatalf("Append() after the crash = %+v, %v; want sequence %d", res, err, after+1)
	}
}

// crashChild appends until 300 acks are printed, then exits with code 3
// without closing the store.
func crashChild(path string) {
	s, err := sqlite.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var (
		mu   sync.Mutex
		acks int
	)
	for p := range 20 {
		go func() {
			for i := 0; ; i++ {
				batch := make([]protocol.Event, 1+i%3)
				for j := range batch {
					id := fmt.Sprintf("p%d-%d-%d", p, i, j)
					batch[j] = protocol.Event{ID: id, Operation: protocol.OpInsert, CreatedAt: time.Now(),
						DataID: fmt.Sprintf("d%d", i%10), Data: []byte(`{"n":1}`)}
				}
				res, err := s.Append(context.Background(), "ns", "todos", batch)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				for _, r := range res {
					fmt.Printf("ack %s %d\n", r.ID, r.Sequence)
					acks++
				}
				if acks >= 300 {
					os.Exit(3) // crash: no Close, appends in flight
				}
				mu.Unlock()
			}
		}()
	}
	select {}
}
