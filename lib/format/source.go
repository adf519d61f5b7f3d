package format

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tl-sh/tl/lib/internal/ndjson"
)

// source reads the lines of the inputs (the files in turn, or stdin).
type source struct {
	stdin  io.Reader
	files  []string
	next   int
	f      *os.File
	br     *bufio.Reader
	name   string // current input, "" for stdin
	lineNo int    // number of the line last returned
	long   []byte // a line longer than the reader's buffer, assembled
	// report receives a problem with the input: an unreadable file (open) or
	// an over-long line.
	report func(msg string, open bool)
	// beforeBlock, when set, is called before a read that may block.
	beforeBlock func()
}

func newSource(stdin io.Reader, files []string, report func(string, bool)) *source {
	s := &source{stdin: stdin, files: files, report: report}
	if len(files) == 0 {
		s.br = bufio.NewReaderSize(stdin, readBufSize)
	}
	return s
}

// ready reports whether a whole line is buffered, so that the next call
// does not read.
func (s *source) ready() bool {
	if s.br == nil {
		return false
	}
	n := s.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := s.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// line returns the next line without its newline; it is valid until the
// next call. At the end of every input it returns io.EOF.
func (s *source) line() ([]byte, error) {
	for {
		if s.br == nil && !s.open() {
			return nil, io.EOF
		}
		if s.beforeBlock != nil && !s.ready() {
			s.beforeBlock()
		}
		b, err := s.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(s.long)+len(b) > maxLine {
				s.skipRest()
				continue
			}
			s.long = append(s.long, b...)
			continue
		}
		if len(s.long) > 0 {
			if len(s.long)+len(b) > maxLine {
				s.long = s.long[:0]
				s.lineNo++
				s.report(fmt.Sprintf("%s:%d: line longer than %d MiB, skipped", displayName(s.name), s.lineNo, maxLine>>20), false)
				if err != nil {
					s.endInput(err)
				}
				continue
			}
			s.long = append(s.long, b...)
			b = s.long
			s.long = s.long[:0]
		}
		if len(b) > 0 {
			if s.lineNo == 0 {
				// A byte order mark starts the input, not its first
				// line: jq ignores it, and so does lib/internal/ndjson.
				b = bytes.TrimPrefix(b, []byte(ndjson.BOM))
			}
			s.lineNo++
			if b[len(b)-1] == '\n' {
				b = b[:len(b)-1]
			}
			if err != nil && err != io.EOF {
				s.endInput(err)
			} else if err == io.EOF {
				s.endInput(nil)
			}
			return b, nil
		}
		if err == nil {
			continue
		}
		s.endInput(err)
		if len(s.files) == 0 {
			return nil, io.EOF
		}
	}
}

// skipRest discards the rest of an over-long line.
func (s *source) skipRest() {
	s.long = s.long[:0]
	s.lineNo++
	s.report(fmt.Sprintf("%s:%d: line longer than %d MiB, skipped", displayName(s.name), s.lineNo, maxLine>>20), false)
	for {
		_, err := s.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			s.endInput(err)
		} else if err == io.EOF {
			s.endInput(nil)
		}
		return
	}
}

// open moves to the next file; false when there is none.
func (s *source) open() bool {
	for s.next < len(s.files) {
		name := s.files[s.next]
		s.next++
		var r io.Reader
		if name == "-" {
			r, s.f = s.stdin, nil
		} else {
			f, err := os.Open(name)
			if err != nil {
				s.report(fmt.Sprintf("could not open %s: %v", name, errors.Unwrap(err)), true)
				continue
			}
			r, s.f = f, f
		}
		s.name, s.lineNo = name, 0
		s.br = bufio.NewReaderSize(r, readBufSize)
		return true
	}
	return false
}

// endInput closes the current input, reporting a read error.
func (s *source) endInput(err error) {
	if err != nil && err != io.EOF {
		s.report(fmt.Sprintf("reading %s: %v", displayName(s.name), err), true)
	}
	if len(s.files) == 0 {
		// stdin: keep the reader so that further calls see EOF again.
		return
	}
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.br = nil
}
