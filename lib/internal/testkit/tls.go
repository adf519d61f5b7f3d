package testkit

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// UntrustedTLSServer starts an HTTPS server for h whose certificate does not
// verify for an ordinary client: httptest signs it with a throw-away CA that
// only srv.Client() trusts. It is for testing how a client meets a relay it
// must not trust. conns counts the connections made to it, so a test can
// tell one attempt from a retry. The server closes when the test ends.
func UntrustedTLSServer(t testing.TB, h http.Handler) (srv *httptest.Server, conns *atomic.Int32) {
	t.Helper()
	conns = new(atomic.Int32)
	srv = httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	// Every handshake is meant to fail; the server's log of it is noise.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, conns
}
