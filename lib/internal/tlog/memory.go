package tlog

import (
	"context"
	"slices"
	"sync"

	"github.com/tl-sh/tl/lib/event"
)

// Defaults for the memory log, sized so that a tail reconnecting within a
// minute at 500 events/s (30,000 events of ~200 bytes, ~6 MB) loses nothing,
// with room to spare for bursts.
const (
	DefaultMaxEvents = 100_000
	DefaultMaxBytes  = 64 << 20
)

// SeqOverhead is the most a delivered line adds to its body:
// `{"seq":` + 20 digits + `,`. A backing sizes its buffers with it.
const SeqOverhead = len(`{"seq":`) + 20 + 1

// Memory's charges to a Budget: what it holds is the buffers its lines
// live in (a line is freed only with the rest of its buffer) and its ring.
const (
	// blockBytes bounds the buffers an Append encodes into: a budget frees
	// a buffer's lines together, so a huge batch is evicted a block at a
	// time, oldest first, rather than kept or lost whole.
	blockBytes = 256 << 10
	// blockOverhead is a block's entry in the queue of blocks (16 bytes,
	// in a slice that may be twice as long as the blocks it holds).
	blockOverhead = 32
	// logOverhead is the log itself: the Memory, its Account, its
	// notify channel and epoch.
	logOverhead = 512
)

// Memory is the default Log: a ring of delivered lines in memory, bounded by
// a number of events and of bytes, and by a relay-wide Budget when it has
// one, with the recent Idempotency-Keys of its batches. The lines of one
// Append live in one buffer (or a few of blockBytes for a large batch), so
// the memory held can exceed the byte bound by at most one partly evicted
// buffer; a budget is charged for whole buffers.
type Memory struct {
	maxEvents int
	maxBytes  int
	epoch     string
	acct      *Account // nil without a budget
	keys      *Keys    // nil for a data directory's hot cache

	mu     sync.Mutex // guards every field below; held for no I/O
	ring   Ring
	blocks []block // the buffers the held lines live in, oldest first from bhead
	bhead  int
	held   int64 // bytes charged to acct: logOverhead, blocks and ring slots
	notify chan struct{}
	closed bool
}

// block is a buffer of consecutive lines, ending with seq last.
type block struct {
	last uint64
	size int64
}

// NewMemory returns an empty memory log with a fresh epoch, keeping at most
// maxEvents lines and maxBytes bytes of lines (<= 0 selects the defaults).
func NewMemory(maxEvents, maxBytes int) *Memory {
	return NewMemoryIn(nil, maxEvents, maxBytes)
}

// NewMemoryIn is NewMemory charging budget b (nil: none) for what the log
// and its keys hold: over it, the log gives back its oldest lines when it is
// among the largest holders, and readers get a gap for them.
func NewMemoryIn(b *Budget, maxEvents, maxBytes int) *Memory {
	m := NewCache(b, maxEvents, maxBytes, event.NewEpoch(), 1)
	m.keys = NewKeys(b)
	return m
}

// NewCache returns a memory log without keys, in epoch, whose first line
// is seq first, filled by Feed rather than Append: the hot cache of a
// backing that numbers and keeps the lines itself (a data directory), bounded
// like NewMemoryIn's log.
func NewCache(b *Budget, maxEvents, maxBytes int, epoch string, first uint64) *Memory {
	if maxEvents <= 0 {
		maxEvents = DefaultMaxEvents
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	m := &Memory{
		maxEvents: maxEvents,
		maxBytes:  maxBytes,
		epoch:     epoch,
		ring:      NewRing(first),
		notify:    make(chan struct{}),
	}
	m.acct = b.Join(logOverhead, m.evict)
	m.held = logOverhead
	return m
}

// Append implements Log.
func (m *Memory) Append(ctx context.Context, b Batch) (Appended, error) {
	return m.keys.Append(ctx, b, m.append)
}

// append appends bodies, as Append does without a key.
func (m *Memory) append(bodies [][]byte) (Appended, error) {
	if len(bodies) == 0 {
		return Appended{Epoch: m.epoch}, nil
	}
	// The buffers, allocated outside the lock (they may be large): one
	// for most batches, blocks of about blockBytes for a large one, cut
	// before bodies[cuts[i]].
	var cutsArr [4]int
	var bufsArr [1][]byte
	cuts, bufs := cutsArr[:0], bufsArr[:0]
	size := 0
	for i, b := range bodies {
		n := len(b) + SeqOverhead
		if size > 0 && size+n > blockBytes {
			bufs = append(bufs, alloc(size))
			cuts = append(cuts, i)
			size = 0
		}
		size += n
	}
	bufs = append(bufs, alloc(size))
	cuts = append(cuts, len(bodies))

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Appended{}, ErrClosed
	}
	before := m.held
	first := m.ring.Newest() + 1
	i := 0
	for k, buf := range bufs {
		for ; i < cuts[k]; i++ {
			start := len(buf)
			buf = event.AppendDelivery(buf, first+uint64(i), bodies[i])
			m.push(buf[start:len(buf):len(buf)])
		}
		m.addBlock(first+uint64(i)-1, cap(buf))
	}
	m.acct.Charge(m.held - before)
	ch := m.notify
	m.notify = make(chan struct{})
	m.mu.Unlock()

	close(ch)
	m.acct.Settle()
	return Appended{First: first, Last: first + uint64(len(bodies)) - 1, Epoch: m.epoch}, nil
}

// alloc returns an empty buffer of at least size bytes whose capacity is
// what the allocator gave (its size class), so that charging the capacity
// charges the memory.
func alloc(size int) []byte { return slices.Grow([]byte(nil), size) }

// Feed appends lines already delivered (seq first on), which share one
// buffer of size bytes (charged to the budget whole), and wakes the
// readers: how a backing fills the cache NewCache made. Lines that do not
// follow the newest held restart the cache at first.
func (m *Memory) Feed(first uint64, lines [][]byte, size int) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	before := m.held
	if m.ring.Newest()+1 != first {
		m.reset(first)
	}
	for _, line := range lines {
		m.push(line)
	}
	m.addBlock(first+uint64(len(lines))-1, size)
	m.acct.Charge(m.held - before)
	ch := m.notify
	m.notify = make(chan struct{})
	m.mu.Unlock()
	close(ch)
	m.acct.Settle()
}

// reset empties the log; the next line is seq first. m.mu is held.
func (m *Memory) reset(first uint64) {
	m.ring.Reset(first)
	for _, b := range m.blocks[m.bhead:] {
		m.held -= b.size
	}
	m.blocks, m.bhead = m.blocks[:0], 0
}

// push appends line as the newest, evicting the oldest lines to stay within
// the bounds. m.mu is held.
func (m *Memory) push(line []byte) {
	slots, oldest := m.ring.SlotBytes(), m.ring.Oldest()
	m.ring.Push(line, m.maxEvents, m.maxBytes, nil)
	m.held += m.ring.SlotBytes() - slots
	if m.ring.Oldest() != oldest {
		m.dropBlocks()
	}
}

// addBlock records the buffer (of size bytes) holding the lines up to seq
// last. m.mu is held.
func (m *Memory) addBlock(last uint64, size int) {
	b := block{last: last, size: int64(size) + blockOverhead}
	m.blocks = append(m.blocks, b)
	m.held += b.size
}

// dropBlocks forgets the blocks none of whose lines is held any more. m.mu
// is held.
func (m *Memory) dropBlocks() {
	for m.bhead < len(m.blocks) && m.blocks[m.bhead].last < m.ring.Oldest() {
		m.held -= m.blocks[m.bhead].size
		m.bhead++
	}
	if m.bhead == len(m.blocks) {
		m.blocks, m.bhead = m.blocks[:0], 0
	} else if m.bhead > 64 && m.bhead > len(m.blocks)/2 {
		m.blocks = append(m.blocks[:0], m.blocks[m.bhead:]...)
		m.bhead = 0
	}
}

// evict gives the budget back at least want bytes if it can: the oldest
// blocks go whole, and the ring shrinks when most of it is empty.
func (m *Memory) evict(want int64) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0
	}
	before := m.held
	for before-m.held < want && m.bhead < len(m.blocks) {
		last := m.blocks[m.bhead].last
		for n, _ := m.ring.Len(); n > 0 && m.ring.Oldest() <= last; n-- {
			m.ring.DropOldest()
		}
		m.dropBlocks()
	}
	slots := m.ring.SlotBytes()
	m.ring.Shrink() // all gone: so is the ring, until the next append
	m.held += m.ring.SlotBytes() - slots
	freed := before - m.held
	m.acct.Charge(-freed)
	return freed
}

// Read implements Log.
func (m *Memory) Read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64, Gap, error) {
	var gap Gap
	if from == 0 {
		from = 1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return dst, from, gap, ErrClosed
	}
	if oldest := m.ring.Oldest(); from < oldest {
		gap = Gap{From: from, To: oldest - 1}
	}
	dst, from = m.ring.Read(from, dst, maxLines, maxBytes)
	return dst, from, gap, nil
}

// Notify implements Log.
func (m *Memory) Notify() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.notify
}

// Bounds implements Log.
func (m *Memory) Bounds() (oldest, newest uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ring.Oldest(), m.ring.Newest()
}

// Epoch implements Log.
func (m *Memory) Epoch() string { return m.epoch }

// Held returns the bytes charged to the budget: the buffers of the lines
// held and the ring.
func (m *Memory) Held() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held
}

// Len returns the number of lines and bytes held.
func (m *Memory) Len() (lines, bytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ring.Len()
}

// Close implements Log: it drops the lines and wakes every waiter.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.ring, m.blocks = NewRing(m.ring.Oldest()), nil
	m.acct.Charge(logOverhead - m.held) // Leave gives back the fixed part
	m.held = 0
	close(m.notify)
	m.mu.Unlock()
	m.acct.Leave()
	if m.keys != nil {
		m.keys.Close()
	}
	return nil
}
