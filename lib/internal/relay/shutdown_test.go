package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// TestGracefulShutdown: draining turns /readyz 503 and refuses new
// connections; an in-flight POST finishes; every subscriber receives
// everything accepted and then a 1001 close (the chunked one an end of
// stream); no goroutine is left (startRelay's cleanup checks).
func TestGracefulShutdown(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})
		ws := r.dial("acme", "")
		ws.hello()
		res, err := http.Get(r.url + "/v1/tenants/acme/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		r.mustPost("acme", clicks(1, 5))

		// A POST whose body is still arriving when the drain starts.
		pr, pw := io.Pipe()
		posted := make(chan string, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, r.url+"/v1/tenants/acme/events", pr)
			req.Header.Set("Content-Type", "application/x-ndjson")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				posted <- err.Error()
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			posted <- res.Status + " " + string(b)
		}()
		pw.Write(clicks(6, 2))
		testkit.WaitFor(t, "the POST in flight", func() bool {
			r.s.mu.Lock()
			defer r.s.mu.Unlock()
			return r.s.posts == 1
		})

		stopped := r.shutdownAsync(20 * time.Second)
		testkit.WaitFor(t, "/readyz 503", func() bool {
			rec := httptest.NewRecorder()
			r.s.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			return rec.Code == 503
		})
		rec := httptest.NewRecorder()
		r.s.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/tenants/acme/events", strings.NewReader("{}")))
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
			t.Errorf("POST while draining: %d %v", rec.Code, rec.Header())
		}
		rec = httptest.NewRecorder()
		r.s.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/tenants/acme/stream", nil))
		if rec.Code != 503 {
			t.Errorf("subscribe while draining: %d", rec.Code)
		}
		testkit.WaitFor(t, "new connections refused", func() bool {
			c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
			if err == nil {
				c.Close()
			}
			return err != nil
		})

		pw.Write(clicks(8, 3))
		pw.Close()
		if got := <-posted; !strings.HasPrefix(got, "202 ") || !strings.Contains(got, `"first_seq":6,"last_seq":10`) {
			t.Fatalf("in-flight POST: %s", got)
		}
		ws.wantSeqs(testkit.SeqRange(1, 10)...)
		_, err = ws.next(20 * time.Second)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("after the last event: %v, want a 1001 close", err)
		}
		all, err := io.ReadAll(res.Body)
		if err != nil {
			t.Errorf("chunked stream: %v", err)
		}
		var seqs []uint64
		for _, l := range bytes.Split(bytes.TrimSpace(all), []byte("\n")) {
			s, ok := event.LineSeq(l)
			if !ok {
				t.Fatalf("chunked stream line %q", l)
			}
			seqs = append(seqs, s)
		}
		if got, _ := json.Marshal(seqs); string(got) != "[1,2,3,4,5,6,7,8,9,10]" {
			t.Errorf("chunked stream got %s", got)
		}
		if err := <-stopped; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// TestShutdownTimeout: a subscriber that never reads cannot hold the relay
// past the drain timeout.
func TestShutdownTimeout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		r := e.start(t, Config{})
		c, _, err := smallBufDialer().Dial(r.ws+"/v1/tenants/acme/stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		blob := strings.Repeat("y", 60000)
		for i := 0; i < 200; i++ { // 12 MB the client never reads
			r.mustPost("acme", []byte(`{"type":"custom","path":"/","metadata":{"b":"`+blob+`"}}`))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := r.s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want the deadline", err)
		}
	})
}
