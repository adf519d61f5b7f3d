package redislog

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tuning constants of the follower.
const (
	// catchupCount caps the entries one catch-up read returns per tenant;
	// a longer backlog takes several rounds.
	catchupCount = 1024
	// catchupChunk is how many tenants one pipelined catch-up carries.
	catchupChunk = 256
	// subscribeChunk is how many channels one SUBSCRIBE names when a
	// session (re)subscribes everything.
	subscribeChunk = 1000
	// receiveWait is how long the follower waits for a message before
	// pinging; a second silent wait means the connection is dead.
	receiveWait = 5 * time.Second
	// backoffBase and backoffCap bound the reconnect backoff (full jitter).
	backoffBase = 50 * time.Millisecond
	backoffCap  = 2 * time.Second
)

// Update is what a Follower hands over for one tenant, in order.
type Update struct {
	Tenant string
	Epoch  string
	// Reset says the tenant's numbering (re)starts in Epoch: forget what
	// is held for it. It comes first for every followed tenant, and again
	// whenever the epoch changes (the seqs of the old epoch after the
	// last one delivered are lost), with After = the newest seq of Epoch:
	// following goes on from its head, and what the epoch holds up to
	// there is read from Redis.
	Reset bool
	// Oldest is, with Reset, the oldest seq Redis holds.
	Oldest uint64
	// After is the seq the entries follow: Entries[0].Seq == After+1.
	// Without Reset, seqs between the last one delivered and After were
	// evicted from the history before the follower could read them.
	After   uint64
	Entries []Entry
}

// followed is the follower's state for one tenant.
type followed struct {
	epoch      string // "" until the first catch-up: start from the head
	last       uint64 // newest seq delivered
	run        string // the Redis process of the last catch-up read: the one publishing on this session
	subscribed bool   // the session's SUBSCRIBE is confirmed
	synced     bool   // caught up: messages continue from last
}

// Follower follows a changing set of tenants for one relay: it subscribes
// to their channels on one Pub/Sub connection, hands each batch to deliver
// in seq order, and reads the streams to catch up wherever the channel
// cannot be trusted (just subscribed, reconnected, a hole in the seqs, a
// new epoch). When Redis is unreachable it retries with backoff and, once
// back, continues every tenant from its last seq: no loss, or an Update
// saying exactly what is gone.
type Follower struct {
	s       *Store
	deliver func(Update)

	mu      sync.Mutex // guards tenants, stale, pending, ps
	tenants map[string]*followed
	stale   map[string]struct{} // subscribed tenants that need a catch-up read
	pending map[string]bool     // subscriptions to change: true subscribe, false unsubscribe
	ps      *redis.PubSub       // the session's connection, nil between sessions

	wake      chan struct{} // nudges the changer (capacity 1)
	stop      chan struct{} // closed by Close
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewFollower starts a follower that calls deliver (from its own
// goroutine, one call at a time) with what it reads. deliver must not
// block for long: it holds up every followed tenant.
func (s *Store) NewFollower(deliver func(Update)) *Follower {
	f := &Follower{
		s:       s,
		deliver: deliver,
		tenants: map[string]*followed{},
		stale:   map[string]struct{}{},
		pending: map[string]bool{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	f.wg.Add(2)
	go f.run()
	go f.changer()
	return f
}

// Follow starts following tenant from its current head: the first Update
// is a Reset with the epoch and newest seq. Following a followed tenant
// does nothing. It does no I/O.
func (f *Follower) Follow(tenant string) {
	f.mu.Lock()
	if _, ok := f.tenants[tenant]; ok {
		f.mu.Unlock()
		return
	}
	f.tenants[tenant] = &followed{}
	f.pending[tenant] = true
	f.mu.Unlock()
	f.nudge()
}

// Unfollow stops following tenant: nothing more is delivered for it
// (except possibly an Update already being handed over).
func (f *Follower) Unfollow(tenant string) {
	f.mu.Lock()
	if _, ok := f.tenants[tenant]; !ok {
		f.mu.Unlock()
		return
	}
	delete(f.tenants, tenant)
	delete(f.stale, tenant)
	f.pending[tenant] = false
	f.mu.Unlock()
	f.nudge()
}

// Len returns the number of followed tenants.
func (f *Follower) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tenants)
}

// Close stops the follower and waits for its goroutines. Safe twice.
func (f *Follower) Close() {
	f.closeOnce.Do(func() {
		close(f.stop)
		f.mu.Lock()
		ps := f.ps
		f.mu.Unlock()
		if ps != nil {
			ps.Close() // ends a blocked Receive
		}
		f.wg.Wait()
	})
}

func (f *Follower) stopped() bool {
	select {
	case <-f.stop:
		return true
	default:
		return false
	}
}

func (f *Follower) nudge() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// changer sends the pending SUBSCRIBE and UNSUBSCRIBE commands on the
// session's connection, batching whatever piled up meanwhile, so that
// Follow and Unfollow never wait on Redis. A failure is left to the
// session, which resubscribes everything when it reconnects.
func (f *Follower) changer() {
	defer f.wg.Done()
	for {
		select {
		case <-f.stop:
			return
		case <-f.wake:
		}
		f.mu.Lock()
		ps := f.ps
		var sub, unsub []string
		if ps != nil {
			for t, on := range f.pending {
				if on {
					sub = append(sub, f.s.channel(t))
				} else {
					unsub = append(unsub, f.s.channel(t))
				}
			}
			clear(f.pending)
		}
		f.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		if len(unsub) > 0 {
			ps.Unsubscribe(ctx, unsub...)
		}
		if len(sub) > 0 {
			ps.Subscribe(ctx, sub...)
		}
		cancel()
	}
}

// run keeps a session going until Close, reconnecting with backoff.
func (f *Follower) run() {
	defer f.wg.Done()
	for attempt := 0; ; attempt++ {
		if f.stopped() {
			return
		}
		progressed, err := f.session()
		if f.stopped() {
			return
		}
		if err != nil {
			f.s.unavailable(err)
		}
		if progressed {
			attempt = 0
		}
		d := min(backoffCap, backoffBase<<min(attempt, 10))
		select {
		case <-f.stop:
			return
		case <-time.After(rand.N(d) + time.Millisecond):
		}
	}
}

// session subscribes every followed tenant on a new connection and
// follows until an error. progressed says whether it got a message, to
// reset the backoff.
func (f *Follower) session() (progressed bool, err error) {
	ctx := context.Background()
	ps := f.s.rdb.Subscribe(ctx)
	defer ps.Close()
	f.mu.Lock()
	if f.stopped() {
		f.mu.Unlock()
		return false, nil
	}
	f.ps = ps
	clear(f.pending) // everything is subscribed below
	clear(f.stale)
	var chans []string
	for t, st := range f.tenants {
		st.subscribed, st.synced = false, false
		chans = append(chans, f.s.channel(t))
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.ps = nil
		f.mu.Unlock()
	}()
	// A channel-less SUBSCRIBE is refused, and go-redis only connects on
	// its first command: ping so that an unreachable Redis shows here.
	if err := ps.Ping(ctx); err != nil {
		return false, err
	}
	for len(chans) > 0 {
		n := min(len(chans), subscribeChunk)
		if err := ps.Subscribe(ctx, chans[:n]...); err != nil {
			return false, err
		}
		chans = chans[n:]
	}
	pinged := false
	for {
		if f.stopped() {
			return progressed, nil
		}
		msg, err := ps.ReceiveTimeout(ctx, receiveWait)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				// Quiet: make sure the connection still works.
				pinged = true
				if err := ps.Ping(ctx); err != nil {
					return progressed, err
				}
				continue
			}
			return progressed, err
		}
		pinged = false
		progressed = true
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				f.mu.Lock()
				if st, ok := f.tenants[f.s.tenantOf(m.Channel)]; ok {
					// From now on the channel carries every batch; read
					// the stream for what came before.
					st.subscribed, st.synced = true, false
					f.stale[f.s.tenantOf(m.Channel)] = struct{}{}
				}
				f.mu.Unlock()
			}
		case *redis.Message:
			f.handle(m)
		case *redis.Pong:
			f.s.ready.Store(true)
		}
		if err := f.catchUp(ctx); err != nil {
			return progressed, err
		}
	}
}

// handle delivers one published batch, if it continues the tenant's
// lines; a batch from another epoch or past a hole sends the tenant to
// catch-up, which reports exactly what changed or is gone.
func (f *Follower) handle(m *redis.Message) {
	t := f.s.tenantOf(m.Channel)
	head, rest, ok := cutByte(m.Payload, '\n')
	if t == "" || !ok {
		return
	}
	epoch, firstS, _ := cutByte(head, ' ')
	first, err := strconv.ParseUint(firstS, 10, 64)
	if err != nil {
		return
	}
	f.mu.Lock()
	st, ok := f.tenants[t]
	if !ok || !st.synced {
		f.mu.Unlock()
		return // catch-up reads these lines from the stream
	}
	if epoch != st.epoch || first > st.last+1 {
		// Another epoch, or a batch went missing.
		st.synced = false
		f.stale[t] = struct{}{}
		f.mu.Unlock()
		return
	}
	u := Update{Tenant: t, Epoch: epoch, After: st.last}
	seq := first
	data := []byte(rest)
	for len(data) > 0 {
		line := data // each line ends with its newline
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		if seq > st.last {
			u.Entries = append(u.Entries, Entry{Seq: seq, Line: line})
		}
		seq++
	}
	if n := len(u.Entries); n > 0 {
		st.last = u.Entries[n-1].Seq
	}
	last, run := st.last, st.run
	f.mu.Unlock()
	if len(u.Entries) > 0 {
		f.s.observe(t, epoch, last, run, false)
		f.deliver(u)
	}
}

func cutByte(s string, c byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// catchUp reads the stream of every subscribed tenant that is not synced,
// pipelined in chunks, and delivers what it finds.
func (f *Follower) catchUp(ctx context.Context) error {
	loaded := false
	for {
		type job struct {
			tenant string
			st     followed
			cmd    *redis.Cmd
		}
		var jobs []job
		f.mu.Lock()
		for t := range f.stale {
			st, ok := f.tenants[t]
			if !ok || !st.subscribed || st.synced {
				delete(f.stale, t)
				continue
			}
			jobs = append(jobs, job{tenant: t, st: *st})
			if len(jobs) == catchupChunk {
				break
			}
		}
		f.mu.Unlock()
		if len(jobs) == 0 {
			return nil
		}
		if !loaded {
			// EVALSHA in a pipeline cannot fall back to EVAL.
			if err := readScript.Load(ctx, f.s.rdb).Err(); err != nil {
				return err
			}
			loaded = true
		}
		pipe := f.s.rdb.Pipeline()
		for i := range jobs {
			j := &jobs[i]
			count := catchupCount
			if j.st.epoch == "" {
				count = 0 // from the head: only the epoch and newest seq
			}
			j.cmd = readScript.EvalSha(ctx, pipe, f.s.readKeys(j.tenant), f.s.readArgs(j.tenant, j.st.last+1, count, "")...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for _, j := range jobs {
			v, err := j.cmd.Slice()
			if err != nil {
				return err
			}
			b, err := f.s.parseBatch(j.tenant, v)
			if err != nil {
				return err
			}
			if err := f.apply(ctx, j.tenant, j.st, b); err != nil {
				return err
			}
		}
	}
}

// apply turns one catch-up read, made from state from, into an Update and
// the tenant's new state.
func (f *Follower) apply(ctx context.Context, tenant string, from followed, b Batch) error {
	u := Update{Tenant: tenant, Epoch: b.Epoch, Oldest: b.Oldest}
	switch {
	case from.epoch == "":
		// Start from the head.
		u.Reset, u.After = true, b.Last
		b.Entries = nil
	case b.Epoch == from.epoch && b.Last < from.last:
		// The counter went backwards in the same epoch: Redis lost
		// writes this relay saw. The read checked the store's mark and
		// would have started a new epoch; the mark must have been
		// forgotten (maxMarks). Remember what the follower saw: the next
		// round's read starts the new epoch.
		f.s.observe(tenant, from.epoch, from.last, "", true)
		return nil
	case b.Epoch != from.epoch:
		// A new numbering: what the old epoch had after from.last is
		// lost. Start from the new one's head, as when following starts
		// (so the Update says how many it holds); the relay's
		// subscribers read it from its oldest line.
		u.Reset, u.After = true, b.Last
		b.Entries = nil
	default:
		// Same epoch: continue; entries may start past a hole.
		u.After = from.last
		if len(b.Entries) > 0 {
			u.After = b.Entries[0].Seq - 1
		} else if b.Last > from.last {
			u.After = b.Last // all of it evicted (or the stream lost)
		}
	}
	u.Entries = b.Entries
	f.mu.Lock()
	st, ok := f.tenants[tenant]
	if !ok || *st != from {
		// Unfollowed, resubscribed or changed meanwhile: drop this read.
		f.mu.Unlock()
		return nil
	}
	st.epoch, st.run = b.Epoch, b.Run
	st.last = u.After
	if n := len(u.Entries); n > 0 {
		st.last = u.Entries[n-1].Seq
	}
	// Synced once the stream has nothing newer; a longer backlog takes
	// another round.
	st.synced = st.last >= b.Last
	if st.synced {
		delete(f.stale, tenant)
	}
	f.mu.Unlock()
	if u.Reset || len(u.Entries) > 0 || u.After > from.last {
		f.deliver(u)
	}
	return nil
}
