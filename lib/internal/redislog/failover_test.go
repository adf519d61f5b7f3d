package redislog

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tl-sh/tl/lib/internal/redistest"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// switchProxy forwards loopback connections to a backend that the test can
// switch, cutting the open ones: a failover as a relay behind a virtual IP
// or a Sentinel-aware proxy sees it.
type switchProxy struct {
	l       net.Listener
	mu      sync.Mutex // guards backend and conns
	backend string
	conns   []net.Conn
	wg      sync.WaitGroup
}

func newSwitchProxy(t *testing.T, backend string) *switchProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{l: l, backend: backend}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		l.Close()
		p.cut("")
		p.wg.Wait()
	})
	return p
}

func (p *switchProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, b)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(b, c); b.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, b); c.Close() }()
	}
}

// cut closes every forwarded connection and, unless backend is "",
// forwards new ones there.
func (p *switchProxy) cut(backend string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	if backend != "" {
		p.backend = backend
	}
}

// A failover to a replica that missed writes: the relays find the new
// primary behind the same address, holding less than they saw. The
// replica is its own Redis process (its run_id), so the tenant starts a
// new epoch before any seq is given again.
func TestFailoverToStaleReplica(t *testing.T) {
	primary := redistest.New(t, redistest.Options{})
	replica := redistest.New(t, redistest.Options{})
	_, port, _ := strings.Cut(primary.Addr(), ":")
	if r, err := replica.Command("REPLICAOF", "127.0.0.1", port); err != nil || r != "+OK" {
		t.Fatalf("REPLICAOF: %q %v", r, err)
	}
	proxy := newSwitchProxy(t, primary.Addr())
	s, err := Open(Options{URL: "redis://" + proxy.l.Addr().String() + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	r0, err := s.Append(ctx, "acme", "", bodies(0, 100))
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the replica to hold the 100, then cut it off: from now on
	// it misses writes.
	testkit.WaitFor(t, "the replica to hold seq 100", func() bool {
		r, err := replica.Command("XLEN", "tl:{acme}:s")
		return err == nil && r == ":"+strconv.Itoa(100)
	})
	if r, err := replica.Command("REPLICAOF", "NO", "ONE"); err != nil || r != "+OK" {
		t.Fatalf("REPLICAOF NO ONE: %q %v", r, err)
	}
	r1, err := s.Append(ctx, "acme", "", bodies(100, 100))
	if err != nil {
		t.Fatal(err)
	}
	primary.Stop()
	proxy.cut(replica.Addr())
	r2 := appendUntil(t, s, "acme", "k", bodies(200, 10))
	if r2.Epoch == r0.Epoch || r2.First != 1 {
		t.Fatalf("after failing over to a replica that had seq %d (the relay saw %d): %+v; want a new epoch from 1", r0.Last, r1.Last, r2)
	}
}
