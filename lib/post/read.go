package post

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/ndjson"
)

// maxLine is the longest input line read whole: an event's limit plus room
// for a tail's "seq" and stray whitespace. Longer lines are reported by
// number and skipped; lines in between get the validator's "larger than
// 64 KiB" error.
const maxLine = event.MaxEventSize + 1024

// item is a validated line waiting to be routed to its tenant.
type item struct {
	tenant string
	wire   []byte // what goes on the wire, without '\n'
	ts     int64  // the event's timestamp, or noTimestamp
	ref    ref
}

const noTimestamp = -1 << 63

// checker validates lines and decides their tenant and wire form. One per
// reader goroutine.
type checker struct {
	tenant   string // the TENANT argument, or ""
	retarget bool   // --retarget: re-address every line to tenant
	v        event.Validator
	buf      []byte // holds a rewritten line until the next check
	lastGood string // the last tenant_id that passed CheckTenant
}

// check validates line. On success it returns the tenant, the bytes to send
// (valid until the next call) and the timestamp.
func (c *checker) check(line []byte) (tenant string, wire []byte, ts int64, err error) {
	if c.tenant == "" {
		if err := c.v.Validate(line, ""); err != nil {
			return "", nil, 0, err
		}
		tenant = c.v.TenantID()
		if tenant == "" {
			return "", nil, 0, errors.New("no tenant_id (name a TENANT to publish lines without one)")
		}
		if tenant != c.lastGood {
			if err := event.CheckTenant(tenant); err != nil {
				return "", nil, 0, fmt.Errorf("tenant_id: %w", err)
			}
			c.lastGood = tenant
		}
		wire = bytes.TrimSpace(line)
	} else {
		// A delivery (a line that starts with {"seq":N, as the relay and
		// tl-tail print them) is being copied: its tenant_id names the
		// tenant it came from, so it is re-addressed, not refused.
		_, delivery := event.LineSeq(line)
		c.v.IgnoreTenantID = c.retarget || delivery
		if err := c.v.Validate(line, c.tenant); err != nil {
			if errors.Is(err, event.ErrTenantMismatch) {
				return "", nil, 0, fmt.Errorf("%w (--retarget publishes it to %s anyway)", err, c.tenant)
			}
			return "", nil, 0, err
		}
		tenant = c.tenant
		if c.v.IgnoreTenantID {
			c.buf = c.v.AppendObject(c.buf[:0], "")
			wire = bytes.TrimRight(c.buf, "\n")
		} else {
			wire = bytes.TrimSpace(line)
		}
	}
	ts = noTimestamp
	if t, ok := c.v.Timestamp(); ok {
		ts = t
	}
	return tenant, wire, ts, nil
}

// readAll reads every input in order and hands each good line to sink, which
// returns false to stop. Bad lines are reported and counted. It returns early
// when the run stops.
func (p *poster) readAll(sink func(it *item) bool) {
	c := &checker{tenant: p.o.Tenant, retarget: p.o.Retarget}
	var it item
	for fi, name := range p.names {
		if p.stopped() {
			return
		}
		r, closeIn, err := p.open(fi)
		if err != nil {
			p.con.printf("tl-post: %v", err)
			p.stats.failedFiles.Add(1)
			continue
		}
		// Blank lines are skipped by the scanner, as by the relay, but
		// counted as read, so that "lines read" agrees with the line
		// numbers of the messages.
		sc := ndjson.NewScanner(r, maxLine)
		counted := 0 // lines of this input added to stats.read
		for sc.Scan() {
			if p.stopped() {
				closeIn()
				return
			}
			p.stats.read.Add(int64(sc.Line() - counted))
			counted = sc.Line()
			n := int64(sc.Line())
			if sc.LineErr() != nil {
				p.refuse(name, n, fmt.Sprintf("line is longer than %d bytes", maxLine))
				continue
			}
			tenant, wire, ts, err := c.check(sc.Bytes())
			if err != nil {
				p.refuse(name, n, err.Error())
				continue
			}
			it = item{tenant: tenant, wire: wire, ts: ts, ref: ref{file: int32(fi), line: n}}
			if !sink(&it) {
				closeIn()
				return
			}
		}
		closeIn()
		p.stats.read.Add(int64(sc.Line() - counted)) // trailing blank lines
		if err := sc.Err(); err != nil && !p.stopped() {
			p.con.printf("tl-post: %s: %v", name, err)
			p.stats.failedFiles.Add(1)
		}
	}
}

// refuse reports a bad line as FILE:LINE: reason.
func (p *poster) refuse(name string, line int64, reason string) {
	p.stats.refused.Add(1)
	p.lineError(fmt.Sprintf("%s:%d: %s", name, line, reason))
}

// lineError prints the message about one bad line, unless --max-errors
// have been printed already: 100 MB of garbage is one problem, not 388,000
// lines of stderr. finish says how many were not shown.
func (p *poster) lineError(msg string) {
	if n := p.lineErrs.Add(1); p.o.MaxErrors == 0 || n <= int64(p.o.MaxErrors) {
		p.con.printf("%s", msg)
	}
}

// open opens input fi; stdin is read through an interruptible descriptor.
func (p *poster) open(fi int) (io.Reader, func(), error) {
	if p.files[fi] == "-" {
		return p.stdin, func() {}, nil
	}
	f, err := os.Open(p.files[fi])
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// where names a line of a batch as FILE:LINE.
func (p *poster) where(r ref) string { return fmt.Sprintf("%s:%d", p.names[r.file], r.line) }

// span names the lines of a batch: FILE:A-B, or FILE1:A-FILE2:B.
func (p *poster) span(refs []ref) string {
	first, last := refs[0], refs[len(refs)-1]
	switch {
	case len(refs) == 1:
		return p.where(first)
	case first.file == last.file:
		return fmt.Sprintf("%s:%d-%d", p.names[first.file], first.line, last.line)
	}
	return p.where(first) + "-" + p.where(last)
}
