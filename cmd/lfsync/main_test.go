package main

import "testing"

func TestRunCommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"version"}, 0},
		{[]string{"frobnicate"}, 2},
		{[]string{"serve", "--no-such-flag"}, 2},
		// No authentication configured: refuses to start.
		{[]string{"serve", "--addr", "127.0.0.1:0", "--db", t.TempDir() + "/x.db"}, 1},
	} {
		if got := run(tc.args); got != tc.code {
			t.Errorf("lfsync %v: exit %d, want %d", tc.args, got, tc.code)
		}
	}
}
