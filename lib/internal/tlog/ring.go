package tlog

// Ring is a window of numbered lines, seqs Oldest()..Newest() with no
// holes, in a ring buffer that grows by doubling as it fills and shrinks
// when most of it is empty: the memory log, a data directory's hot cache and
// the Redis cache keep their lines in one. It owns no memory accounting
// beyond its slots (Slots): what the lines hold is its owner's to count. Not
// safe for concurrent use: its owner's lock guards it.
type Ring struct {
	lines [][]byte // lines[head] is seq oldest
	head  int
	n     int    // lines held
	lo    uint64 // seq of lines[head]
	bytes int    // sum of the held lines' lengths
}

// initialRing is a ring's first size: most tenants are small, so a ring
// starts small and doubles up to its line limit as it fills.
const initialRing = 64

// slotBytes is a ring slot (a slice header), held used or not.
const slotBytes = 24

// NewRing returns an empty ring whose first line will be seq first.
func NewRing(first uint64) Ring { return Ring{lo: first} }

// Oldest returns the seq of the oldest line (Newest()+1 when empty).
func (r *Ring) Oldest() uint64 { return r.lo }

// Newest returns the seq of the newest line (Oldest()-1 when empty).
func (r *Ring) Newest() uint64 { return r.lo + uint64(r.n) - 1 }

// Len returns the number of lines and bytes held.
func (r *Ring) Len() (lines, bytes int) { return r.n, r.bytes }

// SlotBytes returns what the ring's slots hold, used or not.
func (r *Ring) SlotBytes() int64 { return int64(slotBytes * len(r.lines)) }

// Reset empties the ring; the next line pushed is seq first. It keeps its
// slots.
func (r *Ring) Reset(first uint64) {
	clear(r.lines)
	r.head, r.n, r.bytes, r.lo = 0, 0, 0, first
}

// Push appends line as seq Newest()+1, dropping the oldest lines first so
// that the ring keeps at most maxLines lines and maxBytes bytes (a line
// larger than maxBytes is kept alone). drop, when not nil, is told of each
// line dropped.
func (r *Ring) Push(line []byte, maxLines, maxBytes int, drop func([]byte)) {
	if r.n == len(r.lines) && r.n < maxLines {
		r.resize(min(max(initialRing, 2*len(r.lines)), maxLines))
	}
	for r.n > 0 && (r.n >= maxLines || r.bytes+len(line) > maxBytes) {
		old := r.DropOldest()
		if drop != nil {
			drop(old)
		}
	}
	i := r.head + r.n
	if i >= len(r.lines) {
		i -= len(r.lines)
	}
	r.lines[i] = line
	r.n++
	r.bytes += len(line)
}

// DropOldest removes the oldest line (the ring must not be empty) and
// returns it.
func (r *Ring) DropOldest() []byte {
	line := r.lines[r.head]
	r.bytes -= len(line)
	r.lines[r.head] = nil // let the line's buffer go
	r.head++
	if r.head == len(r.lines) {
		r.head = 0
	}
	r.n--
	r.lo++
	return line
}

// Shrink halves the slots while three quarters of them are empty (not
// below initialRing), and lets them all go when the ring is empty: the next
// Push grows it again.
func (r *Ring) Shrink() {
	size := len(r.lines)
	for size > initialRing && r.n <= size/4 {
		size /= 2
	}
	if r.n == 0 {
		size = 0
	}
	if size != len(r.lines) {
		r.resize(size)
	}
}

// resize moves the lines to size slots (>= n), unwrapping them.
func (r *Ring) resize(size int) {
	s := make([][]byte, size)
	if r.n > 0 {
		k := copy(s, r.lines[r.head:min(r.head+r.n, len(r.lines))])
		copy(s[k:r.n], r.lines)
	}
	r.lines, r.head = s, 0
}

// Read appends to dst the lines from seq max(from, Oldest()) on, at most
// maxLines lines and, past the first, at most maxBytes bytes, and returns
// the seq to read from next.
func (r *Ring) Read(from uint64, dst [][]byte, maxLines, maxBytes int) ([][]byte, uint64) {
	from = max(from, r.lo)
	newest := r.Newest()
	size, got := 0, 0
	for from <= newest && got < maxLines {
		i := r.head + int(from-r.lo)
		if i >= len(r.lines) {
			i -= len(r.lines)
		}
		line := r.lines[i]
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
