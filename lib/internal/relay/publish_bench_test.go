package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkPublish measures the POST path over real loopback sockets on
// keep-alive connections, as a publisher sees it: one event per request
// (the per-request cost: routing, limits, validation, append) and batches
// of 1,000 events (the per-event cost). Run it before and after a change to
// the path with -count 10 and compare with benchstat.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			benchPublish(b, n)
		})
	}
}

func benchPublish(b *testing.B, events int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-served
	}()
	var body bytes.Buffer
	for i := range events {
		fmt.Fprintf(&body, `{"type":"click","path":"/checkout/%d","metadata":{"button":"buy","n":"%d"}}`+"\n", i%50, i)
	}
	url := "http://" + l.Addr().String() + "/v1/tenants/bench/events"
	// Two clients in parallel, each on its own keep-alive connection, so
	// that the relay's side (not the client's round trip) is what counts.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer hc.CloseIdleConnections()
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := hc.Post(url, "application/x-ndjson", bytes.NewReader(body.Bytes()))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPublishHandler measures the same POSTs through the relay's
// handler in-process (no sockets, no client): the relay's own CPU and
// allocations per request, steadier than the loopback run on a busy
// machine.
func BenchmarkPublishHandler(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			s := New(Config{})
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s.Shutdown(ctx)
			}()
			var body bytes.Buffer
			for i := range n {
				fmt.Fprintf(&body, `{"type":"click","path":"/checkout/%d","metadata":{"button":"buy","n":"%d"}}`+"\n", i%50, i)
			}
			b.SetBytes(int64(body.Len()))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/v1/tenants/bench/events", bytes.NewReader(body.Bytes()))
				req.Header.Set("Content-Type", "application/x-ndjson")
				w := httptest.NewRecorder()
				s.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
