// Command relayload measures a tl-relay binary on loopback: events/s
// ingested from one client posting 1,000-event batches (ingest), deliveries/s
// to many subscribers of one tenant (fanout), and memory per idle subscriber
// (idle). It starts the relay itself, so it can read the relay's RSS.
//
//	go run ./scripts/relayload -relay bin/tl-relay -mode ingest -duration 5s
//	go run ./scripts/relayload -relay bin/tl-relay -mode fanout -subs 1000
//	go run ./scripts/relayload -relay bin/tl-relay -mode idle -subs 10000
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/scripts/internal/relayproc"
)

func main() {
	relayBin := flag.String("relay", "bin/tl-relay", "the tl-relay binary")
	mode := flag.String("mode", "ingest", "ingest, fanout or idle")
	subs := flag.Int("subs", 1000, "subscribers (fanout, idle)")
	batch := flag.Int("batch", 1000, "events per POST")
	duration := flag.Duration("duration", 5*time.Second, "how long to publish")
	flag.Parse()
	if err := run(*relayBin, *mode, *subs, *batch, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "relayload:", err)
		os.Exit(1)
	}
}

// body returns n sample events as NDJSON (~150 bytes each).
func body(n int) []byte {
	var b bytes.Buffer
	types := []string{"pageview", "pageview", "pageview", "click", "click", "custom"}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"timestamp":%d,"type":"%s","path":"/page/%d","metadata":{"session":"s%06x","country":"JP"}}`+"\n",
			1795824000000+int64(i), types[i%len(types)], i%50, i*7919)
	}
	return b.Bytes()
}

func post(c *http.Client, url string, b []byte) error {
	res, err := c.Post(url, "application/x-ndjson", bytes.NewReader(b))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 202 {
		return fmt.Errorf("POST: %s", res.Status)
	}
	return nil
}

// publish posts batches to tenant until ctx ends and returns the events sent.
func publish(ctx context.Context, addr, tenant string, batch int) (int, error) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	url := "http://" + addr + "/v1/tenants/" + tenant + "/events"
	b := body(batch)
	n := 0
	for ctx.Err() == nil {
		if err := post(c, url, b); err != nil {
			return n, err
		}
		n += batch
	}
	return n, nil
}

func run(bin, mode string, subs, batch int, d time.Duration) error {
	switch mode {
	case "ingest":
		r, err := relayproc.Start(bin, "--log-level", "warn")
		if err != nil {
			return err
		}
		defer r.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		start := time.Now()
		n, err := publish(ctx, r.Addr, "acme", batch)
		el := time.Since(start)
		fmt.Printf("ingest\t%d-event batches, 1 client\t%.0f events/s\t(%d events in %.1fs)\n", batch, float64(n)/el.Seconds(), n, el.Seconds())
		return err
	case "fanout":
		r, err := relayproc.Start(bin, "--log-level", "warn")
		if err != nil {
			return err
		}
		defer r.Stop()
		var lines, gaps atomic.Int64
		conns, err := dialMany(r.Addr, "acme", subs)
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					_, rd, err := c.NextReader()
					if err != nil {
						return
					}
					var buf [32 << 10]byte
					for {
						k, err := rd.Read(buf[:])
						n := bytes.Count(buf[:k], []byte("\n"))
						lines.Add(int64(n))
						if bytes.Contains(buf[:k], []byte(`"control":"gap"`)) {
							gaps.Add(1)
						}
						if err != nil {
							break
						}
					}
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)
		base := lines.Load() // the hello lines
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		start := time.Now()
		n, err := publish(ctx, r.Addr, "acme", batch)
		// Let the subscribers catch up on what was accepted (or give up).
		want := base + int64(n)*int64(len(conns))
		deadline := time.Now().Add(30 * time.Second)
		for lines.Load()-gaps.Load() < want && time.Now().Before(deadline) && gaps.Load() == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		el := time.Since(start)
		got := lines.Load() - base
		fmt.Printf("fanout\t%d subscribers, 1 tenant\t%.0f deliveries/s\t(%d events published, %d lines delivered in %.1fs, %d gap lines)\n",
			len(conns), float64(got)/el.Seconds(), n, got, el.Seconds(), gaps.Load())
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
		return err
	case "idle":
		r, err := relayproc.Start(bin, "--log-level", "warn", "--max-subscribers", strconv.Itoa(subs+100), "--max-tenant-subscribers", strconv.Itoa(subs+100))
		if err != nil {
			return err
		}
		defer r.Stop()
		// Warm up the relay's heap and code paths with a few subscribers.
		warm, err := dialMany(r.Addr, "acme", 50)
		if err != nil {
			return err
		}
		time.Sleep(time.Second)
		before := r.RSSKiB()
		conns, err := dialMany(r.Addr, "acme", subs)
		if err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		after := r.RSSKiB()
		fmt.Printf("idle\t%d idle subscribers\t%.1f KiB RSS each\t(relay RSS %d MiB -> %d MiB)\n",
			len(conns), float64(after-before)/float64(len(conns)), before/1024, after/1024)
		for _, c := range append(conns, warm...) {
			c.Close()
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// dialMany opens n WebSocket subscribers, spreading their source addresses
// over 127.0.0.2.. so that ephemeral ports never run out, and reads each
// hello line.
func dialMany(addr, tenant string, n int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	sem := make(chan struct{}, 64)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			src := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+(i/20000)), byte(2+i%250))}
			d := websocket.Dialer{
				NetDial: func(network, a string) (net.Conn, error) {
					return (&net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}).Dial(network, a)
				},
				ReadBufferSize:  4096,
				WriteBufferSize: 256,
			}
			c, _, err := d.Dial("ws://"+addr+"/v1/tenants/"+tenant+"/stream", nil)
			if err != nil {
				select {
				case errc <- fmt.Errorf("subscriber %d: %w", i, err):
				default:
				}
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		for _, c := range conns {
			c.Close()
		}
		return nil, err
	default:
	}
	return conns, nil
}
