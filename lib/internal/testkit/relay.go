package testkit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The "start a relay and read its listening line" helper of the tests that
// run the tl-relay binary (lib/e2e: the Go tests and the scripts'
// relay-start). scripts/internal/relayproc, the benchmark tools' starter,
// cannot import this package (lib/internal is lib's alone), nor can lib/e2e
// import it (scripts/internal is scripts' alone): it keeps its own copy of
// ListenURL's parsing (relayproc.AddrIn).

// listening precedes the URL on tl-relay's first stderr line:
// "tl-relay: listening on http://127.0.0.1:PORT".
const listening = "listening on "

// ListenURL returns the URL a "listening on URL" line names.
func ListenURL(line string) (string, bool) {
	i := strings.Index(line, listening)
	if i < 0 {
		return "", false
	}
	return strings.TrimSpace(line[i+len(listening):]), true
}

// ErrExited: the relay ended before it named its address.
var ErrExited = errors.New("tl-relay exited before listening")

// RelayProc is a tl-relay process started by StartRelay.
type RelayProc struct {
	Cmd  *exec.Cmd
	URL  string        // from the listening line
	Done chan struct{} // closed once the process has exited and its stderr has been read
}

// StartRelay starts cmd, a tl-relay whose stderr it takes (cmd.Stderr must
// be unset), and waits up to wait for its listening line. Each stderr line
// goes to log, then to onLine when not nil (called in the reading
// goroutine, after the line is in log). On a timeout (the error says so) or
// ErrExited the process is left as it is: the caller kills it or reports
// what it logged; p is nil only when the process did not start.
func StartRelay(cmd *exec.Cmd, log io.Writer, onLine func(string), wait time.Duration) (*RelayProc, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		return nil, err
	}
	pw.Close()
	p := &RelayProc{Cmd: cmd, Done: make(chan struct{})}
	urlc := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if onLine != nil {
				onLine(line)
			}
			if url, ok := ListenURL(line); ok && !sent {
				urlc <- url
				sent = true
			}
		}
		io.Copy(log, pr) // the rest, after a line too long to scan
	}()
	go func() {
		cmd.Wait()
		<-copied
		close(p.Done)
	}()
	select {
	case p.URL = <-urlc:
		return p, nil
	case <-p.Done:
		return p, fmt.Errorf("%w (%v)", ErrExited, cmd.ProcessState)
	case <-time.After(wait):
		return p, fmt.Errorf("tl-relay did not report its address within %v", wait)
	}
}
