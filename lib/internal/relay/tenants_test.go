package relay

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/tlog"
)

// TestRegistryOpensOnce: concurrent first uses of a tenant open its log
// once, outside the registry's lock (another tenant is served meanwhile),
// and a tenant being closed is reopened only after its close finished.
func TestRegistryOpensOnce(t *testing.T) {
	gate := make(chan struct{})
	var opens, closesDone atomic.Int32
	cfg := Config{MaxSubscribers: 10, MaxTenantSubscribers: 10}
	cfg.OpenLog = func(name string) (tlog.Log, error) {
		opens.Add(1)
		if name == "slow" {
			<-gate
		}
		return &closeWatch{Log: tlog.NewMemory(10, 1<<20), closed: &closesDone}, nil
	}
	cfg.setDefaults()
	g := newRegistry(&cfg)
	type held struct {
		tn  *tenant
		sub bool
	}
	got := make(chan held, 8)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tn, err := g.acquire("slow", i%2 == 0)
			if err != nil {
				t.Error(err)
				return
			}
			got <- held{tn, i%2 == 0}
		}()
	}
	// While "slow" is being opened, another tenant is not held up.
	other, err := g.acquire("other", false)
	if err != nil {
		t.Fatal(err)
	}
	g.release(other, false)
	close(gate)
	wg.Wait()
	close(got)
	var first *tenant
	var all []held
	for h := range got {
		if first == nil {
			first = h.tn
		}
		if h.tn != first {
			t.Fatal("two tenants for one name")
		}
		all = append(all, h)
	}
	if opens.Load() != 2 {
		t.Errorf("%d opens, want 2", opens.Load())
	}
	if _, subs := g.counts(); subs != 4 {
		t.Errorf("%d subscribers counted, want 4", subs)
	}
	for _, h := range all {
		g.release(h.tn, h.sub)
	}
	if n := g.dropIdle(time.Now().Add(time.Second)); n != 2 {
		t.Errorf("dropped %d tenants, want 2", n)
	}
	if closesDone.Load() != 2 {
		t.Errorf("%d logs closed, want 2", closesDone.Load())
	}
	again, err := g.acquire("other", false)
	if err != nil || again == other || opens.Load() != 3 {
		t.Errorf("reopen: %v, same %v, opens %d", err, again == other, opens.Load())
	}
}

type closeWatch struct {
	tlog.Log
	closed *atomic.Int32
}

func (c *closeWatch) Close() error {
	c.closed.Add(1)
	return c.Log.Close()
}

// TestDefaultHistoryHoldsAMinute: with the default bounds, a minute at 500
// events/s of 1 KiB events (five times the samples' size) is all still held,
// so a tail that reconnects within a minute loses nothing.
func TestDefaultHistoryHoldsAMinute(t *testing.T) {
	var cfg Config
	cfg.setDefaults()
	log, err := cfg.OpenLog("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	body := []byte(`"tenant_id":"acme","timestamp":1,"type":"click","path":"/","metadata":{"pad":"` + strings.Repeat("x", 900) + `"}}` + "\n")
	batch := make([][]byte, 500)
	for i := range batch {
		batch[i] = body
	}
	for s := 0; s < 60; s++ { // one append per second's worth
		if _, _, err := appendBodies(log, batch); err != nil {
			t.Fatal(err)
		}
	}
	if oldest, newest := log.Bounds(); oldest != 1 || newest != 30000 {
		t.Errorf("after a minute at 500 events/s the history holds %d..%d, want 1..30000", oldest, newest)
	}
}
