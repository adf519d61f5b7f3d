package post

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Console tuning.
const (
	ttyRedraw     = 100 * time.Millisecond // at most ten redraws a second
	plainInterval = 5 * time.Second        // a progress line this often in plain mode
	rateWindow    = 10                     // ttyRedraw ticks the rate is measured over (1s)
	msgQueue      = 1024                   // messages waiting for the console goroutine
)

// Progress modes.
const (
	progressNone = iota
	progressTTY
	progressPlain
)

// stats are the run's counters, updated by the reader and the senders and
// read by the console.
type stats struct {
	read        atomic.Int64 // non-blank lines read
	sent        atomic.Int64 // events the relay accepted
	refused     atomic.Int64 // lines refused, here or by the relay
	retried     atomic.Int64 // attempts that were retries
	unsent      atomic.Int64 // good lines never published (stop or failure)
	tenants     atomic.Int64 // tenants with at least one accepted batch
	failedFiles atomic.Int64 // inputs that could not be opened or read
}

// console owns stderr while the run lasts: every message and the progress
// line go through its goroutine, so a message never lands in the middle of
// a progress line.
type console struct {
	w        io.Writer
	mode     int
	quiet    bool
	stats    *stats
	interval time.Duration

	msgs chan string   // lines to print
	quit chan struct{} // closed by close: finish up
	done chan struct{} // closed when the goroutine has ended
	once sync.Once
}

// progressMode turns --progress and the environment into a mode. Auto
// draws on a terminal, but not when the events are being typed on it (stdin
// a terminal too): the line would be redrawn where the user types.
func progressMode(flag string, quiet bool, stdin io.Reader, stderr io.Writer, getenv func(string) string) int {
	if quiet {
		return progressNone
	}
	switch flag {
	case "tty":
		return progressTTY
	case "plain":
		return progressPlain
	case "none":
		return progressNone
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && getenv("TERM") != "dumb" && !isTerminal(stdin) {
		return progressTTY
	}
	return progressNone
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newConsole(w io.Writer, mode int, quiet bool, st *stats) *console {
	c := &console{
		w: w, mode: mode, quiet: quiet, stats: st,
		interval: ttyRedraw,
		msgs:     make(chan string, msgQueue),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if mode == progressPlain {
		c.interval = plainInterval
	}
	return c
}

// printf prints a diagnostic (always, even with -q).
func (c *console) printf(format string, a ...any) {
	c.put(fmt.Sprintf(format, a...))
}

// note prints an informational line (not with -q).
func (c *console) note(msg string) {
	if !c.quiet {
		c.put(msg)
	}
}

func (c *console) put(msg string) {
	select {
	case c.msgs <- msg:
	case <-c.quit:
		// After close (only an abandoned reader can get here): too late.
	}
}

// run is the console goroutine; close ends it.
func (c *console) run() {
	defer close(c.done)
	start := time.Now()
	var tick <-chan time.Time
	if c.mode != progressNone {
		t := time.NewTicker(c.interval)
		defer t.Stop()
		tick = t.C
	}
	var window [rateWindow]int64 // sent, at the last ticks
	var ticks int
	drawn := false
	for {
		select {
		case m := <-c.msgs:
			if drawn {
				io.WriteString(c.w, "\r\x1b[K")
				drawn = false
			}
			io.WriteString(c.w, m+"\n")
		case now := <-tick:
			sent := c.stats.sent.Load()
			rate := float64(sent) / now.Sub(start).Seconds()
			if c.mode == progressTTY {
				old := window[ticks%rateWindow]
				window[ticks%rateWindow] = sent
				ticks++
				if ticks > rateWindow {
					rate = float64(sent-old) / (rateWindow * ttyRedraw).Seconds()
				}
				io.WriteString(c.w, "\r"+c.line(rate)+"\x1b[K")
				drawn = true
			} else {
				io.WriteString(c.w, "tl-post: "+c.line(rate)+"\n")
			}
		case <-c.quit:
			for {
				select {
				case m := <-c.msgs:
					if drawn {
						io.WriteString(c.w, "\r\x1b[K")
						drawn = false
					}
					io.WriteString(c.w, m+"\n")
					continue
				default:
				}
				break
			}
			if drawn {
				io.WriteString(c.w, "\r\x1b[K")
			}
			return
		}
	}
}

// line is the progress line.
func (c *console) line(rate float64) string {
	s := c.stats
	return fmt.Sprintf("read %s  sent %s  refused %s  retried %s  %s events/s",
		commas(s.read.Load()), commas(s.sent.Load()), commas(s.refused.Load()),
		commas(s.retried.Load()), commas(int64(rate+0.5)))
}

// close prints what is queued, erases the progress line and ends the
// goroutine. Safe to call twice.
func (c *console) close() {
	c.once.Do(func() { close(c.quit) })
	<-c.done
}

// commas writes n with thousands separators: 1234567 → 1,234,567.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
