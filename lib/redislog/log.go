package redislog

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tl-sh/tl/lib/tlog"
)

// Tuning constants of the tenant logs.
const (
	// retryRead is how soon a subscriber whose history read failed (Redis
	// away) is woken to try again.
	retryRead = time.Second
	// initialCache is a tenant cache's first size; it doubles as it fills.
	initialCache = 64
)

// Broker is one relay's view of the shared logs: a Store to append and
// read, a Follower that feeds the local caches of the tenants this relay's
// subscribers read, and those tenant logs.
type Broker struct {
	s                   *Store
	f                   *Follower
	maxEvents, maxBytes int // bounds of each local cache

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
	b := &Broker{s: s, maxEvents: s.opts.MaxEvents, maxBytes: int(s.opts.MaxBytes), logs: map[string]*Log{}}
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
	l := &Log{b: b, tenant: tenant, notify: make(chan struct{})}
	l.cache.clear(1)
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

// Log is one tenant's log on Redis, a tlog.Log and tlog.SharedAppender. Appends go to Redis;
// reads are served from a local cache of the newest lines, fed in order by
// the broker's follower, and from Redis for older lines.
type Log struct {
	b      *Broker
	tenant string

	followOnce sync.Once // the first read of any kind starts following

	mu        sync.Mutex // guards the fields below; held for no I/O
	following bool
	epoch     string // "" until known
	oldest    uint64 // oldest seq Redis holds, as last seen
	newest    uint64 // newest seq known
	cache     cache  // lines lo..hi, hi <= newest
	notify    chan struct{}
	// prevEpoch and prevNewest are the epoch before the current one and
	// the newest seq known in it, so that a subscriber left behind in it
	// is told exactly which of its seqs it will never get.
	prevEpoch  string
	prevNewest uint64
	retrying   bool // a retry wake-up is scheduled
	closed     bool
}

var (
	_ tlog.Log            = (*Log)(nil)
	_ tlog.SharedAppender = (*Log)(nil)
)

// Append implements tlog.Log.
func (l *Log) Append(bodies [][]byte) (first, last uint64, err error) {
	first, last, _, err = l.AppendShared(bodies, "")
	return first, last, err
}

// AppendShared implements tlog.SharedAppender: one Lua script assigns the
// seqs, appends, remembers the key and publishes, atomically.
func (l *Log) AppendShared(bodies [][]byte, key string) (first, last uint64, epoch string, err error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return 0, 0, "", tlog.ErrClosed
	}
	if len(bodies) == 0 {
		return 0, 0, "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	r, err := l.b.s.Append(ctx, l.tenant, key, bodies)
	if err != nil {
		return 0, 0, "", err
	}
	l.mu.Lock()
	if r.Epoch == l.epoch && r.Last > l.newest {
		// Read your writes: a subscriber arriving now sees these in its
		// hello; its reads wait for the follower to bring the lines.
		l.newest = r.Last
	}
	l.mu.Unlock()
	return r.First, r.Last, r.Epoch, nil
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
	l.cache.clear(newest + 1)
}

// apply takes a follower update. It runs on the follower's goroutine.
func (l *Log) apply(u Update) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
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
		if u.After > l.cache.hi() {
			l.cache.clear(u.After + 1)
		}
	case u.Epoch == l.epoch && u.After > l.cache.hi():
		// Evicted in Redis before we read them: the cache restarts past
		// the hole, and a reader there gets the exact gap from Redis.
		l.cache.clear(u.After + 1)
		l.oldest = max(l.oldest, u.After+1)
	}
	if u.Epoch == l.epoch {
		for _, e := range u.Entries {
			if e.Seq == l.cache.hi()+1 {
				l.cache.push(e.Line, l.b.maxEvents, l.b.maxBytes)
			}
		}
		l.newest = max(l.newest, l.cache.hi())
		// Redis trims as it appends: it holds at least about as many
		// lines as the bound.
		if n := l.newest; n >= uint64(l.b.maxEvents) {
			l.oldest = max(l.oldest, n-uint64(l.b.maxEvents)+1)
		}
	}
	ch := l.notify
	l.notify = make(chan struct{})
	l.mu.Unlock()
	close(ch)
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
	if from >= l.cache.lo || from > l.newest {
		dst, next := l.cache.read(from, dst, maxLines, maxBytes)
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
	return !l.closed && from < l.cache.lo && from <= l.newest
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
// the newest seq this relay knows: if Redis holds less of that epoch, it
// went back in time (a restored snapshot, a stale replica), and the tenant
// starts a new epoch before any of those seqs is given again. The
// subscriber then hears of the new epoch like any other.
func (l *Log) Resume(epoch string, since uint64) {
	l.follow()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	b, err := l.b.s.Verify(ctx, l.tenant, epoch, since)
	if err != nil || b.Absent {
		return
	}
	l.mu.Lock()
	if l.closed || b.Epoch == l.epoch {
		if b.Epoch == l.epoch && b.Last > l.newest {
			l.newest = b.Last // the follower brings the lines
		}
		l.mu.Unlock()
		return
	}
	l.reset(b.Epoch, b.Oldest, b.Last)
	ch := l.notify
	l.notify = make(chan struct{})
	l.mu.Unlock()
	close(ch)
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
	l.cache = cache{}
	close(l.notify)
	l.mu.Unlock()
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

// cache is a ring of the newest lines, lo..hi, bounded by events and
// bytes. Not safe for concurrent use (Log.mu guards it).
type cache struct {
	ring  [][]byte // ring[head] is seq lo
	head  int
	n     int
	lo    uint64
	bytes int
}

func (c *cache) hi() uint64 { return c.lo + uint64(c.n) - 1 }

// clear empties the cache; the next line pushed must be seq lo.
func (c *cache) clear(lo uint64) {
	clear(c.ring)
	c.head, c.n, c.bytes, c.lo = 0, 0, 0, lo
}

// push appends the line of seq hi+1, evicting the oldest to stay within
// maxEvents and maxBytes.
func (c *cache) push(line []byte, maxEvents, maxBytes int) {
	if c.n == len(c.ring) && c.n < maxEvents {
		size := min(max(initialCache, 2*len(c.ring)), maxEvents)
		r := make([][]byte, size)
		k := copy(r, c.ring[c.head:])
		copy(r[k:], c.ring[:c.head])
		c.ring, c.head = r, 0
	}
	for c.n > 0 && (c.n == maxEvents || c.bytes+len(line) > maxBytes) {
		c.bytes -= len(c.ring[c.head])
		c.ring[c.head] = nil
		c.head = (c.head + 1) % len(c.ring)
		c.n--
		c.lo++
	}
	c.ring[(c.head+c.n)%len(c.ring)] = line
	c.n++
	c.bytes += len(line)
}

// read appends lines from seq from (>= lo) on, as tlog.Log.Read does.
func (c *cache) read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64) {
	if c.n == 0 {
		return dst, from
	}
	if from < c.lo {
		from = c.lo
	}
	size, got := 0, 0
	for from <= c.hi() && got < maxLines {
		line := c.ring[(c.head+int(from-c.lo))%len(c.ring)]
		if got > 0 && size+len(line) > maxBytes {
			break
		}
		dst = append(dst, line)
		size += len(line)
		got++
		from++
	}
	return dst, from
}
