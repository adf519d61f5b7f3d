package format

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"runtime"

	"github.com/tl-sh/tl/lib/cli"
)

// Lines go through tl-fmt in chunks: a reader goroutine cuts the input into
// chunks of whole lines, worker goroutines (one per CPU) run the program on
// them, and the caller's goroutine writes each chunk's output in input order
// with one write. A chunk ends at chunkSize, at the end of a file, or as soon
// as the input has no complete line ready (the next read could block): so in
// a pipe from tl-tail each event is written as soon as it arrives, and under
// a flood output goes out in large batches.
const (
	readBufSize = 256 << 10 // bufio.Reader size: the largest read syscall
	chunkSize   = 128 << 10 // input bytes per chunk: big enough to amortise a write and a hand-off
	maxLine     = 16 << 20  // longest line accepted; events are at most 64 KiB
	inFlight    = 4         // chunks in flight per worker: keeps workers busy while the writer waits
)

// status gathers what decides the exit status.
type status struct {
	last    lastKind
	bad     bool // a line was not JSON, or too long
	runtime bool // a line raised an error
	openErr bool // an input could not be read
}

func (st *status) err() error {
	switch {
	case st.openErr:
		return cli.Exit(cli.ExitUsage, nil)
	case st.bad || st.runtime:
		return cli.Exit(exitRuntime, nil)
	}
	return nil
}

// exitStatus is the error Run returns at the end of the input.
func (st *status) exitStatus(o *options) error {
	if err := st.err(); err != nil || !o.exitCode {
		return err
	}
	switch st.last {
	case lastNone:
		return cli.Exit(exitNoOutput, nil)
	case lastFalsy:
		return cli.Exit(exitFalsy, nil)
	}
	return nil
}

// run processes the input and writes the results.
func run(ctx context.Context, o *options, prog *program, env *cli.Env) error {
	var pal *palette
	if o.color {
		p, ok := newPalette(env.Getenv("JQ_COLORS"))
		if !ok {
			fmt.Fprintln(env.Stderr, "tl-fmt: failed to set $JQ_COLORS")
		}
		pal = p
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A read from a terminal or a pipe cannot be interrupted: the work runs
	// on its own goroutine so that a signal ends Run at once. The goroutine
	// ends at its next line (ctx is cancelled) or with the process.
	done := make(chan error, 1)
	go func() {
		if prog.sequential {
			done <- runSequential(ctx, o, prog, pal, env)
		} else {
			done <- runParallel(ctx, o, prog, pal, env)
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return cli.Interrupted
	}
}

// runSequential processes lines one by one on this goroutine; the program
// may read further lines itself (input, inputs).
func runSequential(ctx context.Context, o *options, prog *program, pal *palette, env *cli.Env) error {
	var st status
	out := bufio.NewWriterSize(env.Stdout, readBufSize)
	var werr error
	w := newWorker(ctx, o, prog, pal)
	errOut := &errorCap{w: env.Stderr, max: o.maxErrors}
	defer errOut.finish()
	flushErrs := func() {
		if len(w.errs) > 0 {
			errOut.write(w.errs)
			w.errs = w.errs[:0]
		}
	}
	src := newSource(env.Stdin, o.files, func(msg string, open bool) {
		if open {
			st.openErr = true
		} else {
			st.bad = true
		}
		fmt.Fprintf(env.Stderr, "tl-fmt: %s\n", msg)
	})
	emit := func() error {
		flushErrs()
		if len(w.out) > 0 && werr == nil {
			_, werr = out.Write(w.out)
		}
		w.out = w.out[:0]
		return werr
	}
	// Before a read that may block, everything so far goes out, including
	// what a program reading inputs has produced in the middle of its run.
	src.beforeBlock = func() {
		emit()
		if werr == nil {
			werr = out.Flush()
		}
	}
	prog.inputs.src, prog.inputs.w = src, w
	prog.inputs.flushErrs = flushErrs
	finish := func() error {
		if werr == nil {
			werr = out.Flush()
		}
		if werr != nil {
			return quietPipe(werr)
		}
		st.bad = st.bad || w.bad
		st.runtime = st.runtime || w.runtime
		st.last = w.last
		if w.halted != nil {
			env.Stderr.Write(haltMessage(w.halted))
			if c := w.halted.ExitCode(); c != 0 {
				return cli.Exit(c, nil)
			}
			return st.err()
		}
		return st.exitStatus(o)
	}
	switch {
	case o.nullInput:
		w.runValue(nil, nil, "", 0)
		emit()
		return finish()
	case o.slurp:
		all := []any{}
		for {
			v, ok := prog.inputs.Next()
			if !ok {
				break
			}
			all = append(all, v)
		}
		w.runValue(all, nil, displayName(src.name), src.lineNo)
		emit()
		return finish()
	}
	for ctx.Err() == nil && w.halted == nil {
		line, err := src.line()
		if err != nil {
			break
		}
		w.line(line, src.name, src.lineNo)
		if emit() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return cli.Interrupted
	}
	return finish()
}

// inputIter feeds input and inputs from the source, in sequential mode.
type inputIter struct {
	src       *source
	w         *worker
	flushErrs func()
}

// Next implements gojq.Iter: the next line that is JSON (the others are
// reported and skipped, as in the main loop).
func (it *inputIter) Next() (any, bool) {
	if it.src == nil {
		return nil, false
	}
	for {
		line, err := it.src.line()
		if err != nil {
			return nil, false
		}
		line = trimSpace(line)
		if len(line) == 0 {
			continue
		}
		v, err := it.w.decode(line)
		if err != nil {
			it.w.badLine(it.src.name, it.src.lineNo, err)
			it.flushErrs()
			continue
		}
		return v, true
	}
}

// chunk is a run of whole lines of one input, and what became of them.
type chunk struct {
	data  []byte // the lines, each ending in '\n'
	name  string
	first int    // number of the first line
	lines int    // number of lines
	notes []byte // the reader's messages (unreadable file, long line)
	out   []byte
	errs  []byte
	st    status
	done  chan struct{} // closed when a worker has processed it
}

// runParallel processes chunks of lines on every CPU, writing in order.
func runParallel(ctx context.Context, o *options, prog *program, pal *palette, env *cli.Env) error {
	workers := o.jobs
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	work := make(chan *chunk, workers*inFlight)
	ordered := make(chan *chunk, workers*inFlight)

	// The reader: cut the input into chunks. It owns work and ordered and
	// closes them when the input ends or ctx is cancelled.
	go func() {
		defer close(work)
		defer close(ordered)
		var cur *chunk
		var notes []byte
		var openErr, longErr bool
		src := newSource(env.Stdin, o.files, func(msg string, open bool) {
			notes = fmt.Appendf(notes, "tl-fmt: %s\n", msg)
			if open {
				openErr = true
			} else {
				longErr = true
			}
		})
		send := func() bool {
			c := cur
			cur = nil
			if c == nil {
				return true
			}
			c.notes, notes = notes, nil
			c.st.openErr, c.st.bad = openErr, longErr
			openErr, longErr = false, false
			select {
			case ordered <- c:
			case <-ctx.Done():
				return false
			}
			select {
			case work <- c:
			case <-ctx.Done():
				return false
			}
			return true
		}
		for ctx.Err() == nil {
			line, err := src.line()
			if err != nil {
				break
			}
			// A new input, or a line the source skipped, starts a new chunk so
			// that line numbers stay exact.
			if cur != nil && (cur.name != src.name || cur.first+cur.lines != src.lineNo) {
				if !send() {
					return
				}
			}
			if cur == nil {
				cur = &chunk{name: src.name, first: src.lineNo, done: make(chan struct{}),
					data: make([]byte, 0, chunkSize+4<<10)}
			}
			cur.data = append(append(cur.data, line...), '\n')
			cur.lines++
			if len(cur.data) >= chunkSize || !src.ready() {
				if !send() {
					return
				}
			}
		}
		if cur == nil && len(notes) > 0 {
			cur = &chunk{done: make(chan struct{})}
		}
		send()
	}()

	// The workers: each owns its worker state and ends when work closes.
	for range workers {
		go func() {
			w := newWorker(ctx, o, prog, pal)
			for c := range work {
				w.out, w.errs = c.out[:0], c.errs[:0]
				w.last, w.bad, w.runtime = lastNone, false, false
				data, n := c.data, c.first
				for len(data) > 0 {
					i := bytes.IndexByte(data, '\n')
					w.line(data[:i], c.name, n)
					data = data[i+1:]
					n++
				}
				c.out, c.errs = w.out, w.errs
				c.st.last = w.last
				c.st.bad = c.st.bad || w.bad
				c.st.runtime = w.runtime
				w.out, w.errs = nil, nil
				close(c.done)
			}
		}()
	}

	// The writer: this goroutine, in input order.
	var st status
	errOut := &errorCap{w: env.Stderr, max: o.maxErrors}
	defer errOut.finish()
	for c := range ordered {
		select {
		case <-c.done:
		case <-ctx.Done():
			return cli.Interrupted
		}
		if len(c.notes) > 0 {
			env.Stderr.Write(c.notes)
		}
		if len(c.errs) > 0 {
			errOut.write(c.errs)
		}
		if len(c.out) > 0 {
			if _, err := env.Stdout.Write(c.out); err != nil {
				return quietPipe(err)
			}
		}
		if c.st.last != lastNone {
			st.last = c.st.last
		}
		st.bad = st.bad || c.st.bad
		st.runtime = st.runtime || c.st.runtime
		st.openErr = st.openErr || c.st.openErr
	}
	if ctx.Err() != nil {
		return cli.Interrupted
	}
	return st.exitStatus(o)
}
