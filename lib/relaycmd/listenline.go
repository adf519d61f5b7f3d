package relaycmd

import (
	"fmt"
	"io"
	"strings"
)

// tl-relay names its addresses on stderr before anything else, so that a
// script or a test that started it on port 0 can find it:
//
//	tl-relay: listening on http://127.0.0.1:PORT
//	tl-relay: admin on http://127.0.0.1:PORT      (with --admin-listen)
//
// The writer and the readers (the end-to-end tests, the benchmark tools)
// share these functions, so the line has one format.
const (
	listenPrefix = "tl-relay: listening on "
	adminPrefix  = "tl-relay: admin on "
)

func printListen(w io.Writer, scheme, addr string) {
	fmt.Fprintf(w, "%s%s://%s\n", listenPrefix, scheme, addr)
}

func printAdmin(w io.Writer, scheme, addr string) {
	fmt.Fprintf(w, "%s%s://%s\n", adminPrefix, scheme, addr)
}

// ListenURL returns the URL that tl-relay's listening line names, and false
// for any other line.
func ListenURL(line string) (string, bool) { return urlAfter(line, listenPrefix) }

// AdminURL returns the URL that tl-relay's admin line names, and false for
// any other line.
func AdminURL(line string) (string, bool) { return urlAfter(line, adminPrefix) }

func urlAfter(line, prefix string) (string, bool) {
	u, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
	if !ok || !strings.Contains(u, "://") {
		return "", false
	}
	return u, true
}
