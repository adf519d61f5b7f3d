package tlog

import (
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

// initialRing is the ring's first size: most tenants are small, so the ring
// starts small and doubles up to its event limit as it fills.
const initialRing = 64

// seqOverhead is the most a delivered line adds to its body:
// `{"seq":` + 20 digits + `,`.
const seqOverhead = len(`{"seq":`) + 20 + 1

// Memory's charges to a Budget: what it holds is the buffers its lines
// live in (a line is freed only with the rest of its buffer) and its ring.
const (
	// blockBytes bounds the buffers an Append encodes into: a budget frees
	// a buffer's lines together, so a huge batch is evicted a block at a
	// time, oldest first, rather than kept or lost whole.
	blockBytes = 256 << 10
	// slotBytes is a ring slot (a slice header), held used or not.
	slotBytes = 24
	// blockOverhead is a block's entry in the queue of blocks (16 bytes,
	// in a slice that may be twice as long as the blocks it holds).
	blockOverhead = 32
	// logOverhead is the log itself: the Memory, its Account, its
	// notify channel and epoch.
	logOverhead = 512
)

// Memory is the default Log: a ring of delivered lines in memory, bounded by
// a number of events and of bytes, and by a relay-wide Budget when it has
// one. The lines of one Append live in one buffer (or a few of blockBytes
// for a large batch), so the memory held can exceed the byte bound by at
// most one partly evicted buffer; a budget is charged for whole buffers.
type Memory struct {
	maxEvents int
	maxBytes  int
	epoch     string
	acct      *Account // nil without a budget

	mu     sync.Mutex // guards every field below; held for no I/O
	ring   [][]byte   // ring[head] is seq oldest; grows by doubling
	head   int
	n      int     // lines held
	oldest uint64  // seq of ring[head]; newest is oldest+n-1
	bytes  int     // sum of the held lines' lengths
	blocks []block // the buffers the held lines live in, oldest first from bhead
	bhead  int
	held   int64 // bytes charged to acct: blocks and ring slots
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
// holds: over it, the log gives back its oldest lines when it is among the
// largest holders, and readers get a gap for them.
func NewMemoryIn(b *Budget, maxEvents, maxBytes int) *Memory {
	if maxEvents <= 0 {
		maxEvents = DefaultMaxEvents
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	m := &Memory{
		maxEvents: maxEvents,
		maxBytes:  maxBytes,
		epoch:     NewEpoch(),
		oldest:    1,
		notify:    make(chan struct{}),
	}
	m.acct = b.Join(logOverhead, m.evict)
	m.held = logOverhead
	return m
}

// Append implements Log.
func (m *Memory) Append(bodies [][]byte) (first, last uint64, err error) {
	if len(bodies) == 0 {
		return 0, 0, nil
	}
	// The buffers, allocated outside the lock (they may be large): one
	// for most batches, blocks of about blockBytes for a large one, cut
	// before bodies[cuts[i]].
	var cutsArr [4]int
	var bufsArr [1][]byte
	cuts, bufs := cutsArr[:0], bufsArr[:0]
	size := 0
	for i, b := range bodies {
		n := len(b) + seqOverhead
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
		return 0, 0, ErrClosed
	}
	before := m.held
	first = m.oldest + uint64(m.n)
	i := 0
	for k, buf := range bufs {
		for ; i < cuts[k]; i++ {
			start := len(buf)
			buf = event.AppendDelivery(buf, first+uint64(i), bodies[i])
			m.push(buf[start:len(buf):len(buf)])
		}
		m.addBlock(first+uint64(i)-1, cap(buf))
	}
	last = first + uint64(len(bodies)) - 1
	m.acct.Charge(m.held - before)
	ch := m.notify
	m.notify = make(chan struct{})
	m.mu.Unlock()

	close(ch)
	m.acct.Settle()
	return first, last, nil
}

// alloc returns an empty buffer of at least size bytes whose capacity is
// what the allocator gave (its size class), so that charging the capacity
// charges the memory.
func alloc(size int) []byte { return slices.Grow([]byte(nil), size) }

// feed appends lines already delivered (seq first on), which share one
// buffer of size bytes, and wakes the readers: how a data directory fills
// its hot cache. Lines that do not follow the newest held restart the
// cache at first.
func (m *Memory) feed(first uint64, lines [][]byte, size int) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	before := m.held
	if next := m.oldest + uint64(m.n); next != first {
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
	clear(m.ring)
	m.head, m.n, m.bytes, m.oldest = 0, 0, 0, first
	for _, b := range m.blocks[m.bhead:] {
		m.held -= b.size
	}
	m.blocks, m.bhead = m.blocks[:0], 0
}

// push appends line as the newest, evicting the oldest lines to stay within
// the bounds. m.mu is held.
func (m *Memory) push(line []byte) {
	if m.n == len(m.ring) && m.n < m.maxEvents {
		m.grow()
	}
	if m.n > 0 && (m.n == m.maxEvents || m.bytes+len(line) > m.maxBytes) {
		for m.n > 0 && (m.n == m.maxEvents || m.bytes+len(line) > m.maxBytes) {
			m.dropOldest()
		}
		m.dropBlocks()
	}
	i := m.head + m.n
	if i >= len(m.ring) {
		i -= len(m.ring)
	}
	m.ring[i] = line
	m.n++
	m.bytes += len(line)
}

// dropOldest evicts the oldest line. m.mu is held.
func (m *Memory) dropOldest() {
	m.bytes -= len(m.ring[m.head])
	m.ring[m.head] = nil // let a fully evicted buffer go
	m.head++
	if m.head == len(m.ring) {
		m.head = 0
	}
	m.n--
	m.oldest++
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
	for m.bhead < len(m.blocks) && m.blocks[m.bhead].last < m.oldest {
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

// grow doubles the ring (up to maxEvents), unwrapping it. m.mu is held.
func (m *Memory) grow() {
	m.resize(min(max(initialRing, 2*len(m.ring)), m.maxEvents))
}

// resize moves the lines to a ring of size slots (>= m.n). m.mu is held.
func (m *Memory) resize(size int) {
	r := make([][]byte, size)
	if m.n > 0 {
		k := copy(r, m.ring[m.head:min(m.head+m.n, len(m.ring))])
		copy(r[k:m.n], m.ring)
	}
	m.held += int64(slotBytes * (size - len(m.ring)))
	m.ring, m.head = r, 0
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
		for m.n > 0 && m.oldest <= last {
			m.dropOldest()
		}
		m.dropBlocks()
	}
	if m.n == 0 && len(m.ring) > 0 {
		m.resize(0) // all gone: so is the ring, until the next append
	} else if size := len(m.ring); size > initialRing && m.n <= size/4 {
		for size > initialRing && m.n <= size/4 {
			size /= 2
		}
		m.resize(max(size, initialRing))
	}
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
	if from < m.oldest {
		gap = Gap{From: from, To: m.oldest - 1}
		from = m.oldest
	}
	newest := m.oldest + uint64(m.n) - 1
	size, got := 0, 0
	for from <= newest && got < maxLines {
		i := m.head + int(from-m.oldest)
		if i >= len(m.ring) {
			i -= len(m.ring)
		}
		line := m.ring[i]
		if got > 0 && size+len(line) > maxBytes {
			break
		}
		dst = append(dst, line)
		size += len(line)
		got++
		from++
	}
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
	return m.oldest, m.oldest + uint64(m.n) - 1
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
	return m.n, m.bytes
}

// Close implements Log: it drops the lines and wakes every waiter.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.ring, m.n, m.bytes, m.blocks = nil, 0, 0, nil
	m.acct.Charge(logOverhead - m.held) // Leave gives back the fixed part
	m.held = 0
	close(m.notify)
	m.mu.Unlock()
	m.acct.Leave()
	return nil
}
