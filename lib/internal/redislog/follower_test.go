package redislog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/redistest"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// gap is a range of seqs a collector was told it will never get.
type gap struct{ from, to uint64 }

// tenantView is what a collector saw of one tenant.
type tenantView struct {
	epoch  string
	last   uint64
	resets int
	gaps   []gap
	lines  map[uint64]string
}

// collector checks the follower's promises as updates arrive: after a
// Reset, entries continue from After+1, contiguous, and any skip is
// announced by After.
type collector struct {
	mu      sync.Mutex // guards all below
	tenants map[string]*tenantView
	errs    []string
	hold    chan struct{} // if non-nil, deliver waits on it once
}

func newCollector() *collector { return &collector{tenants: map[string]*tenantView{}} }

func (c *collector) deliver(u Update) {
	c.mu.Lock()
	hold := c.hold
	if len(u.Entries) > 0 {
		c.hold = nil
	}
	c.mu.Unlock()
	if hold != nil && len(u.Entries) > 0 {
		<-hold
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.tenants[u.Tenant]
	if v == nil {
		if !u.Reset {
			c.errs = append(c.errs, fmt.Sprintf("%s: first update is not a reset: %+v", u.Tenant, u))
		}
		v = &tenantView{lines: map[uint64]string{}}
		c.tenants[u.Tenant] = v
	}
	switch {
	case u.Reset:
		v.resets++
		v.epoch, v.last = u.Epoch, u.After
	case u.Epoch != v.epoch:
		c.errs = append(c.errs, fmt.Sprintf("%s: epoch %s without a reset (had %s)", u.Tenant, u.Epoch, v.epoch))
	case u.After < v.last:
		c.errs = append(c.errs, fmt.Sprintf("%s: update after %d goes back (had %d)", u.Tenant, u.After, v.last))
	case u.After > v.last:
		v.gaps = append(v.gaps, gap{v.last + 1, u.After})
		v.last = u.After
	}
	for _, e := range u.Entries {
		if e.Seq != v.last+1 {
			c.errs = append(c.errs, fmt.Sprintf("%s: seq %d after %d", u.Tenant, e.Seq, v.last))
		}
		if !strings.HasPrefix(string(e.Line), fmt.Sprintf(`{"seq":%d,`, e.Seq)) {
			c.errs = append(c.errs, fmt.Sprintf("%s: seq %d has line %s", u.Tenant, e.Seq, e.Line))
		}
		v.lines[e.Seq] = string(e.Line)
		v.last = e.Seq
	}
}

// view returns a copy of what the collector saw of tenant.
func (c *collector) view(tenant string) tenantView {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.tenants[tenant]
	if v == nil {
		return tenantView{}
	}
	cp := *v
	cp.gaps = append([]gap(nil), v.gaps...)
	return cp
}

func (c *collector) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Error(e)
	}
}

func (c *collector) waitLast(t *testing.T, tenant string, epoch string, last uint64) {
	t.Helper()
	testkit.WaitFor(t, fmt.Sprintf("%s to reach seq %d", tenant, last), func() bool {
		v := c.view(tenant)
		return v.last == last && (epoch == "" || v.epoch == epoch)
	})
}

func (c *collector) waitResets(t *testing.T, tenant string, n int) tenantView {
	t.Helper()
	testkit.WaitFor(t, fmt.Sprintf("%d resets of %s", n, tenant), func() bool { return c.view(tenant).resets >= n })
	return c.view(tenant)
}

func newFollower(t *testing.T, s *Store, c *collector) *Follower {
	f := s.NewFollower(c.deliver)
	t.Cleanup(f.Close)
	return f
}

func TestFollowerDeliversInOrder(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	pub := openStore(t, srv, Options{})
	sub := openStore(t, srv, Options{})
	ctx := context.Background()
	// Some history before following: the follower starts at the head.
	r0, err := pub.Append(ctx, "acme", "", bodies(0, 4))
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	f := newFollower(t, sub, c)
	f.Follow("acme")
	f.Follow("acme") // twice is once
	v := c.waitResets(t, "acme", 1)
	if v.last != r0.Last || v.epoch != r0.Epoch {
		t.Fatalf("reset at %d in %s, want the head %d in %s", v.last, v.epoch, r0.Last, r0.Epoch)
	}
	var last Result
	for i := 0; i < 20; i++ {
		if last, err = pub.Append(ctx, "acme", "", bodies(i*7, 7)); err != nil {
			t.Fatal(err)
		}
	}
	c.waitLast(t, "acme", r0.Epoch, last.Last)
	b, err := pub.Read(ctx, "acme", r0.Last+1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	v = c.view("acme")
	for _, e := range b.Entries {
		if v.lines[e.Seq] != string(e.Line) {
			t.Errorf("seq %d: got %q, want %q", e.Seq, v.lines[e.Seq], e.Line)
		}
	}
	if len(v.gaps) != 0 || v.resets != 1 {
		t.Errorf("gaps %v, resets %d; want none and 1", v.gaps, v.resets)
	}
	c.check(t)
}

// Thousands of tenants on one follower, some unfollowed along the way.
func TestFollowerManyTenants(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	pub := openStore(t, srv, Options{})
	sub := openStore(t, srv, Options{})
	ctx := context.Background()
	const n = 2000
	c := newCollector()
	f := newFollower(t, sub, c)
	tenant := func(i int) string { return fmt.Sprintf("t%04d", i) }
	for i := 0; i < n; i++ {
		f.Follow(tenant(i))
	}
	for i := 0; i < n; i++ {
		c.waitResets(t, tenant(i), 1)
	}
	for _, i := range rand.Perm(n) {
		if _, err := pub.Append(ctx, tenant(i), "", bodies(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		c.waitLast(t, tenant(i), "", 1)
	}
	// Unfollow the odd ones; publish to all again.
	for i := 1; i < n; i += 2 {
		f.Unfollow(tenant(i))
	}
	if f.Len() != n/2 {
		t.Errorf("following %d tenants, want %d", f.Len(), n/2)
	}
	for i := 0; i < n; i++ {
		if _, err := pub.Append(ctx, tenant(i), "", bodies(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 2 {
		c.waitLast(t, tenant(i), "", 2)
	}
	for i := 1; i < n; i += 2 {
		if v := c.view(tenant(i)); v.last != 1 {
			t.Fatalf("unfollowed %s got seq %d", tenant(i), v.last)
		}
	}
	c.check(t)
}

// Tenants come and go while one tenant streams: it loses nothing, and
// each newcomer is followed.
func TestFollowerChurn(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	pub := openStore(t, srv, Options{})
	sub := openStore(t, srv, Options{})
	ctx := context.Background()
	c := newCollector()
	f := newFollower(t, sub, c)
	f.Follow("steady")
	c.waitResets(t, "steady", 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			name := fmt.Sprintf("c%d", i%50)
			if i%2 == 0 {
				f.Follow(name)
			} else {
				f.Unfollow(fmt.Sprintf("c%d", (i-1)%50))
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var last Result
	var err error
	for i := 0; i < 200; i++ {
		if last, err = pub.Append(ctx, "steady", "", bodies(i, 3)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	c.waitLast(t, "steady", last.Epoch, last.Last)
	if v := c.view("steady"); len(v.gaps) != 0 || v.resets != 1 {
		t.Errorf("steady: gaps %v, resets %d", v.gaps, v.resets)
	}
	f.Follow("late")
	c.waitResets(t, "late", 1)
	r, err := pub.Append(ctx, "late", "", bodies(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	c.waitLast(t, "late", r.Epoch, r.Last)
	c.check(t)
}

// Redis goes away and comes back: with its data, the follower continues
// where it was; without, it reports the new epoch and follows it from 1.
func TestFollowerOutage(t *testing.T) {
	tests := []struct {
		name    string
		persist bool
	}{
		{"redis keeps its data", true},
		{"redis lost its data", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.New(t, redistest.Options{Persist: tt.persist})
			pub := openStore(t, srv, Options{})
			sub := openStore(t, srv, Options{})
			ctx := context.Background()
			c := newCollector()
			f := newFollower(t, sub, c)
			f.Follow("acme")
			c.waitResets(t, "acme", 1)
			r1, err := pub.Append(ctx, "acme", "", bodies(0, 50))
			if err != nil {
				t.Fatal(err)
			}
			srv.Stop()
			testkit.WaitFor(t, "the publisher to see the outage", func() bool { return !pub.Ready() })
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			var r2 Result
			testkit.WaitFor(t, "an append to succeed", func() bool {
				r2, err = pub.Append(ctx, "acme", "", bodies(50, 50))
				return err == nil
			})
			c.waitLast(t, "acme", r2.Epoch, r2.Last)
			v := c.view("acme")
			if tt.persist {
				if r2.Epoch != r1.Epoch || r2.First != r1.Last+1 || v.resets != 1 || len(v.gaps) != 0 || len(v.lines) != 100 {
					t.Errorf("epochs %s %s, first %d, resets %d, gaps %v, %d lines; want one epoch, 100 lines without a gap",
						r1.Epoch, r2.Epoch, r2.First, v.resets, v.gaps, len(v.lines))
				}
			} else {
				if r2.Epoch == r1.Epoch || r2.First != 1 || v.resets != 2 || len(v.gaps) != 0 {
					t.Errorf("epochs %s %s, first %d, resets %d, gaps %v; want a new epoch from 1 after one more reset",
						r1.Epoch, r2.Epoch, r2.First, v.resets, v.gaps)
				}
			}
			c.check(t)
		})
	}
}

// A follower that falls behind the history learns exactly what it missed.
func TestFollowerEvictionGap(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	pub := openStore(t, srv, Options{MaxEvents: 100})
	sub := openStore(t, srv, Options{})
	ctx := context.Background()
	c := newCollector()
	f := newFollower(t, sub, c)
	f.Follow("acme")
	c.waitResets(t, "acme", 1)
	hold := make(chan struct{})
	c.mu.Lock()
	c.hold = hold
	c.mu.Unlock()
	if _, err := pub.Append(ctx, "acme", "", bodies(0, 1)); err != nil {
		t.Fatal(err)
	}
	// The follower is now stuck delivering seq 1. Its connection drops
	// (as when Redis finds its output buffer over the pubsub limit), and
	// the history moves far past it.
	testkit.WaitFor(t, "the follower to hold", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.hold == nil
	})
	if err := pub.rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	var last Result
	var err error
	for i := 0; i < 30; i++ {
		if last, err = pub.Append(ctx, "acme", "", bodies(i*100, 100)); err != nil {
			t.Fatal(err)
		}
	}
	close(hold)
	c.waitLast(t, "acme", last.Epoch, last.Last)
	v := c.view("acme")
	b, err := pub.Read(ctx, "acme", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	oldest := b.Entries[0].Seq
	if len(v.gaps) != 1 || v.gaps[0].from != 2 || v.gaps[0].to+1 > oldest {
		t.Fatalf("gaps %v, want one from 2 to at most %d (the oldest held is %d)", v.gaps, oldest-1, oldest)
	}
	for s := v.gaps[0].to + 1; s <= last.Last; s++ {
		if _, ok := v.lines[s]; !ok {
			t.Fatalf("seq %d missing after the gap", s)
		}
	}
	c.check(t)
}

// Redis loses a tenant's data without dropping connections (FLUSHALL,
// eviction): the epoch in the next published batch tells the follower.
func TestFollowerSeesEpochBirth(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	pub := openStore(t, srv, Options{})
	sub := openStore(t, srv, Options{})
	ctx := context.Background()
	c := newCollector()
	f := newFollower(t, sub, c)
	f.Follow("acme")
	c.waitResets(t, "acme", 1)
	r1, err := pub.Append(ctx, "acme", "", bodies(0, 20))
	if err != nil {
		t.Fatal(err)
	}
	c.waitLast(t, "acme", r1.Epoch, r1.Last)
	if err := pub.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r2, err := pub.Append(ctx, "acme", "", bodies(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Epoch == r1.Epoch || r2.First != 1 {
		t.Fatalf("after FLUSHALL: %+v", r2)
	}
	c.waitLast(t, "acme", r2.Epoch, r2.Last)
	if v := c.view("acme"); v.resets != 2 || len(v.gaps) != 0 {
		t.Errorf("resets %d, gaps %v; want 2 and none", v.resets, v.gaps)
	}
	c.check(t)
}

// Redis comes back with fewer events than a relay saw (a failover to a
// replica that missed writes): the relay starts a new epoch rather than
// let seqs be reused for other events.
func TestFollowerCounterBackwards(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	pub := openStore(t, srv, Options{})
	sub := openStore(t, srv, Options{})
	ctx := context.Background()
	c := newCollector()
	f := newFollower(t, sub, c)
	f.Follow("acme")
	c.waitResets(t, "acme", 1)
	r1, err := pub.Append(ctx, "acme", "", bodies(0, 10))
	if err != nil {
		t.Fatal(err)
	}
	c.waitLast(t, "acme", r1.Epoch, r1.Last)
	// Stage the stale replica: the counter back to 3, entries 4.. gone.
	if err := pub.rdb.HSet(ctx, pub.metaKey("acme"), "seq", 3).Err(); err != nil {
		t.Fatal(err)
	}
	if err := pub.rdb.XTrimMinID(ctx, pub.streamKey("acme"), "11-0").Err(); err != nil {
		t.Fatal(err)
	}
	// The failover drops the follower's connection.
	if err := pub.rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	v := c.waitResets(t, "acme", 2)
	if v.epoch == r1.Epoch || v.last != 0 {
		t.Fatalf("after the counter went back: epoch %s last %d; want a new epoch from 0", v.epoch, v.last)
	}
	r2, err := pub.Append(ctx, "acme", "", bodies(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Epoch != v.epoch || r2.First != 1 {
		t.Errorf("append after the new epoch: %+v, want seq 1 in %s", r2, v.epoch)
	}
	c.waitLast(t, "acme", r2.Epoch, r2.Last)
	c.check(t)
}
