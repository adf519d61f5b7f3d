package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// publisher posts events at a fixed rate (open loop): a pacer hands out a
// job every 1/rate*batch seconds to a pool of workers, each with its own
// keep-alive connection. When every worker is busy the pacer waits: the
// relay then made its publishers wait, which the accepted rate shows.
type publisher struct {
	addr     string
	tenants  []string
	rate     float64 // events/s
	batch    int     // events per POST
	workers  int
	events   int             // stop after this many events; 0: run until ctx ends
	secure   bool            // https://
	origin   string          // as a web page of this origin (W): text/plain, Origin, ?key=
	key      string          // the public ingest key, with origin
	accepted []atomic.Uint64 // per tenant
	errors   atomic.Uint64
	lastErr  atomic.Value // string
	hist     hist         // POST latency, merged from the workers
	posts    atomic.Uint64
}

type job struct {
	tenant int
}

// run publishes until ctx ends and returns how long it ran.
func (p *publisher) run(ctx context.Context) time.Duration {
	p.accepted = make([]atomic.Uint64, len(p.tenants))
	jobs := make(chan job) // unbuffered: a busy pool holds the pacer back
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := 0; w < p.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h hist
			p.worker(jobs, &h)
			mu.Lock()
			p.hist.merge(&h)
			mu.Unlock()
		}()
	}
	start := time.Now()
	every := time.Duration(float64(time.Second) * float64(p.batch) / p.rate)
	for i := 0; p.events <= 0 || i*p.batch < p.events; i++ {
		due := start.Add(time.Duration(i) * every)
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- job{tenant: i % len(p.tenants)}:
		case <-ctx.Done():
		}
	}
	el := time.Since(start)
	close(jobs)
	wg.Wait()
	if p.events > 0 {
		el = time.Since(start) // a count, not a time, ended it: until the last answer
	}
	return el
}

func (p *publisher) worker(jobs <-chan job, h *hist) {
	c := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true, TLSClientConfig: clientTLS()},
		Timeout:   30 * time.Second,
	}
	defer c.CloseIdleConnections()
	ct := "application/json"
	if p.batch > 1 {
		ct = "application/x-ndjson"
	}
	query := ""
	if p.origin != "" {
		// What navigator.sendBeacon(url, string) sends.
		ct = "text/plain;charset=UTF-8"
		query = "?key=" + url.QueryEscape(p.key)
	}
	scheme := "http://"
	if p.secure {
		scheme = "https://"
	}
	// The batch is written once; each POST only puts its send time in
	// place (19 digits until 2286), so that building a 1,000-event body
	// costs the generator little beside the relay.
	var body []byte
	var at []int // where each event's sent_ns goes
	for k := 0; k < p.batch; k++ {
		body = fmt.Appendf(body, `{"type":"click","path":"/bench/%d","metadata":{"sent_ns":"`, k%100)
		at = append(at, len(body))
		body = append(body, "0000000000000000000\"}}\n"...)
	}
	for j := range jobs {
		req, err := http.NewRequest(http.MethodPost, scheme+p.addr+"/v1/tenants/"+p.tenants[j.tenant]+"/events"+query, nil)
		if err != nil {
			p.fail(err.Error())
			continue
		}
		req.Header.Set("Content-Type", ct)
		if p.origin != "" {
			req.Header.Set("Origin", p.origin)
		}
		sent := time.Now()
		ns := strconv.AppendInt(make([]byte, 0, 19), sent.UnixNano(), 10)
		for _, i := range at {
			copy(body[i:i+19], ns)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		res, err := c.Do(req)
		if err != nil {
			p.fail(err.Error())
			continue
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		h.add(time.Since(sent))
		p.posts.Add(1)
		if res.StatusCode != http.StatusAccepted {
			p.fail(res.Status)
			continue
		}
		if p.origin != "" && res.Header.Get("Access-Control-Allow-Origin") != p.origin {
			// The page could not read this 202: not a beacon's success.
			p.fail("202 without Access-Control-Allow-Origin")
			continue
		}
		p.accepted[j.tenant].Add(uint64(p.batch))
	}
}

func (p *publisher) fail(msg string) {
	p.errors.Add(1)
	p.lastErr.Store(msg)
}

// pubResult is what a publisher process reports on its stdout.
type pubResult struct {
	Accepted []uint64
	Errors   uint64
	LastErr  string
	Hist     hist
	Elapsed  time.Duration
	CPU      time.Duration
}

// publishChild runs the publisher as a process of its own (this binary
// with -publish), so that the generator's thousands of reading goroutines
// do not delay its POSTs: POST latency is then the relay's, as a separate
// client would see it.
func publishChild(addr string, tenants []string, sc scenario, key string) (*pubResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-publish", addr, "-tenants", strings.Join(tenants, ","),
		"-rate", fmt.Sprint(sc.rate), "-batch", fmt.Sprint(sc.batch),
		"-workers", fmt.Sprint(sc.workers), "-duration", sc.duration.String(),
		"-events", fmt.Sprint(sc.events), fmt.Sprintf("-tls=%v", sc.secure))
	if sc.beacon {
		cmd.Args = append(cmd.Args, "-origin", beaconOrigin, "-key", key)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	var res pubResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	return &res, nil
}

// publishMain is the publisher process: it publishes for d and prints a
// pubResult.
func publishMain(addr, tenants string, rate float64, batch, workers, events int, secure bool, d time.Duration, origin, key string) error {
	p := &publisher{addr: addr, tenants: strings.Split(tenants, ","), rate: rate, batch: batch, workers: workers, events: events, secure: secure,
		origin: origin, key: key}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cpu0 := selfCPU()
	el := p.run(ctx)
	res := pubResult{Errors: p.errors.Load(), Hist: p.hist, Elapsed: el, CPU: selfCPU() - cpu0}
	if v, ok := p.lastErr.Load().(string); ok {
		res.LastErr = v
	}
	for i := range p.accepted {
		res.Accepted = append(res.Accepted, p.accepted[i].Load())
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
