// Package ndjson reads newline-delimited JSON: lines numbered from 1, blank
// lines skipped, a UTF-8 byte order mark at the start of the input ignored
// (as jq does: editors on Windows write one), and a line over the size limit reported by its number and
// skipped without buffering it, so one huge line neither kills the scan (the
// bufio.Scanner 64 KiB trap) nor costs more memory than the limit.
package ndjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// initialBuf is the first buffer size: most lines are a few hundred bytes,
// and the buffer grows to the limit only when a line needs it.
const initialBuf = 4096

// LineTooLongError reports a line over the scanner's limit.
type LineTooLongError struct {
	Line int // 1-based
	Max  int
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("line %d: longer than %d bytes", e.Line, e.Max)
}

// BOM is the UTF-8 byte order mark. At the very start of an input it is
// not part of the first line (RFC 8259 lets a parser ignore it; jq does).
const BOM = "\xef\xbb\xbf"

// Scanner reads lines. Use it like bufio.Scanner:
//
//	for sc.Scan() {
//		if err := sc.LineErr(); err != nil { ...; continue }
//		use(sc.Line(), sc.Bytes())
//	}
//	if err := sc.Err(); err != nil { ... }
type Scanner struct {
	r   io.Reader
	max int

	buf        []byte
	start, end int // unread bytes are buf[start:end]
	searched   int // buf[start:searched] holds no newline
	discarding bool
	bomDone    bool // the input's first bytes were checked for a BOM
	eof        bool
	err        error

	line    int // number of the last line consumed
	tok     []byte
	lineErr error
}

// NewScanner returns a Scanner over r for lines of at most max bytes (not
// counting the "\n" or "\r\n" that ends them).
func NewScanner(r io.Reader, max int) *Scanner {
	s := &Scanner{max: max}
	s.Reset(r)
	return s
}

// Reset makes s read r from its first line, keeping its buffer.
func (s *Scanner) Reset(r io.Reader) {
	*s = Scanner{r: r, max: s.max, buf: s.buf[:0]}
}

// Scan advances to the next non-blank line, or to an over-long line (then
// LineErr is set and Bytes is nil). It returns false at the end of the input
// or on a read error (see Err).
func (s *Scanner) Scan() bool {
	s.tok, s.lineErr = nil, nil
	for {
		if !s.bomDone {
			// Decide as soon as the bytes read are not a strict prefix
			// of the mark, so a quiet pipe is not waited on for more.
			head := s.buf[s.start:s.end]
			if len(head) < len(BOM) && strings.HasPrefix(BOM, string(head)) && !s.eof && s.err == nil {
				s.fill()
				continue
			}
			s.bomDone = true
			if bytes.HasPrefix(head, []byte(BOM)) {
				s.start += len(BOM)
				s.searched = s.start
			}
		}
		if i := bytes.IndexByte(s.buf[s.searched:s.end], '\n'); i >= 0 {
			nl := s.searched + i
			tok := s.buf[s.start:nl]
			s.start, s.searched = nl+1, nl+1
			s.line++
			if s.discarding {
				s.discarding = false
				s.lineErr = &LineTooLongError{Line: s.line, Max: s.max}
				return true
			}
			if s.yield(tok) {
				return true
			}
			continue
		}
		s.searched = s.end
		if s.discarding {
			s.start, s.end, s.searched = 0, 0, 0
		} else if s.end-s.start > s.max+1 { // +1: room for a "\r"
			s.discarding = true
			s.start, s.end, s.searched = 0, 0, 0
		}
		if s.eof || s.err != nil {
			if s.discarding {
				s.discarding = false
				s.line++
				s.lineErr = &LineTooLongError{Line: s.line, Max: s.max}
				return true
			}
			if s.err == nil && s.start < s.end {
				tok := s.buf[s.start:s.end]
				s.start = s.end
				s.line++
				if s.yield(tok) {
					return true
				}
			}
			return false
		}
		s.fill()
	}
}

// yield sets the current line to tok unless it is blank, and reports
// whether it did.
func (s *Scanner) yield(tok []byte) bool {
	tok = bytes.TrimSuffix(tok, []byte{'\r'})
	if len(tok) > s.max {
		s.lineErr = &LineTooLongError{Line: s.line, Max: s.max}
		return true
	}
	for _, c := range tok {
		if c != ' ' && c != '\t' && c != '\r' {
			s.tok = tok
			return true
		}
	}
	return false
}

// fill reads more input, making room first.
func (s *Scanner) fill() {
	if s.start > 0 {
		n := copy(s.buf[:cap(s.buf)], s.buf[s.start:s.end])
		s.searched -= s.start
		s.start, s.end = 0, n
	}
	if s.end == cap(s.buf) {
		size := max(initialBuf, 2*cap(s.buf))
		if limit := s.max + 2; size > limit && cap(s.buf) < limit {
			size = limit
		}
		nb := make([]byte, size)
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	s.buf = s.buf[:cap(s.buf)]
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if err != nil {
		if errors.Is(err, io.EOF) {
			s.eof = true
		} else {
			s.err = err
		}
	}
}

// Buffered returns the size of the scanner's buffer: memory it holds.
func (s *Scanner) Buffered() int { return cap(s.buf) }

// Bytes returns the current line without its line ending. It is valid
// until the next call to Scan.
func (s *Scanner) Bytes() []byte { return s.tok }

// Line returns the current line's 1-based number.
func (s *Scanner) Line() int { return s.line }

// LineErr returns a *LineTooLongError when the current line was over the
// limit, else nil.
func (s *Scanner) LineErr() error { return s.lineErr }

// Err returns the first read error other than io.EOF.
func (s *Scanner) Err() error { return s.err }
