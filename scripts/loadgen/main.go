// Command loadgen is tl-relay's fan-out benchmark (make bench runs it from
// scripts/bench-fanout.sh). For each scenario it starts a fresh tl-relay on
// a free loopback port, connects its subscribers (its own minimal WebSocket
// client, spread over 127.0.0.x source addresses), publishes, waits for the
// deliveries and prints one row of a table:
//
//	0  no subscribers, 500 events/s posted one by one (the control)
//	A  10,000 subscribers over 100 tenants, 500 events/s posted one by one
//	B  10,000 subscribers on one tenant, 500 events/s (5M deliveries/s asked)
//	C  1,000 subscribers on one tenant, batched publishes at a high rate
//	D  19,900 idle subscribers: RSS per subscriber
//
// and, only when named in -only:
//
//	I  ingest: no subscribers, 1,000-event POSTs from one client as fast
//	   as the relay answers them (bench-relay.sh; with -workers 8 -events N
//	   -relay-args --data-dir, bench-durable.sh)
//	F  fan-out at full speed: 1,000 subscribers on one tenant, 1,000-event
//	   POSTs as fast as the relay answers them (bench-relay.sh)
//	W  web beacons: what navigator.sendBeacon sends (issue 19), as fast as
//	   the relay answers: one event per POST, text/plain, an Origin header,
//	   a public ingest key in ?key=, 16 keep-alive connections
//	   (bench-beacon.sh). The relay gets --tokens with the key and
//	   --ingest-rate 1000000: the generator is one client address, which
//	   the default limit per address (10 events/s) would hold to a trickle.
//
// -tls runs the scenarios over TLS (https:// and wss://, a throw-away
// certificate made at run time): every --tls-cert deployment's streams are
// served by the relay's goroutine engine, not by its hubs. The publisher's
// flags (-rate, -batch, -workers, -duration, -events) and -subs, given,
// override the scenarios' own.
//
// Every event carries its send time (metadata.sent_ns); latency is from the
// POST being sent to the line being read. Server CPU and RSS come from
// /proc; the generator's own CPU is shown beside them, since both share the
// machine.
//
//	go run ./scripts/loadgen -relay bin/tl-relay            # A-D
//	go run ./scripts/loadgen -relay bin/tl-relay -quick -only C
//	go run ./scripts/loadgen -only C -cpuprofile /tmp/c.pprof  # the relay's profile
//	go run ./scripts/loadgen -tls -only AC                      # A and C over wss://
//	go run ./scripts/loadgen -only I -workers 8 -events 400000   # ingest rate
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/tl-sh/tl/scripts/internal/relayproc"
)

// scenario is one row of the table.
type scenario struct {
	name     string
	what     string
	subs     int
	tenants  int
	rate     float64 // events/s over all tenants
	batch    int     // events per POST
	workers  int     // concurrent POSTs
	duration time.Duration
	bufSize  int      // each subscriber's read buffer
	sample   int      // every sample-th subscriber records latency
	idle     bool     // D: no publishing, RSS per subscriber
	args     []string // extra relay flags
	events   int      // stop publishing after this many events (0: after duration)
	secure   bool     // over TLS (-tls)
	pin      string   // -relay-cpus: the relay runs on these CPUs only
	extra    bool     // run only when named in -only
	beacon   bool     // W: CORS text/plain POSTs with a public ingest key
}

func scenarios(quick bool) []scenario {
	d := 10 * time.Second
	a, b, c, idle := 10_000, 10_000, 1_000, 19_900
	tenants := 100
	if quick {
		d = 3 * time.Second
		a, b, c, idle, tenants = 2_000, 2_000, 200, 2_000, 20
	}
	return []scenario{
		// 0 is the control: the same POSTs with nobody subscribed, the
		// floor that the machine itself puts under A's and B's latencies.
		{name: "0", what: "no subscribers, 500 ev/s single POSTs",
			tenants: 1, rate: 500, batch: 1, workers: 16, duration: d},
		{name: "A", what: fmt.Sprintf("%d subs / %d tenants, 500 ev/s single POSTs", a, tenants),
			subs: a, tenants: tenants, rate: 500, batch: 1, workers: 16, duration: d, bufSize: 4 << 10, sample: 1},
		// B's history holds 2 s of events: a subscriber further behind
		// falls out of it and is told so in a gap line.
		{name: "B", what: fmt.Sprintf("%d subs / 1 tenant, 500 ev/s single POSTs", b),
			subs: b, tenants: 1, rate: 500, batch: 1, workers: 16, duration: d, bufSize: 16 << 10, sample: max(1, b/500),
			args: []string{"--history-events", "1000"}},
		{name: "C", what: fmt.Sprintf("%d subs / 1 tenant, 2,000 ev/s in 20-event POSTs", c),
			subs: c, tenants: 1, rate: 2000, batch: 20, workers: 4, duration: d, bufSize: 64 << 10, sample: max(1, c/250)},
		{name: "D", what: fmt.Sprintf("%d idle subs / 1 tenant", idle),
			subs: idle, tenants: 1, idle: true, bufSize: 512},
		// I and F are closed loops: a rate no relay reaches makes every
		// POST go as soon as the one before it is answered.
		{name: "I", what: "ingest, 1,000-event POSTs, closed loop", extra: true,
			tenants: 1, rate: 1e9, batch: 1000, workers: 1, duration: d / 2},
		{name: "F", what: fmt.Sprintf("%d subs / 1 tenant, 1,000-event POSTs, closed loop", c), extra: true,
			subs: c, tenants: 1, rate: 1e9, batch: 1000, workers: 1, duration: d / 2, bufSize: 64 << 10, sample: max(1, c/250)},
		{name: "W", what: "beacons: 1-event CORS POSTs, ingest key, closed loop", extra: true, beacon: true,
			tenants: 1, rate: 1e9, batch: 1, workers: 16, duration: d / 2,
			args: []string{"--ingest-rate", fmt.Sprint(beaconIngestRate)}},
	}
}

func main() {
	bin := flag.String("relay", "bin/tl-relay", "the tl-relay `binary`")
	quick := flag.Bool("quick", false, "small and short (make bench-quick)")
	only := flag.String("only", "", "run only these `scenarios` (e.g. 0AC)")
	cpuprofile := flag.String("cpuprofile", "", "save the relay's CPU profile of the publishing window to `file` (one scenario)")
	memstats := flag.Bool("memstats", false, "print the relay's Go memory statistics with the idle subscribers (D) to stderr")
	drain := flag.Duration("drain", 15*time.Second, "after publishing, wait at most this long for every delivery")
	// The publisher process's flags (see publishChild).
	pubAddr := flag.String("publish", "", "be the publisher process: post to the relay at `host:port`")
	pubTenants := flag.String("tenants", "", "publisher: comma-separated tenants, posted to in turn")
	pubRate := flag.Float64("rate", 500, "publisher: events/s")
	pubBatch := flag.Int("batch", 1, "publisher: events per POST")
	pubWorkers := flag.Int("workers", 16, "publisher: concurrent POSTs")
	pubDuration := flag.Duration("duration", 10*time.Second, "publisher: how long")
	pubEvents := flag.Int("events", 0, "publisher: stop after this many events (0: after -duration)")
	pubOrigin := flag.String("origin", "", "publisher: send as a web page of `origin` would (W): text/plain, Origin, the key of -key")
	pubKey := flag.String("key", "", "publisher: the public ingest `key` to send in ?key= (with -origin)")
	secure := flag.Bool("tls", false, "run the scenarios over TLS (https://, wss://) with a throw-away certificate")
	subsN := flag.Int("subs", 0, "subscribers, overriding the scenarios' own")
	relayCPUs := flag.String("relay-cpus", "", "run the relay on these `cpus` only (taskset -c); run loadgen itself under taskset on the others")
	relayArgs := flag.String("relay-args", "", "extra `flags` for every relay, space-separated (e.g. \"--broker redis://127.0.0.1:6379/0\")")
	results := flag.String("results", "", "also append each row as a line of key=value fields to `file` (make bench's summary)")
	flag.Parse()
	if *pubAddr != "" {
		if err := publishMain(*pubAddr, *pubTenants, *pubRate, *pubBatch, *pubWorkers, *pubEvents, *secure, *pubDuration, *pubOrigin, *pubKey); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: publisher:", err)
			os.Exit(1)
		}
		return
	}
	lim, err := raiseFileLimit()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: raising the open files limit:", err)
	}
	if *quick {
		*drain = 5 * time.Second
	}
	fmt.Printf("%-3s %-42s %21s %9s %5s %11s %8s %8s %8s %8s %9s %9s %7s %8s %7s  %s\n",
		"", "scenario", "delivered/expected", "gaps", "lost", "deliv/s", "p50", "p95", "p99", "max",
		"posted/s", "POST p99", "relayCPU", "relayRSS", "genCPU", "note")
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	failed := false
	for _, sc := range scenarios(*quick) {
		if *only != "" && !strings.Contains(strings.ToUpper(*only), sc.name) || *only == "" && sc.extra {
			continue
		}
		if set["subs"] && sc.subs > 0 {
			sc.what = strings.Replace(sc.what, fmt.Sprint(sc.subs), fmt.Sprint(*subsN), 1)
			sc.subs = *subsN
		}
		if set["rate"] {
			sc.rate = *pubRate
		}
		if set["batch"] {
			sc.batch = *pubBatch
		}
		if set["workers"] {
			sc.workers = *pubWorkers
		}
		if set["duration"] {
			sc.duration = *pubDuration
		}
		sc.events = *pubEvents
		sc.pin = *relayCPUs
		if sc.pin != "" {
			sc.what += " (relay on CPU " + sc.pin + ")"
		}
		if *secure {
			sc.secure = true
			sc.what += " (wss://)"
		}
		// Each process (this one and the relay) holds a socket per
		// subscriber: stay 100 under the open files limit.
		if room := int(lim) - 100; lim > 0 && sc.subs > room {
			fmt.Fprintf(os.Stderr, "loadgen: scenario %s: %d subscribers instead of %d (open files limited to %d)\n", sc.name, room, sc.subs, lim)
			sc.what = strings.Replace(sc.what, fmt.Sprint(sc.subs), fmt.Sprint(room), 1)
			sc.subs = room
		}
		sc.args = append(sc.args, strings.Fields(*relayArgs)...)
		if err := runScenario(*bin, sc, *drain, *cpuprofile, *memstats, *quick, *results); err != nil {
			fmt.Fprintf(os.Stderr, "loadgen: scenario %s: %v\n", sc.name, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func tenantName(i, n int) string {
	if n == 1 {
		return "bench"
	}
	return fmt.Sprintf("t%03d", i)
}

// srcIP spreads connections over 127.0.0.2-127.0.0.251, 250 source
// addresses with their own ephemeral ports each.
func srcIP(i int) net.IP { return net.IPv4(127, 0, 0, byte(2+i%250)) }

// runScenario runs sc and prints its row; with results set, it also appends
// the row's machine-readable line (resultLine) to that file.
func runScenario(bin string, sc scenario, drain time.Duration, cpuprofile string, memstats, quick bool, results string) error {
	args := append([]string{
		"--max-subscribers", fmt.Sprint(sc.subs + 1000),
		"--max-tenant-subscribers", fmt.Sprint(sc.subs + 1000),
		"--admin-listen", "127.0.0.1:0",
	}, sc.args...)
	if sc.secure {
		dir, err := os.MkdirTemp("", "loadgen-tls")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cert, key, err := selfSigned(dir)
		if err != nil {
			return err
		}
		args = append(args, "--tls-cert", cert, "--tls-key", key)
	}
	var key string
	if sc.beacon {
		dir, err := os.MkdirTemp("", "loadgen-beacon")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		file := dir + "/tokens"
		if key, err = ingestKey(bin, file); err != nil {
			return err
		}
		args = append(args, "--tokens", file)
	}
	var prefix []string
	if sc.pin != "" {
		prefix = []string{"taskset", "-c", sc.pin}
	}
	r, err := relayproc.StartWith(prefix, bin, append([]string{"--log-level", "error"}, args...)...)
	if err != nil {
		return err
	}
	defer r.Stop()

	var rss0 int
	if sc.idle {
		// Warm the relay's heap and code paths with a few subscribers.
		warm, err := connect(r.Addr, sc, 20)
		if err != nil {
			return err
		}
		defer closeAll(warm)
		time.Sleep(time.Second)
		rss0 = r.RSSKiB()
	}
	subs, err := connect(r.Addr, sc, sc.subs)
	defer closeAll(subs)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Add(1)
		go func() { defer wg.Done(); s.run() }()
	}
	defer wg.Wait()
	defer closeAll(subs)
	if err := waitHellos(subs, 30*time.Second); err != nil {
		return err
	}
	if sc.idle {
		time.Sleep(2 * time.Second)
		rss := r.RSSKiB()
		per := float64(rss-rss0) / float64(sc.subs)
		if memstats && r.Admin != "" {
			printMemStats(adminURL(sc, r.Admin))
		}
		fmt.Printf("%-3s %-42s %21s %9s %5s %11s %8s %8s %8s %8s %9s %9s %7s %7dM %7s  %.1f KiB RSS per idle subscriber\n",
			sc.name, sc.what, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", rss/1024, "-", per)
		return appendResult(results, resultLine(sc, quick, outcome{rssKiB: rss, baseKiB: rss0, perSubKiB: per}))
	}

	tenants := make([]string, sc.tenants)
	for i := range tenants {
		tenants[i] = tenantName(i, sc.tenants)
	}
	cpu0, self0 := r.CPU(), selfCPU()
	var prof sync.WaitGroup
	if cpuprofile != "" && r.Admin != "" {
		prof.Add(1)
		go func() {
			defer prof.Done()
			if err := saveProfile(adminURL(sc, r.Admin), sc.duration, cpuprofile); err != nil {
				fmt.Fprintln(os.Stderr, "loadgen: profile:", err)
			}
		}()
	}
	start := time.Now()
	p, err := publishChild(r.Addr, tenants, sc, key)
	if err != nil {
		return err
	}

	// Wait for every delivery (or gap line) of the accepted events, or
	// until nothing moves for 2 s, or the drain time is out.
	var expected uint64
	for _, s := range subs {
		expected += p.Accepted[s.tenant]
	}
	deadline := time.Now().Add(drain)
	var last uint64
	lastMove := time.Now()
	for time.Now().Before(deadline) {
		var got uint64
		for _, s := range subs {
			got += s.accounted.Load()
		}
		if got >= expected {
			break
		}
		if got != last {
			last, lastMove = got, time.Now()
		} else if time.Since(lastMove) > 2*time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cpu, self := r.CPU()-cpu0, selfCPU()-self0
	rss := r.RSSKiB()
	prof.Wait()
	closeAll(subs)
	wg.Wait()

	var lat hist
	var accepted uint64
	for _, n := range p.Accepted {
		accepted += n
	}
	var delivered, gaps, lost, dup uint64
	var lastRecv int64
	for _, s := range subs {
		delivered += s.delivered
		gaps += s.gapEvents
		lost += s.lost
		dup += s.dup
		if s.hist != nil {
			lat.merge(s.hist)
		}
		lastRecv = max(lastRecv, s.lastRecv.Load())
	}
	// Deliveries/s over the time from the first POST to the last line.
	window := time.Duration(lastRecv - start.UnixNano())
	rate := 0.0
	if window > 0 {
		rate = float64(delivered) / window.Seconds()
	}
	note := ""
	if delivered > 0 {
		note = fmt.Sprintf("%.0f deliveries per relay CPU-second", float64(delivered)/cpu.Seconds())
	}
	missing := int64(expected) - int64(delivered+gaps+lost)
	if missing > 0 {
		note += fmt.Sprintf("; %d not yet delivered when the drain ended", missing)
	}
	if dup > 0 {
		note += fmt.Sprintf("; %d duplicates", dup)
	}
	if p.Errors > 0 {
		note += fmt.Sprintf("; %d POSTs failed (%v)", p.Errors, p.LastErr)
	}
	note = strings.TrimPrefix(note, "; ")
	fmt.Printf("%-3s %-42s %21s %9d %5d %11.0f %8s %8s %8s %8s %9.0f %9s %7.1f %7dM %7.1f  %s\n",
		sc.name, sc.what, fmt.Sprintf("%d/%d", delivered, expected), gaps, lost, rate,
		ms(lat.quantile(0.5)), ms(lat.quantile(0.95)), ms(lat.quantile(0.99)), ms(lat.quantile(1)),
		float64(accepted)/p.Elapsed.Seconds(), ms(p.Hist.quantile(0.99)),
		cpu.Seconds(), rss/1024, (self + p.CPU).Seconds(), note)
	return appendResult(results, resultLine(sc, quick, outcome{
		delivered: delivered, expected: expected, gaps: gaps, lost: lost, dup: dup, missing: missing,
		postErrors: p.Errors, delivPerSec: rate,
		p50: lat.quantile(0.5), p95: lat.quantile(0.95), p99: lat.quantile(0.99), max: lat.quantile(1),
		postedPerSec: float64(accepted) / p.Elapsed.Seconds(), postP99: p.Hist.quantile(0.99),
		relayCPU: cpu, genCPU: self + p.CPU, rssKiB: rss,
	}))
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
}

// connect dials n subscribers of sc, 128 at a time.
func connect(addr string, sc scenario, n int) ([]*sub, error) {
	subs := make([]*sub, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 128)
	var mu sync.Mutex
	var first error
	for i := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t := i % sc.tenants
			c, buf, w, err := dial(addr, srcIP(i), tenantName(t, sc.tenants), sc.bufSize, sc.secure)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("subscriber %d: %w", i, err)
				}
				mu.Unlock()
				return
			}
			s := &sub{c: c, tenant: t, buf: buf, w: w, now: time.Now()}
			if sc.sample > 0 && i%sc.sample == 0 {
				s.hist = &hist{}
			}
			subs[i] = s
		}()
	}
	wg.Wait()
	if first != nil {
		closeAll(subs)
		return nil, first
	}
	return subs, nil
}

func closeAll(subs []*sub) {
	for _, s := range subs {
		if s != nil {
			s.c.Close()
		}
	}
}

func waitHellos(subs []*sub, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, s := range subs {
		for !s.hello.Load() {
			if time.Now().After(deadline) {
				return fmt.Errorf("no hello line within %v", limit)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// adminURL is the base URL of the relay's admin listener, which serves
// HTTPS too when the relay has a certificate.
func adminURL(sc scenario, admin string) string {
	if sc.secure {
		return "https://" + admin
	}
	return "http://" + admin
}

// adminGet gets url from the admin listener (whose certificate, with -tls,
// is the throw-away one).
func adminGet(url string) (*http.Response, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS()}}
	return c.Get(url)
}

// saveProfile fetches the relay's CPU profile over d from its admin
// listener.
func saveProfile(admin string, d time.Duration, file string) error {
	return saveURL(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", admin, int(d.Seconds())), file)
}

// saveURL saves what url answers in file.
func saveURL(url, file string) error {
	res, err := adminGet(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, res.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// printMemStats copies the runtime.MemStats part of the relay's heap
// profile to stderr: where an idle subscriber's memory goes.
func printMemStats(admin string) {
	res, err := adminGet(admin + "/debug/pprof/heap?debug=1")
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: memstats:", err)
		return
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if i := strings.Index(string(b), "# runtime.MemStats"); i >= 0 {
		os.Stderr.Write(b[i:])
	}
	if err := saveURL(admin+"/debug/pprof/heap", "/tmp/loadgen-heap.pprof"); err == nil {
		fmt.Fprintln(os.Stderr, "loadgen: heap profile in /tmp/loadgen-heap.pprof")
	}
}

// beaconOrigin is the web page W's beacons come from, the origin of its
// ingest key.
const beaconOrigin = "https://shop.example"

// beaconIngestRate is W's --ingest-rate: a limit per client address no
// loopback run reaches, since all of W's POSTs come from 127.0.0.1 (a
// site's visitors each have their own address and bucket).
const beaconIngestRate = 1_000_000

// ingestKey makes a public ingest key for the tenant "bench" and
// beaconOrigin with bin's token command, its line appended to file.
func ingestKey(bin, file string) (string, error) {
	out, err := exec.Command(bin, "token", "--scopes", "ingest", "--tenants", tenantName(0, 1),
		"--origin", beaconOrigin, "--name", "loadgen", "--append", file).Output()
	if err != nil {
		return "", fmt.Errorf("%s token --scopes ingest: %w", bin, err)
	}
	return strings.TrimSpace(string(out)), nil
}
