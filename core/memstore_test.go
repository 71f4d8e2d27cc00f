package core_test

import (
	"testing"

	"github.com/lfsync/lfsync/core"
	"github.com/lfsync/lfsync/core/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store {
		s := core.NewMemoryStore()
		t.Cleanup(func() { s.Close() })
		return s
	})
}
