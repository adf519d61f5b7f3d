package redislog

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tl-sh/tl/lib/internal/tlog"
)

// Tuning constants of the tenant logs.
const (
	// retryRead is how soon a subscriber whose history read failed (Redis
	// away) is woken to try again.
	retryRead = time.Second
)

// Broker is one relay's view of the shared logs: a Store to append and
// read, a Follower that feeds the local caches of the tenants this relay's
// subscribers read, and those tenant logs.
type Broker struct {
	s                   *Store
	f                   *Follower
	maxEvents, maxBytes int          // bounds of each local cache
	budget              *tlog.Budget // bounds them all together (nil: none)

	mu   sync.Mutex // guards logs
	logs map[string]*Log
}

// NewBroker opens the store and starts the follower. The history bounds
// apply to Redis and to each local cache alike.
func NewBroker(opts Options) (*Broker, error) {
	s, err := Open(opts)
	if err != nil {
		return nil, err
	}
	b := &Broker{s: s, maxEvents: s.opts.MaxEvents, maxBytes: int(s.opts.MaxBytes), budget: opts.Budget, logs: map[string]*Log{}}
	if b.maxBytes <= 0 {
		b.maxBytes = tlog.DefaultMaxBytes
	}
	b.f = s.NewFollower(b.deliver)
	return b, nil
}

// Ready reports whether Redis answered recently.
func (b *Broker) Ready() bool { return b.s.Ready() }

// Store returns the underlying store.
func (b *Broker) Store() *Store { return b.s }

// Close stops the follower and closes the store (the tenant logs should
// be closed first). Safe twice.
func (b *Broker) Close() error {
	b.f.Close()
	return b.s.Close()
}

// Open returns tenant's log. It does no I/O: a log only follows Redis
// once a subscriber reads it. While Redis is unreachable it fails with
// ErrUnavailable, so that the request is answered 503.
func (b *Broker) Open(tenant string) (*Log, error) {
	if !b.s.Ready() {
		return nil, fmt.Errorf("%w: not reachable", ErrUnavailable)
	}
	l := &Log{b: b, tenant: tenant, notify: make(chan struct{}), cache: tlog.NewRing(1)}
	l.acct = b.budget.Join(0, l.evict)
	b.mu.Lock()
	b.logs[tenant] = l
	b.mu.Unlock()
	return l, nil
}

// deliver hands a follower update to its tenant's log.
func (b *Broker) deliver(u Update) {
	b.mu.Lock()
	l := b.logs[u.Tenant]
	b.mu.Unlock()
	if l != nil {
		l.apply(u)
	}
}

// Log is one tenant's log on Redis, a tlog.Log. Appends go to Redis, which
// keeps the Idempotency-Keys;
// reads are served from a local cache of the newest lines, fed in order by
// the broker's follower, and from Redis for older lines.
type Log struct {
	b      *Broker
	tenant string
	acct   *tlog.Account // the cache's share of the relay's memory budget

	followOnce sync.Once // the first read of any kind starts following

	mu        sync.Mutex // guards the fields below; held for no I/O
	following bool
	epoch     string    // "" until known
	oldest    uint64    // oldest seq Redis holds, as last seen
	newest    uint64    // newest seq known
	cache     tlog.Ring // the newest lines, up to newest; each its own copy
	cached    int64     // what the cache holds: its slots and the lines' allocations
	notify    chan struct{}
	// prevEpoch and prevNewest are the epoch before the current one and
	// the newest seq known in it, so that a subscriber left behind in it
	// is told exactly which of its seqs it will never get.
	prevEpoch  string
	prevNewest uint64
	retrying   bool // a retry wake-up is scheduled
	closed     bool
}

var _ tlog.Log = (*Log)(nil)

// Append implements tlog.Log: one Lua script assigns the seqs, appends,
// remembers the key and publishes, atomically, for every relay; so the
// bodies are loaded before the key is known to be new. The epoch is the
// one the seqs belong to, which can change under the relay.
func (l *Log) Append(ctx context.Context, b tlog.Batch) (tlog.Appended, error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return tlog.Appended{}, tlog.ErrClosed
	}
	bodies, err := b.Events()
	if err != nil || len(bodies) == 0 {
		return tlog.Appended{}, err
	}
	if err := ctx.Err(); err != nil {
		return tlog.Appended{}, err
	}
	// Once sent, the script is seen through even if the request goes
	// away: a batch cut off mid-way would leave its outcome unknown.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ioTimeout)
	defer cancel()
	r, err := l.b.s.Append(ctx, l.tenant, b.Key, bodies)
	if err != nil {
		return tlog.Appended{}, err
	}
	l.mu.Lock()
	if r.Epoch == l.epoch && r.Last > l.newest {
		// Read your writes: a subscriber arriving now sees these in its
		// hello; its reads wait for the follower to bring the lines.
		l.newest = r.Last
	}
	l.mu.Unlock()
	return tlog.Appended{First: r.First, Last: r.Last, Epoch: r.Epoch, Replayed: r.Duplicate}, nil
}

// follow starts following Redis on the first read of any kind, and
// learns the epoch and bounds at once so that a subscriber's hello is
// right; concurrent first readers wait for that. l.mu is not held.
func (l *Log) follow() { l.followOnce.Do(l.startFollowing) }

func (l *Log) startFollowing() {
	l.mu.Lock()
	if l.following || l.closed {
		l.mu.Unlock()
		return
	}
	l.following = true
	l.mu.Unlock()
	l.b.f.Follow(l.tenant)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	b, err := l.b.s.Read(ctx, l.tenant, 1, 0)
	if err != nil {
		return // the follower's first update brings it
	}
	l.mu.Lock()
	if l.epoch == "" {
		l.reset(b.Epoch, b.Oldest, b.Last)
	}
	l.mu.Unlock()
}

// reset starts the cache over: epoch, Redis holding oldest..newest. l.mu
// is held.
func (l *Log) reset(epoch string, oldest, newest uint64) {
	if l.epoch != "" && l.epoch != epoch {
		l.prevEpoch, l.prevNewest = l.epoch, l.newest
	}
	l.epoch, l.oldest, l.newest = epoch, oldest, newest
	l.clearCache(newest + 1)
}

// clearCache empties the cache; the next line it takes is seq first. l.mu
// is held.
func (l *Log) clearCache(first uint64) {
	l.cache.Reset(first)
	l.cached = l.cache.SlotBytes()
}

// apply takes a follower update. It runs on the follower's goroutine.
func (l *Log) apply(u Update) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	before := l.cached
	switch {
	case u.Reset && u.Epoch != l.epoch:
		// A new numbering (or the first news): the cache starts at its
		// head; older lines are read from Redis.
		l.reset(u.Epoch, u.Oldest, u.After)
	case u.Reset:
		// The follower starts at the head: lines the cache lacks up to
		// there are read from Redis.
		l.oldest = u.Oldest
		l.newest = max(l.newest, u.After)
		if u.After > l.cache.Newest() {
			l.clearCache(u.After + 1)
		}
	case u.Epoch == l.epoch && u.After > l.cache.Newest():
		// Evicted in Redis before we read them: the cache restarts past
		// the hole, and a reader there gets the exact gap from Redis.
		l.clearCache(u.After + 1)
		l.oldest = max(l.oldest, u.After+1)
	}
	if u.Epoch == l.epoch {
		for _, e := range u.Entries {
			if e.Seq == l.cache.Newest()+1 {
				l.push(e.Line)
			}
		}
		l.newest = max(l.newest, l.cache.Newest())
		// Redis trims as it appends: it holds at least about as many
		// lines as the bound.
		if n := l.newest; n >= uint64(l.b.maxEvents) {
			l.oldest = max(l.oldest, n-uint64(l.b.maxEvents)+1)
		}
	}
	l.acct.Charge(l.cached - before)
	ch := l.notify
	l.notify = make(chan struct{})
	l.mu.Unlock()
	l.acct.Settle() // before the wake-up: readers find the budget kept
	close(ch)
}

// evict gives the relay's memory budget back at least want bytes if it
// can: the cache's oldest lines go, and readers read them from Redis.
func (l *Log) evict(want int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0
	}
	before := l.cached
	for n, _ := l.cache.Len(); before-l.cached < want && n > 0; n-- {
		l.dropped(l.cache.DropOldest())
	}
	slots := l.cache.SlotBytes()
	l.cache.Shrink()
	l.cached += l.cache.SlotBytes() - slots
	freed := before - l.cached
	l.acct.Charge(-freed)
	return freed
}

// Read implements tlog.Log. Lines the cache holds come from it; older ones
// from Redis. A failed Redis read returns no lines and no error (the
// subscriber stays connected) and wakes the reader again after retryRead.
func (l *Log) Read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64, tlog.Gap, error) {
	l.follow()
	if from == 0 {
		from = 1
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return dst, from, tlog.Gap{}, tlog.ErrClosed
	}
	if from >= l.cache.Oldest() || from > l.newest {
		next := from
		if n, _ := l.cache.Len(); n > 0 {
			dst, next = l.cache.Read(from, dst, maxLines, maxBytes)
		}
		l.mu.Unlock()
		return dst, next, tlog.Gap{}, nil
	}
	epoch := l.epoch
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	b, err := l.b.s.Read(ctx, l.tenant, from, maxLines)
	if err != nil || b.Epoch != epoch {
		// Redis is away, or the numbering is changing (the follower's
		// reset will wake the reader): try again later.
		l.retryLater()
		return dst, from, tlog.Gap{}, nil
	}
	var gap tlog.Gap
	next := from
	if len(b.Entries) > 0 && b.Entries[0].Seq > from {
		gap = tlog.Gap{From: from, To: b.Entries[0].Seq - 1}
		next = b.Entries[0].Seq
	} else if len(b.Entries) == 0 && b.Last >= from {
		gap = tlog.Gap{From: from, To: b.Last} // the stream lost them
		next = b.Last + 1
	}
	size := 0
	for i, e := range b.Entries {
		if i > 0 && size+len(e.Line) > maxBytes {
			break
		}
		dst = append(dst, e.Line)
		size += len(e.Line)
		next = e.Seq + 1
	}
	l.mu.Lock()
	if b.Oldest > l.oldest && b.Epoch == l.epoch {
		l.oldest = b.Oldest
	}
	l.mu.Unlock()
	return dst, next, gap, nil
}

// Cold implements tlog.ColdReader: lines older than the cache are read from
// Redis.
func (l *Log) Cold(from uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	from = max(from, 1)
	return !l.closed && from < l.cache.Oldest() && from <= l.newest
}

// retryLater wakes the readers after retryRead, once.
func (l *Log) retryLater() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.retrying || l.closed {
		return
	}
	l.retrying = true
	time.AfterFunc(retryRead, func() {
		l.mu.Lock()
		l.retrying = false
		if l.closed {
			l.mu.Unlock()
			return
		}
		ch := l.notify
		l.notify = make(chan struct{})
		l.mu.Unlock()
		close(ch)
	})
}

// Notify implements tlog.Log.
func (l *Log) Notify() <-chan struct{} {
	l.follow()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.notify
}

// Bounds implements tlog.Log: the oldest seq Redis holds (as last seen)
// and the newest seq known.
func (l *Log) Bounds() (oldest, newest uint64) {
	l.follow()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.oldest == 0 {
		return l.newest + 1, l.newest
	}
	return min(l.oldest, l.newest+1), l.newest
}

// PreviousEpoch returns the epoch the current one replaced and the newest
// seq this relay knew in it ("" if none): the seqs of that epoch past a
// subscriber's cursor up to there existed, and are gone.
func (l *Log) PreviousEpoch() (epoch string, newest uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.prevEpoch, l.prevNewest
}

// Resume is told that a subscriber resumes after seq since in epoch, beyond
// the newest seq this relay knows or in an epoch it does not know: it asks
// Redis, and catches up with the tenant's epoch and newest seq there (a new
// epoch another relay started after Redis lost its data, which the follower
// has not brought yet). If Redis holds less of the subscriber's epoch than
// it saw, it went back in time (a restored snapshot, a stale replica), and
// the tenant starts a new epoch before any of those seqs is given again.
// The subscriber then hears of the new epoch like any other. It fails when
// Redis does not answer.
func (l *Log) Resume(epoch string, since uint64) error {
	l.follow()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	b, err := l.b.s.Verify(ctx, l.tenant, epoch, since)
	if err != nil {
		return err
	}
	if b.Absent {
		return nil
	}
	l.mu.Lock()
	if l.closed || b.Epoch == l.epoch {
		if b.Epoch == l.epoch && b.Last > l.newest {
			l.newest = b.Last // the follower brings the lines
		}
		l.mu.Unlock()
		return nil
	}
	l.reset(b.Epoch, b.Oldest, b.Last)
	ch := l.notify
	l.notify = make(chan struct{})
	l.mu.Unlock()
	close(ch)
	return nil
}

// Epoch implements tlog.Log.
func (l *Log) Epoch() string {
	l.follow()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// Close implements tlog.Log: the relay stops following the tenant. Safe
// twice.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	following := l.following
	l.acct.Charge(-l.cached)
	l.cache, l.cached = tlog.Ring{}, 0
	close(l.notify)
	l.mu.Unlock()
	l.acct.Leave()
	l.b.mu.Lock()
	if l.b.logs[l.tenant] == l {
		delete(l.b.logs, l.tenant)
		if following {
			l.b.f.Unfollow(l.tenant)
		}
		l.b.s.forget(l.tenant)
	}
	l.b.mu.Unlock()
	return nil
}

// push adds the line of seq Newest()+1 to the cache, evicting the oldest
// to stay within the bounds. The line is copied: it arrives in a buffer
// shared with the rest of its message, which a line kept alone would keep
// whole, out of sight of the memory budget. l.mu is held.
func (l *Log) push(line []byte) {
	line = bytes.Clone(line) // its capacity is its allocation's size
	slots := l.cache.SlotBytes()
	l.cache.Push(line, l.b.maxEvents, l.b.maxBytes, l.dropped)
	l.cached += l.cache.SlotBytes() - slots + int64(cap(line))
}

// dropped uncharges a line the cache let go. l.mu is held.
func (l *Log) dropped(line []byte) { l.cached -= int64(cap(line)) }
