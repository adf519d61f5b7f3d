// Command benchpost is the load generator of scripts/bench-durable.sh: it
// POSTs NDJSON batches to a relay from several concurrent clients and
// prints the events per second acknowledged (202).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8787", "relay URL")
	tenant := flag.String("tenant", "bench", "tenant")
	clients := flag.Int("clients", 8, "concurrent clients")
	batch := flag.Int("batch", 1000, "events per POST")
	total := flag.Int("events", 400_000, "events to send in all")
	flag.Parse()

	var body bytes.Buffer
	for i := 0; i < *batch; i++ {
		fmt.Fprintf(&body, `{"type":"click","path":"/checkout/%d","metadata":{"button":"buy","n":"%d"}}`+"\n", i%50, i)
	}
	posts := *total / *batch
	var next, failed atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: *clients}
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(posts) {
				resp, err := client.Post(*url+"/v1/tenants/"+*tenant+"/events", "application/x-ndjson", bytes.NewReader(body.Bytes()))
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(os.Stderr, "benchpost: %d of %d posts failed\n", f, posts)
		os.Exit(1)
	}
	fmt.Printf("%.0f\n", float64(posts**batch)/el.Seconds())
}
