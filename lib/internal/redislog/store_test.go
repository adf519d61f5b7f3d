package redislog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/redistest"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 30 * time.Second

func openStore(t *testing.T, srv *redistest.Server, opts Options) *Store {
	t.Helper()
	opts.URL = srv.URL()
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func body(i int) []byte {
	return []byte(fmt.Sprintf(`"tenant_id":"acme","timestamp":1732740000123,"type":"click","path":"/p/%d","metadata":{}}`+"\n", i))
}

func bodies(from, n int) [][]byte {
	var bs [][]byte
	for i := 0; i < n; i++ {
		bs = append(bs, body(from+i))
	}
	return bs
}

func TestAppendAssignsSeqsAndEncodes(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	s := openStore(t, srv, Options{})
	ctx := context.Background()
	tests := []struct {
		tenant string
		n      int
	}{
		{"acme", 1},
		{"acme", 3},
		{"other", 2},
		{"acme", 1},
	}
	next := map[string]uint64{}
	epochs := map[string]string{}
	for _, tt := range tests {
		r, err := s.Append(ctx, tt.tenant, "", bodies(0, tt.n))
		if err != nil {
			t.Fatal(err)
		}
		want := Result{First: next[tt.tenant] + 1, Last: next[tt.tenant] + uint64(tt.n), Epoch: r.Epoch}
		if r != want {
			t.Errorf("append %d to %s: got %+v, want %+v", tt.n, tt.tenant, r, want)
		}
		if e, ok := epochs[tt.tenant]; ok && e != r.Epoch {
			t.Errorf("epoch of %s changed from %q to %q", tt.tenant, e, r.Epoch)
		}
		epochs[tt.tenant] = r.Epoch
		next[tt.tenant] = r.Last
	}
	if epochs["acme"] == epochs["other"] || epochs["acme"] == "" {
		t.Errorf("epochs should be per tenant and non-empty: %v", epochs)
	}
	b, err := s.Read(ctx, "acme", 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if b.Last != next["acme"] || len(b.Entries) != int(next["acme"]) || b.Epoch != epochs["acme"] {
		t.Fatalf("read acme: last %d, %d entries, epoch %q; want %d, %d, %q", b.Last, len(b.Entries), b.Epoch, next["acme"], next["acme"], epochs["acme"])
	}
	for i, e := range b.Entries {
		prefix := []byte(`{"seq":` + strconv.Itoa(i+1) + `,"tenant_id":"acme"`)
		if e.Seq != uint64(i+1) || !bytes.HasPrefix(e.Line, prefix) {
			t.Errorf("entry %d: seq %d line %s", i, e.Seq, e.Line)
		}
	}
}

func TestReadTailAndFrom(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	s := openStore(t, srv, Options{})
	ctx := context.Background()
	if _, err := s.Append(ctx, "acme", "", bodies(0, 10)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		read      func() (Batch, error)
		wantFirst uint64
		wantN     int
	}{
		{"tail 3", func() (Batch, error) { return s.Tail(ctx, "acme", 3) }, 8, 3},
		{"tail 50", func() (Batch, error) { return s.Tail(ctx, "acme", 50) }, 1, 10},
		{"from 4 max 2", func() (Batch, error) { return s.Read(ctx, "acme", 4, 2) }, 4, 2},
		{"from 11", func() (Batch, error) { return s.Read(ctx, "acme", 11, 5) }, 0, 0},
		{"meta only", func() (Batch, error) { return s.Read(ctx, "acme", 1, 0) }, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.read()
			if err != nil {
				t.Fatal(err)
			}
			if b.Last != 10 || len(b.Entries) != tt.wantN {
				t.Fatalf("last %d, %d entries; want 10, %d", b.Last, len(b.Entries), tt.wantN)
			}
			for i, e := range b.Entries {
				if e.Seq != tt.wantFirst+uint64(i) {
					t.Errorf("entry %d has seq %d, want %d", i, e.Seq, tt.wantFirst+uint64(i))
				}
			}
		})
	}
	// A tenant nobody published to still has an epoch, and keeps it.
	b1, err := s.Read(ctx, "fresh", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := s.Read(ctx, "fresh", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Append(ctx, "fresh", "", bodies(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if b1.Epoch == "" || b1.Epoch != b2.Epoch || r.Epoch != b1.Epoch || b1.Last != 0 || r.First != 1 {
		t.Errorf("fresh tenant: epochs %q %q %q, last %d, first %d", b1.Epoch, b2.Epoch, r.Epoch, b1.Last, r.First)
	}
}

func TestIdempotencyKeys(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	// Two stores: two relays sharing the keys.
	a := openStore(t, srv, Options{})
	b := openStore(t, srv, Options{})
	ctx := context.Background()
	first, err := a.Append(ctx, "acme", "k1", bodies(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		store  *Store
		tenant string
		key    string
		n      int
		dup    bool
	}{
		{"same relay repeat", a, "acme", "k1", 3, true},
		{"other relay repeat", b, "acme", "k1", 3, true},
		{"repeat with another body", b, "acme", "k1", 1, true},
		{"new key", b, "acme", "k2", 2, false},
		{"same key other tenant", a, "other", "k1", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.store.Append(ctx, tt.tenant, tt.key, bodies(100, tt.n))
			if err != nil {
				t.Fatal(err)
			}
			if r.Duplicate != tt.dup {
				t.Fatalf("duplicate %v, want %v", r.Duplicate, tt.dup)
			}
			if tt.dup {
				want := first
				want.Duplicate = true
				if r != want {
					t.Errorf("got %+v, want the first answer %+v", r, want)
				}
			}
		})
	}
	bt, err := a.Read(ctx, "acme", 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if bt.Last != 5 || len(bt.Entries) != 5 {
		t.Errorf("acme holds %d entries up to %d; want 5 (3 + 2, repeats publish nothing)", len(bt.Entries), bt.Last)
	}
}

func TestIdempotencyKeyExpires(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	s := openStore(t, srv, Options{IdemTTL: 50 * time.Millisecond})
	ctx := context.Background()
	r1, err := s.Append(ctx, "acme", "k", bodies(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	var r2 Result
	testkit.WaitFor(t, "the key to expire", func() bool {
		r2, err = s.Append(ctx, "acme", "k", bodies(0, 1))
		if err != nil {
			t.Fatal(err)
		}
		return !r2.Duplicate
	})
	if r2.First <= r1.Last {
		t.Errorf("after expiry the batch got seq %d, want above %d", r2.First, r1.Last)
	}
}

// Several relays appending concurrently get one gap-free order, and each
// batch is contiguous in it.
func TestConcurrentAppendsOneOrder(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	const relays, batches, size = 3, 40, 5
	var stores []*Store
	for i := 0; i < relays; i++ {
		stores = append(stores, openStore(t, srv, Options{}))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, relays)
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < batches; j++ {
				bs := make([][]byte, size)
				for k := range bs {
					bs[k] = []byte(fmt.Sprintf(`"r":%d,"b":%d,"k":%d}`+"\n", i, j, k))
				}
				r, err := s.Append(ctx, "acme", "", bs)
				if err != nil {
					errs <- err
					return
				}
				if r.Last-r.First+1 != size {
					errs <- fmt.Errorf("batch got %d..%d", r.First, r.Last)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b, err := stores[0].Read(ctx, "acme", 1, relays*batches*size+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Entries) != relays*batches*size {
		t.Fatalf("got %d entries, want %d", len(b.Entries), relays*batches*size)
	}
	for i, e := range b.Entries {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		// Within a batch, k runs 0..size-1 in order.
		want := fmt.Sprintf(`"k":%d}`+"\n", i%size)
		if !bytes.HasSuffix(e.Line, []byte(want)) {
			t.Fatalf("entry %d (%s) breaks its batch: want suffix %s", i, e.Line, want)
		}
	}
}

func TestHistoryBounds(t *testing.T) {
	// Trimming is approximate (MAXLEN ~ drops whole stream nodes of up to
	// stream-node-max-entries = 100 entries), so a bound of B keeps
	// between B and B+100 entries.
	const node = 100
	line := len(`{"seq":1000,`) + len(body(1000))
	tests := []struct {
		name    string
		opts    Options
		publish int
		bound   int
	}{
		{"events", Options{MaxEvents: 300}, 2000, 300},
		{"bytes", Options{MaxEvents: 100000, MaxBytes: int64(250 * line)}, 2000, 250},
		{"events under bytes", Options{MaxEvents: 200, MaxBytes: int64(5000 * line)}, 2000, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.New(t, redistest.Options{})
			s := openStore(t, srv, tt.opts)
			ctx := context.Background()
			for i := 0; i < tt.publish; i += 100 {
				if _, err := s.Append(ctx, "acme", "", bodies(1000+i, 100)); err != nil {
					t.Fatal(err)
				}
			}
			b, err := s.Read(ctx, "acme", 1, tt.publish)
			if err != nil {
				t.Fatal(err)
			}
			n := len(b.Entries)
			// Lines vary a little in size, so allow the byte bound 10%.
			if n < tt.bound*9/10 || n > tt.bound+node {
				t.Errorf("history holds %d entries, want about %d (at most %d)", n, tt.bound, tt.bound+node)
			}
			if b.Entries[n-1].Seq != uint64(tt.publish) || b.Entries[0].Seq != uint64(tt.publish-n+1) {
				t.Errorf("history runs %d..%d, want the newest %d up to %d", b.Entries[0].Seq, b.Entries[n-1].Seq, n, tt.publish)
			}
		})
	}
}

// Redis restarted without persistence: the numbering restarts under a new
// epoch. With persistence: nothing changes.
func TestRestartEpoch(t *testing.T) {
	tests := []struct {
		name      string
		persist   bool
		sameEpoch bool
	}{
		{"without persistence", false, false},
		{"with persistence", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.New(t, redistest.Options{Persist: tt.persist})
			s := openStore(t, srv, Options{})
			ctx := context.Background()
			r1, err := s.Append(ctx, "acme", "", bodies(0, 5))
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, "readiness", s.Ready)
			var r2 Result
			testkit.WaitFor(t, "an append to succeed", func() bool {
				r2, err = s.Append(ctx, "acme", "", bodies(0, 1))
				return err == nil
			})
			if (r2.Epoch == r1.Epoch) != tt.sameEpoch {
				t.Errorf("epoch %q then %q; same = %v, want %v", r1.Epoch, r2.Epoch, r2.Epoch == r1.Epoch, tt.sameEpoch)
			}
			wantFirst := uint64(1)
			if tt.sameEpoch {
				wantFirst = r1.Last + 1
			}
			if r2.First != wantFirst {
				t.Errorf("after restart the first seq is %d, want %d", r2.First, wantFirst)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	srv := redistest.New(t, redistest.Options{Persist: true})
	s := openStore(t, srv, Options{})
	ctx := context.Background()
	if !s.Ready() {
		t.Fatal("not ready next to a running redis")
	}
	r1, err := s.Append(ctx, "acme", "", bodies(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	testkit.WaitFor(t, "readiness to drop", func() bool { return !s.Ready() })
	for _, fn := range []func() error{
		func() error { _, err := s.Append(ctx, "acme", "", bodies(0, 1)); return err },
		func() error { _, err := s.Read(ctx, "acme", 1, 10); return err },
		func() error { return s.Ping(ctx) },
	} {
		if err := fn(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("got %v, want ErrUnavailable", err)
		}
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "readiness to return", s.Ready)
	r2, err := s.Append(ctx, "acme", "", bodies(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing was half-published while Redis was away.
	if r2.First != r1.Last+1 || r2.Epoch != r1.Epoch {
		t.Errorf("after the outage: %+v, want seq %d in epoch %s", r2, r1.Last+1, r1.Epoch)
	}
}

func TestOpenBadURL(t *testing.T) {
	for _, u := range []string{"", "http://x", "redis://127.0.0.1:1/notadb"} {
		if _, err := Open(Options{URL: u}); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

// TestOpenBadURLHidesPassword: an error about a URL that does not parse
// never repeats the URL, which may hold a password.
func TestOpenBadURLHidesPassword(t *testing.T) {
	const pw = "s3cretpw"
	for _, u := range []string{
		"redis://:" + pw + "@127.0.0.1:6379x/0",     // bad port
		"redis://:" + pw + "%zz@127.0.0.1:6379/0",   // bad escape in the password
		"redis://:" + pw + "@exa mple.com:6379/0",   // bad host
		"redis://:" + pw + "\x7f@127.0.0.1:6379/0",  // control character
		"redis://:" + pw + "@127.0.0.1:6379/notadb", // go-redis's own check
		"redis://:" + pw + "@[::1:6379/0",           // bad IPv6 literal
	} {
		_, err := Open(Options{URL: u})
		if err == nil {
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "%zz") {
			t.Errorf("Open(%q): error %q shows the password", u, err)
		}
	}
}

// TestOpenRefused: a wrong or missing password, or a database the server
// does not have, fails Open with ErrRefused (not an endless "unreachable");
// the right ones work.
func TestOpenRefused(t *testing.T) {
	const pw = "right-pass-0123"
	srv := redistest.New(t, redistest.Options{Password: pw})
	for _, tt := range []struct {
		name, url string
		refused   bool
	}{
		{"no password", "redis://" + srv.Addr() + "/0", true},
		{"wrong password", "redis://:wrong-pass-0123@" + srv.Addr() + "/0", true},
		{"wrong user", "redis://nobody:" + pw + "@" + srv.Addr() + "/0", true},
		{"database out of range", "redis://:" + pw + "@" + srv.Addr() + "/999", true},
		{"right password", srv.URL(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs testkit.SyncBuffer
			s, err := Open(Options{URL: tt.url, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if !tt.refused {
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if !s.Ready() {
					t.Error("not ready with the right password")
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrRefused) || errors.Is(err, ErrUnavailable) {
				t.Errorf("err = %v, want ErrRefused", err)
			}
			if strings.Contains(err.Error(), "wrong-pass") || strings.Contains(err.Error(), pw) || strings.Contains(logs.String(), "pass-0123") {
				t.Errorf("the password shows: err %q, log %q", err, logs.String())
			}
		})
	}
}

// TestHealthLogged: readiness changes are logged with their reason, once
// per downLogPeriod while Redis stays away, and the return is logged too.
func TestHealthLogged(t *testing.T) {
	const pw = "right-pass-0123"
	srv := redistest.New(t, redistest.Options{Password: pw})
	var logs testkit.SyncBuffer
	start := time.Now()
	s := openStore(t, srv, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !s.Ready() || logs.String() != "" {
		t.Fatalf("ready %v, log %q next to a healthy redis", s.Ready(), logs.String())
	}
	srv.Stop()
	testkit.WaitFor(t, "the outage in the log", func() bool { return strings.Contains(logs.String(), "broker unreachable") })
	// A few more health checks fail before the restart.
	for i := 0; i < 3; i++ {
		s.Ping(context.Background())
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the return in the log", func() bool { return strings.Contains(logs.String(), "broker reachable again") })
	out := logs.String()
	if !strings.Contains(out, " err=") || strings.Contains(out, pw) {
		t.Errorf("log %q: want the reason, not the password", out)
	}
	if n, most := strings.Count(out, "broker unreachable"), 1+int(time.Since(start)/downLogPeriod); n > most {
		t.Errorf("%d unreachable lines, want at most %d:\n%s", n, most, out)
	}
}
