package testkit

import (
	"crypto/x509"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestSyncBuffer writes from several goroutines while reading; the race
// detector checks the locking.
func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
			}
		})
	}
	WaitFor(t, "some writes", func() bool { return len(b.String()) > 0 })
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 400) {
		t.Errorf("got %d bytes, want 400 x", len(got))
	}
}

func TestSeqRange(t *testing.T) {
	tests := []struct {
		from, to uint64
		want     []uint64
	}{
		{1, 3, []uint64{1, 2, 3}},
		{5, 5, []uint64{5}},
		{6, 5, nil},
	}
	for _, tt := range tests {
		if got := SeqRange(tt.from, tt.to); !slices.Equal(got, tt.want) {
			t.Errorf("SeqRange(%d, %d) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

// TestUntrustedTLSServer: an ordinary client refuses the certificate after
// one connection; the server's own client gets through.
func TestUntrustedTLSServer(t *testing.T) {
	srv, conns := UntrustedTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tr := &http.Transport{} // trusts only the system roots
	defer tr.CloseIdleConnections()
	_, err := (&http.Client{Transport: tr}).Get(srv.URL)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("plain client: %v, want an unknown authority", err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatalf("the server's own client: %v", err)
	}
	res.Body.Close()
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}
