package testkit

import (
	"strings"
	"sync"
	"testing"
)

// TestSyncBuffer writes from several goroutines while reading; the race
// detector checks the locking.
func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
			}
		})
	}
	WaitFor(t, "some writes", func() bool { return len(b.String()) > 0 })
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 400) {
		t.Errorf("got %d bytes, want 400 x", len(got))
	}
}
