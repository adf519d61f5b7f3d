// Package tlog owns the tenant log: the append-only, bounded sequence of a
// tenant's encoded event lines that the relay appends to on ingest and that
// every subscriber reads from with its own cursor. Log is the interface its
// backings share (memory here; a data directory in lib/internal/disklog,
// Redis in lib/internal/redislog, which import this package), each keeping
// the Idempotency-Keys of its batches. What they build on is here: Ring,
// the window of numbered lines they keep in memory; NewCache, a hot cache
// of lines a backing numbered itself; Keys, the Idempotency-Key table; and
// Budget, the bound on what they all hold in memory.
package tlog

import (
	"context"
	"errors"
)

// Log is one tenant's history. Lines are delivered lines (`{"seq":N,` +
// body, see event.AppendDelivery), numbered from 1 with no holes; a log
// keeps a window oldest..newest of them and drops the oldest first.
//
// Every method is safe for concurrent use. Lines returned by Read are
// shared with the log and other readers: never modify them.
type Log interface {
	// Append assigns the next seqs, in order, to the batch's bodies (each
	// event.AppendBody output, newline included) and appends them as one
	// atomic step: a reader sees all of them or none. It never waits for a
	// reader. A batch whose Key the log saw recently publishes nothing and
	// gets the first batch's answer (Replayed); a repeat arriving while
	// the first is in flight waits for it (or for ctx); a key whose batch
	// failed may be used again (tl-protocol(7), Idempotency). An error
	// wrapping ErrOutcomeUnknown means the batch may have been published;
	// any other, that it was not.
	Append(ctx context.Context, b Batch) (Appended, error)

	// Read appends to dst the lines from seq `from` on, at most maxLines
	// lines and, past the first line, at most maxBytes bytes. next is the
	// seq to read from next time. When `from` is older than the oldest line
	// held, gap names the lines lost (From = `from`, To = oldest-1) and the
	// lines returned start at the oldest held. from = newest+1 returns no
	// lines: wait on Notify.
	Read(from uint64, dst [][]byte, maxLines, maxBytes int) (lines [][]byte, next uint64, gap Gap, err error)

	// Notify returns a channel closed by the next Append (or Close). Take
	// it before calling Read, so an append between the two is not missed.
	Notify() <-chan struct{}

	// Bounds returns the oldest and newest seq held; oldest = newest+1
	// when the log holds none (newest is 0 before the first append).
	Bounds() (oldest, newest uint64)

	// Epoch names this history's life: it changes whenever the numbering
	// restarts (tl-protocol(7)).
	Epoch() string

	// Close releases the log; later calls fail with ErrClosed. Safe to
	// call more than once.
	Close() error
}

// ColdReader is a Log whose Read may wait on I/O (a disk, Redis) for lines
// older than those it keeps in memory. A writer serving many readers at
// once asks before reading, and does such reads apart, so that one reader
// catching up on old history never delays the live ones. A Log that is not
// a ColdReader always reads from memory.
type ColdReader interface {
	// Cold reports whether Read from seq `from` may wait on I/O.
	Cold(from uint64) bool
}

// IsCold reports whether reading l from seq `from` may wait on I/O.
func IsCold(l Log, from uint64) bool {
	c, ok := l.(ColdReader)
	return ok && c.Cold(from)
}

// Gap is a range of seqs, From..To inclusive, that a reader will never get.
// The zero Gap means none.
type Gap struct{ From, To uint64 }

// Empty reports whether g names no seq.
func (g Gap) Empty() bool { return g.From == 0 && g.To == 0 }

// ErrClosed is returned by a closed log.
var ErrClosed = errors.New("tenant log closed")

// Batch is what one Append publishes.
type Batch struct {
	// Bodies are the events, each event.AppendBody output.
	Bodies [][]byte
	// Load, when set, makes the bodies instead. A log that keeps its keys
	// in memory calls it only for a batch to publish (its Key new), so a
	// repeat is answered without reading its request; one that decides in
	// a single step elsewhere (Redis) calls it first. It runs outside the
	// log's locks; its error is Append's, and nothing is published.
	Load func() ([][]byte, error)
	// Key is the batch's Idempotency-Key ("": none).
	Key string
}

// Appended is Append's answer: the seqs given to the batch and the epoch
// they belong to. Replayed means the key was seen: nothing was published,
// and this is the first batch's answer.
type Appended struct {
	First, Last uint64
	Epoch       string
	Replayed    bool
}

// Events returns the batch's bodies, made by Load when it is set: a
// backing calls it once it knows the batch is to be published.
func (b Batch) Events() ([][]byte, error) {
	if b.Load != nil {
		return b.Load()
	}
	return b.Bodies, nil
}
