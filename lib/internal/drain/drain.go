// Package drain owns tl-tail's stdout: a drain-aware writer that takes whole
// lines from a producer (the WebSocket reader) without ever making it wait on
// a slow consumer. It holds a bounded buffer that a goroutine of its own
// flushes whenever stdout can take more; when the buffer is full it drops
// whole lines and counts them, or, in lossless mode, makes the producer wait
// so that the backpressure reaches the socket instead.
//
// On Linux a pipe on stdout is reopened through /proc/self/fd/N, which gives
// a second open file description of the same pipe that Go's poller manages:
// its writes can be given deadlines (so a stalled reader never pins shutdown)
// while fd 1 itself stays blocking for the shell and every other process that
// shares it. The same pipe is watched for its reader leaving (`| head`), which
// ends the writer with ErrBrokenPipe at once, even when no line is pending.
package drain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultSize is the buffer size when Config.Size is zero: a few seconds of a
// busy tenant, small enough not to matter on any machine.
const DefaultSize = 4 << 20

// MinSize is the smallest buffer New accepts: one line of the largest event
// tl-protocol(7) allows (64 KiB) plus its seq key always fits.
const MinSize = 80 << 10

// writeChunk bounds a single write to stdout so that buffer space comes back
// to the producer as the consumer drains, not only after a whole buffer went
// out. 64 KiB is Linux's default pipe capacity.
const writeChunk = 64 << 10

// ReportInterval is how often, at most, OnDrop is called.
const ReportInterval = time.Second

// ErrBrokenPipe reports that stdout's reader went away (EPIPE): the owner
// should stop quietly.
var ErrBrokenPipe = errors.New("stdout closed by its reader")

// ErrClosed is returned by WriteLines after Close.
var ErrClosed = errors.New("drain: writer closed")

// Config tunes a Writer.
type Config struct {
	// Size is the most bytes held that stdout has not taken yet
	// (DefaultSize when 0; raised to MinSize when smaller).
	Size int
	// Lossless makes WriteLines wait for room instead of dropping lines.
	// Output to a regular file or a device like /dev/null is always
	// lossless: no reader lags there, only the flusher can, for a moment.
	Lossless bool
	// OnDrop, when set, is called from the writer's reporting goroutine at
	// most once per ReportInterval with the lines dropped since the last
	// call and in total, and once more from Close for any not yet reported.
	OnDrop func(dropped, total int64)

	// tick replaces the report ticker in tests.
	tick <-chan time.Time
}

// Writer is a drain-aware line writer. WriteLines, Close, Done, Err and
// Dropped may be called from any goroutine (tl-tail has a producer per
// tenant); the lines of one WriteLines call stay together.
type Writer struct {
	size     int
	lossless bool
	out      *sink
	onDrop   func(dropped, total int64)

	// mu guards every field below up to dropped; it is never held during I/O.
	mu        sync.Mutex
	dataReady sync.Cond // the flusher waits here for pending bytes or closing
	spaceFree sync.Cond // a lossless producer waits here for room
	pending   []byte    // whole lines not yet handed to the flusher
	spare     []byte    // the flusher's previous buffer, reused for pending
	inflight  int       // bytes the flusher holds that stdout has not taken
	closing   bool      // Close was called: flush what is left, accept nothing
	err       error     // why output stopped (ErrBrokenPipe, a write error)
	done      chan struct{}

	dropped atomic.Int64 // lines dropped in total

	flushed    chan struct{} // closed when the flusher goroutine returns
	stopReport chan struct{} // ends the reporting goroutine
	reported   chan int64    // the reporter hands back what it reported
	closeOnce  sync.Once
	closeErr   error
}

// New starts a Writer on out. When out is an *os.File on a pipe it is
// prepared as the package comment says; any other writer is used as is.
func New(out io.Writer, cfg Config) *Writer {
	s := openSink(out)
	size := cfg.Size
	if size == 0 {
		size = DefaultSize
	}
	size = max(size, MinSize)
	w := &Writer{
		size:     size,
		lossless: cfg.Lossless || s.storage,
		out:      s,
		onDrop:   cfg.OnDrop,
		pending:  make([]byte, 0, min(size, writeChunk)),
		done:     make(chan struct{}),
		flushed:  make(chan struct{}),
	}
	w.dataReady.L = &w.mu
	w.spaceFree.L = &w.mu
	go w.flush()
	s.watch(func() { w.fail(ErrBrokenPipe) })
	if w.onDrop != nil {
		tick := cfg.tick
		var t *time.Ticker
		if tick == nil {
			t = time.NewTicker(ReportInterval)
			tick = t.C
		}
		w.stopReport = make(chan struct{})
		w.reported = make(chan int64, 1)
		go w.report(tick, t)
	}
	return w
}

// WriteLines queues p, which must hold whole lines (each ending in '\n'), for
// stdout. It copies p and never waits on stdout: when the buffer cannot take
// all of p it keeps the leading lines that fit and drops the rest, counting
// them. In lossless mode it instead waits until there is room (or ctx ends,
// returning ctx.Err()); a p larger than the whole buffer is taken once the
// buffer is empty. After output failed it returns that error (ErrBrokenPipe
// when stdout's reader left).
func (w *Writer) WriteLines(ctx context.Context, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lossless {
		var stop func() bool
		for w.err == nil && !w.closing && w.held() > 0 && w.held()+len(p) > w.size {
			if err := ctx.Err(); err != nil {
				return err
			}
			if stop == nil {
				stop = context.AfterFunc(ctx, func() {
					w.mu.Lock()
					w.spaceFree.Broadcast()
					w.mu.Unlock()
				})
				defer stop()
			}
			w.spaceFree.Wait()
		}
	}
	if w.err != nil {
		return w.err
	}
	if w.closing {
		return ErrClosed
	}
	keep := p
	if free := max(w.size-w.held(), 0); !w.lossless && len(p) > free {
		// Only whole lines: cut after the last newline that fits.
		keep = p[:bytes.LastIndexByte(p[:free], '\n')+1]
		rest := p[len(keep):]
		n := bytes.Count(rest, nl)
		if rest[len(rest)-1] != '\n' {
			n++
		}
		w.dropped.Add(int64(n))
	}
	if len(keep) > 0 {
		wasEmpty := len(w.pending) == 0
		w.pending = append(w.pending, keep...)
		if wasEmpty {
			w.dataReady.Signal()
		}
	}
	return nil
}

var nl = []byte{'\n'}

// held is the number of bytes stdout has not taken yet. w.mu must be held.
func (w *Writer) held() int { return len(w.pending) + w.inflight }

// Dropped returns the number of lines dropped so far.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

// Done is closed when output has stopped for good (see Err).
func (w *Writer) Done() <-chan struct{} { return w.done }

// Err returns why output stopped, or nil while it works.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// fail stops output for good with err (the first error wins) and wakes
// everyone waiting.
func (w *Writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	w.err = err
	w.pending = nil
	close(w.done)
	w.dataReady.Broadcast()
	w.spaceFree.Broadcast()
}

// flush is the flusher goroutine: it takes the pending lines as one buffer
// and writes them out, line-aligned chunk by chunk, until Close or a failure.
func (w *Writer) flush() {
	defer close(w.flushed)
	for {
		w.mu.Lock()
		for len(w.pending) == 0 && !w.closing && w.err == nil {
			w.dataReady.Wait()
		}
		if w.err != nil || len(w.pending) == 0 {
			w.mu.Unlock()
			return
		}
		buf := w.pending
		w.pending, w.spare = w.spare[:0], nil
		w.inflight = len(buf)
		w.mu.Unlock()

		for off := 0; off < len(buf); {
			end := chunkEnd(buf, off)
			n, err := w.out.w.Write(buf[off:end])
			if err == nil && n < end-off {
				err = io.ErrShortWrite
			}
			off += n
			if err != nil {
				if errors.Is(err, syscall.EPIPE) {
					err = ErrBrokenPipe
				} else {
					err = fmt.Errorf("writing stdout: %w", err)
				}
				w.fail(err)
				return
			}
			w.mu.Lock()
			w.inflight -= n
			w.spaceFree.Broadcast()
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.spare = buf[:0]
		w.mu.Unlock()
	}
}

// chunkEnd returns where the write starting at off should end: the last line
// end within writeChunk bytes, or the end of a longer line.
func chunkEnd(buf []byte, off int) int {
	if len(buf)-off <= writeChunk {
		return len(buf)
	}
	if i := bytes.LastIndexByte(buf[off:off+writeChunk], '\n'); i >= 0 {
		return off + i + 1
	}
	if i := bytes.IndexByte(buf[off+writeChunk:], '\n'); i >= 0 {
		return off + writeChunk + i + 1
	}
	return len(buf)
}

// report is the reporting goroutine: on each tick it passes new drops to
// OnDrop. On stop it hands what it reported back to Close.
func (w *Writer) report(tick <-chan time.Time, t *time.Ticker) {
	if t != nil {
		defer t.Stop()
	}
	var reported int64
	for {
		select {
		case <-tick:
			if total := w.dropped.Load(); total > reported {
				w.onDrop(total-reported, total)
				reported = total
			}
		case <-w.stopReport:
			w.reported <- reported
			return
		}
	}
}

// Close flushes what is buffered and stops the writer's goroutines. It waits
// for stdout to take everything until ctx ends; then it abandons the rest
// (interrupting a blocked write where the platform allows). It returns nil
// when everything was written, else why not (ErrBrokenPipe, a write error,
// or an error counting the bytes abandoned). Close is safe to call twice.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() { w.closeErr = w.close(ctx) })
	return w.closeErr
}

func (w *Writer) close(ctx context.Context) error {
	w.mu.Lock()
	w.closing = true
	w.dataReady.Broadcast()
	w.spaceFree.Broadcast()
	w.mu.Unlock()

	select {
	case <-w.flushed:
	case <-ctx.Done():
		w.mu.Lock()
		left := w.held()
		w.mu.Unlock()
		w.fail(fmt.Errorf("gave up flushing stdout with %d bytes left: %w", left, context.Cause(ctx)))
		if w.out.interrupt() {
			<-w.flushed
		}
		// Otherwise the flusher is stuck in a write that cannot be
		// interrupted; it ends with the process.
	}
	if w.stopReport != nil {
		close(w.stopReport)
		if reported, total := <-w.reported, w.dropped.Load(); total > reported {
			// Drops not reported yet: say so once more, now.
			w.onDrop(total-reported, total)
		}
	}
	w.out.close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
