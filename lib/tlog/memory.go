package tlog

import (
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

// Memory is the default Log: a ring of delivered lines in memory, bounded by
// a number of events and of bytes. The lines of one Append live in one
// buffer, so the memory held can exceed the byte bound by at most one
// partly evicted batch.
type Memory struct {
	maxEvents int
	maxBytes  int
	epoch     string

	mu     sync.Mutex // guards every field below; held for no I/O
	ring   [][]byte   // ring[head] is seq oldest; grows by doubling
	head   int
	n      int    // lines held
	oldest uint64 // seq of ring[head]; newest is oldest+n-1
	bytes  int    // sum of the held lines' lengths
	notify chan struct{}
	closed bool
}

// NewMemory returns an empty memory log with a fresh epoch, keeping at most
// maxEvents lines and maxBytes bytes of lines (<= 0 selects the defaults).
func NewMemory(maxEvents, maxBytes int) *Memory {
	if maxEvents <= 0 {
		maxEvents = DefaultMaxEvents
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Memory{
		maxEvents: maxEvents,
		maxBytes:  maxBytes,
		epoch:     NewEpoch(),
		oldest:    1,
		notify:    make(chan struct{}),
	}
}

// Append implements Log.
func (m *Memory) Append(bodies [][]byte) (first, last uint64, err error) {
	if len(bodies) == 0 {
		return 0, 0, nil
	}
	size := 0
	for _, b := range bodies {
		size += len(b) + seqOverhead
	}
	buf := make([]byte, 0, size) // outside the lock: it may be large

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, 0, ErrClosed
	}
	first = m.oldest + uint64(m.n)
	for i, b := range bodies {
		start := len(buf)
		buf = event.AppendDelivery(buf, first+uint64(i), b)
		m.push(buf[start:len(buf):len(buf)])
	}
	last = first + uint64(len(bodies)) - 1
	ch := m.notify
	m.notify = make(chan struct{})
	m.mu.Unlock()

	close(ch)
	return first, last, nil
}

// push appends line as the newest, evicting the oldest lines to stay within
// the bounds. m.mu is held.
func (m *Memory) push(line []byte) {
	if m.n == len(m.ring) && m.n < m.maxEvents {
		m.grow()
	}
	for m.n > 0 && (m.n == m.maxEvents || m.bytes+len(line) > m.maxBytes) {
		m.bytes -= len(m.ring[m.head])
		m.ring[m.head] = nil // let a fully evicted batch's buffer go
		m.head++
		if m.head == len(m.ring) {
			m.head = 0
		}
		m.n--
		m.oldest++
	}
	i := m.head + m.n
	if i >= len(m.ring) {
		i -= len(m.ring)
	}
	m.ring[i] = line
	m.n++
	m.bytes += len(line)
}

// grow doubles the ring (up to maxEvents), unwrapping it. m.mu is held.
func (m *Memory) grow() {
	size := min(max(initialRing, 2*len(m.ring)), m.maxEvents)
	r := make([][]byte, size)
	k := copy(r, m.ring[m.head:])
	copy(r[k:], m.ring[:m.head])
	m.ring, m.head = r, 0
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

// Len returns the number of lines and bytes held.
func (m *Memory) Len() (lines, bytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n, m.bytes
}

// Close implements Log: it drops the lines and wakes every waiter.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.ring, m.n, m.bytes = nil, 0, 0
	close(m.notify)
	return nil
}
