package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/tl-sh/tl/lib/relaycmd"
)

// launchRelay is the one "start tl-relay and read its listening line"
// helper of the end-to-end tests (the Go tests and the scripts'
// relay-start). The line's format belongs to lib/relaycmd, which writes it
// and reads it back for us and for the benchmark tools
// (scripts/internal/relayproc).

// errExited: the relay ended before it named its address.
var errExited = errors.New("tl-relay exited before listening")

// launched is a tl-relay process started by launchRelay.
type launched struct {
	Cmd  *exec.Cmd
	URL  string        // from the listening line
	Done chan struct{} // closed once the process has exited and its stderr has been read
}

// launchRelay starts cmd, a tl-relay whose stderr it takes (cmd.Stderr must
// be unset), and waits up to wait for its listening line. Each stderr line
// goes to log, then to onLine when not nil (called in the reading
// goroutine, after the line is in log). On a timeout (the error says so) or
// errExited the process is left as it is: the caller kills it or reports
// what it logged; p is nil only when the process did not start.
func launchRelay(cmd *exec.Cmd, log io.Writer, onLine func(string), wait time.Duration) (*launched, error) {
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
	p := &launched{Cmd: cmd, Done: make(chan struct{})}
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
			if url, ok := relaycmd.ListenURL(line); ok && !sent {
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
		return p, fmt.Errorf("%w (%v)", errExited, cmd.ProcessState)
	case <-time.After(wait):
		return p, fmt.Errorf("tl-relay did not report its address within %v", wait)
	}
}
