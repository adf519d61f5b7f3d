package format

import (
	"bytes"
	"fmt"
	"io"
)

// defaultMaxErrors is how many per-line messages (not JSON, runtime error)
// tl-fmt prints before it only counts them: 100 MB of garbage is one
// problem, not 388,000 lines of stderr.
const defaultMaxErrors = 100

// errorCap passes the first max lines of per-line messages to w and counts
// the rest; finish says how many were not shown. It is used by the one
// goroutine that writes stderr.
type errorCap struct {
	w      io.Writer
	max    int // 0: no limit
	shown  int
	hidden int
}

// write passes on the whole lines of b that are within the cap.
func (c *errorCap) write(b []byte) {
	if c.max == 0 {
		c.w.Write(b)
		return
	}
	n := 0 // bytes of b within the cap
	for n < len(b) && c.shown < c.max {
		i := bytes.IndexByte(b[n:], '\n')
		if i < 0 {
			n = len(b)
		} else {
			n += i + 1
		}
		c.shown++
	}
	if n > 0 {
		c.w.Write(b[:n])
	}
	c.hidden += bytes.Count(b[n:], []byte{'\n'})
}

// finish reports the messages that were not shown.
func (c *errorCap) finish() {
	if c.hidden > 0 {
		noun := "errors"
		if c.hidden == 1 {
			noun = "error"
		}
		fmt.Fprintf(c.w, "tl-fmt: %d more %s not shown (--max-errors %d)\n", c.hidden, noun, c.max)
		c.hidden = 0
	}
}
