package e2e

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/invariant"
	"github.com/tl-sh/tl/lib/redistest"
)

// The soak: real relays, publishers and subscribers, with relays (and
// Redis) killed at random, then every line checked against the invariant
// (lib/internal/invariant). `go test ./lib/e2e -run Soak -soak 10m` runs
// each backing for ten minutes; make soak DURATION=10m does the same.
var (
	soakFor  = flag.Duration("soak", 0, "run each backing of TestSoak this long (default: a short run)")
	soakSeed = flag.Int64("soak-seed", 0, "the fault schedule's seed (default: from the clock; printed)")
)

// soakShort is the run of each backing in make test and CI.
const soakShort = 20 * time.Second

// soakSettle bounds the wait for every subscriber to catch up at the end:
// long, because a race-built relay on a loaded box may be slow; a
// subscriber that never catches up is reported by the checker.
const soakSettle = 2 * time.Minute

// soakTenant is the one tenant every client uses.
const soakTenant = "soak"

// soakHistory makes the history hold the whole run, so that any gap or
// missing acknowledged event is a loss, never an eviction.
var soakHistory = []string{"--history-events", "10000000", "--history-bytes", "2GiB"}

// soakBacking is one setup under test: its relays' flags, whether Redis
// runs under them, and what it promises.
type soakBacking struct {
	name   string
	relays int
	redis  bool
	// volatile: Redis runs without persistence, so killing it loses the
	// history (a new epoch), as a memory relay's kill does.
	volatile bool
	hangs    bool // Redis also hangs (SIGSTOP) for a while, around the relay's timeout
	// rollback: Redis faults also copy its append-only files aside, or
	// kill it and restart it from such an older copy (a restored
	// snapshot, a failover to a stale replica).
	rollback bool
	data     bool
	opts     invariant.Options // Settled and FinalEpoch are filled in at the end
}

var soakBackings = []soakBacking{
	{name: "memory", relays: 1, opts: invariant.Options{LosesHistory: true}},
	{name: "data-dir", relays: 1, data: true},
	{name: "broker", relays: 2, redis: true},
	{name: "broker-hung", relays: 2, redis: true, hangs: true},
	{name: "broker-rollback", relays: 2, redis: true, rollback: true, opts: invariant.Options{LosesHistory: true}},
	{name: "broker-volatile", relays: 2, redis: true, volatile: true, opts: invariant.Options{LosesHistory: true}},
}

// soakShortBackings are the backings the short run in make test covers;
// TestSoak runs every backing with -soak. broker-hung is left out until
// lib/redislog answers a publish that timed out on a hung Redis with
// something other than "not published": today such a 503'd batch is
// committed when Redis wakes and delivered (issue 16, case 2; -run
// 'Soak/broker-hung' -soak 40s -soak-seed 7 shows it); broker-rollback
// until a Redis restored from an older copy starts a new epoch instead
// of giving acknowledged seqs again (case 1).
var soakShortBackings = map[string]bool{"memory": true, "data-dir": true, "broker": true, "broker-volatile": true}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak kills and restarts relays for a while")
	}
	for _, b := range soakBackings {
		t.Run(b.name, func(t *testing.T) {
			dur := *soakFor
			if dur == 0 {
				if !soakShortBackings[b.name] {
					t.Skipf("the short run leaves %s out (see soakShortBackings); -soak DURATION runs it", b.name)
				}
				dur = soakShort
			}
			if b.redis {
				requireRedis(t)
			}
			seed := *soakSeed
			if seed == 0 {
				seed = time.Now().UnixNano()
			}
			t.Logf("soak %s for %v, seed %d (reproduce the fault schedule: -run 'Soak/%s' -soak %v -soak-seed %d)", b.name, dur, seed, b.name, dur, seed)
			runSoak(t, b, dur, seed)
		})
	}
}

// requireRedis skips when redis-server is not installed.
func requireRedis(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
}

// soakRig owns the processes of one soak: relays on fixed ports (so that
// clients find a restarted relay where it was) and Redis.
type soakRig struct {
	t     *testing.T
	redis *redistest.Server
	hangs bool // Redis faults include hangs
	// redisDir is Redis's directory when its faults include rollbacks;
	// snap, the newest copy of its append-only files ("" before one).
	redisDir, snap string
	snapFault      int // the fault that took snap
	urls           []string
	args           [][]string

	mu    sync.Mutex // guards procs
	procs []*secProc // nil while that relay is down
}

func newSoakRig(t *testing.T, b soakBacking) *soakRig {
	r := &soakRig{t: t, hangs: b.hangs}
	switch {
	case b.rollback:
		r.redisDir = t.TempDir()
		srv, err := redistest.Start(r.redisDir, redistest.Options{Persist: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		r.redis = srv
	case b.redis:
		r.redis = redistest.New(t, redistest.Options{Persist: !b.volatile})
	}
	data := t.TempDir()
	for i := 0; i < b.relays; i++ {
		port := soakFreePort(t)
		args := append([]string{"--listen", "127.0.0.1:" + strconv.Itoa(port)}, soakHistory...)
		if b.data {
			args = append(args, "--data-dir", data)
		}
		if b.redis {
			args = append(args, "--broker", r.redis.URL())
		}
		r.urls = append(r.urls, "http://127.0.0.1:"+strconv.Itoa(port))
		r.args = append(r.args, args)
		r.procs = append(r.procs, nil)
		r.start(i)
	}
	return r
}

func soakFreePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start starts relay i, retrying while its port is still held.
func (r *soakRig) start(i int) {
	var err error
	for try := 0; try < 20; try++ {
		var p *secProc
		if p, err = secTryStartRelay(r.t, r.args[i]...); err == nil {
			r.mu.Lock()
			r.procs[i] = p
			r.mu.Unlock()
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	r.t.Fatalf("restarting relay %d: %v", i, err)
}

// stop ends relay i with sig and waits for it.
func (r *soakRig) stop(i int, sig syscall.Signal) {
	r.mu.Lock()
	p := r.procs[i]
	r.procs[i] = nil
	r.mu.Unlock()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		r.t.Errorf("relay %d did not end within a minute of %v", i, sig)
		p.cmd.Process.Kill()
		<-p.done
	}
}

// faults runs the random fault schedule until stop closes, one fault at a
// time: kill -9 (or, one time in four, SIGTERM) a relay, or kill -9 Redis,
// then start it again after a random pause; or, with hangs, (one Redis
// fault in three) hang Redis with SIGSTOP for two to six seconds. It logs
// each fault.
func (r *soakRig) faults(rng *rand.Rand, stop <-chan struct{}) {
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(500+rng.Intn(2500)) * time.Millisecond):
		}
		pause := time.Duration(rng.Intn(1000)) * time.Millisecond
		victim := rng.Intn(len(r.urls) + btoi(r.redis != nil))
		if victim == len(r.urls) && r.hangs && rng.Intn(3) == 0 {
			hang := time.Duration(2000+rng.Intn(4000)) * time.Millisecond // around the relay's 3 s timeout
			r.t.Logf("fault %d: redis-server hangs (SIGSTOP) for %v", n, hang)
			pid, err := redisPid(r.redis.Addr())
			if err != nil {
				r.t.Errorf("hanging redis-server: %v", err)
				return
			}
			syscall.Kill(pid, syscall.SIGSTOP)
			time.Sleep(hang)
			syscall.Kill(pid, syscall.SIGCONT)
			continue
		}
		if victim == len(r.urls) && r.redisDir != "" && rng.Intn(2) == 0 {
			r.rollback(n)
			continue
		}
		if victim == len(r.urls) {
			r.t.Logf("fault %d: kill -9 redis-server, restart after %v", n, pause)
			r.redis.Stop()
			time.Sleep(pause)
			if err := r.redis.Restart(); err != nil {
				r.t.Errorf("restarting redis-server: %v", err)
				return
			}
			continue
		}
		sig := syscall.SIGKILL
		if rng.Intn(4) == 0 {
			sig = syscall.SIGTERM
		}
		r.t.Logf("fault %d: %v relay %d, restart after %v", n, sig, victim, pause)
		r.stop(victim, sig)
		time.Sleep(pause)
		r.start(victim)
	}
}

// rollback copies Redis's append-only files aside, the first time and
// every other time after; else it kills Redis and restarts it from that
// older copy.
func (r *soakRig) rollback(n int) {
	aof := filepath.Join(r.redisDir, "appendonlydir")
	if r.snap == "" || n%2 == 0 {
		r.snap, r.snapFault = r.t.TempDir(), n
		r.t.Logf("fault %d: a copy of redis-server's append-only files", n)
		if err := copyFiles(aof, r.snap); err != nil {
			r.t.Errorf("copying redis-server's files: %v", err)
		}
		return
	}
	r.t.Logf("fault %d: kill -9 redis-server, restart it from the copy of fault %d", n, r.snapFault)
	r.redis.Stop()
	if err := os.RemoveAll(aof); err != nil {
		r.t.Error(err)
	}
	if err := copyFiles(r.snap, aof); err != nil {
		r.t.Errorf("restoring redis-server's files: %v", err)
	}
	if err := r.redis.Restart(); err != nil {
		r.t.Errorf("restarting redis-server: %v", err)
	}
}

// copyFiles copies the regular files of from into to (made if need be).
func copyFiles(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// redisPid asks the redis-server at addr for its pid (redistest keeps its
// process to itself).
func redisPid(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_id:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no process_id in redis-server's INFO: %v", sc.Err())
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runSoak runs one backing for dur: clients throughout, faults until the
// end, then a settled wait and the check.
func runSoak(t *testing.T, b soakBacking, dur time.Duration, seed int64) {
	rig := newSoakRig(t, b)
	rng := rand.New(rand.NewSource(seed))
	run := newSoakRun(t, rig.urls, rand.New(rand.NewSource(rng.Int63())))

	run.startSubscribers(2)
	run.startTails()
	run.startPosters()
	run.startPublishers(2, soakAttempts)
	run.startPublishers(1, 1)

	stopFaults := make(chan struct{})
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		rig.faults(rng, stopFaults)
	}()
	time.Sleep(dur)
	close(stopFaults)
	<-faultsDone
	if t.Failed() {
		run.stop()
		return
	}

	// Everything runs again: the last batch's 202 names the final epoch
	// and its newest seq, which every subscriber must reach.
	run.stopPublishers()
	marker := run.publishMarker()
	if marker.Outcome != invariant.Acked {
		run.stop()
		t.Fatalf("the marker batch after the faults was not acknowledged")
	}
	run.settle(marker.IDs[0], soakSettle)
	run.stop()

	opts := b.opts
	opts.Settled, opts.FinalEpoch = true, marker.Epoch
	pubs, subs := run.results(opts)
	acked, unknown, refused := 0, 0, 0
	for _, p := range pubs {
		switch p.Outcome {
		case invariant.Unknown:
			unknown += len(p.IDs)
		case invariant.Refused:
			refused += len(p.IDs)
		default:
			acked += len(p.IDs)
		}
	}
	lines := 0
	for _, s := range subs {
		for _, c := range s.Conns {
			lines += len(c.Lines)
		}
	}
	t.Logf("soak %s: %d events acknowledged, %d unknown, %d refused (503), %d subscribers, %d lines received, final epoch %s, newest seq %d",
		b.name, acked, unknown, refused, len(subs), lines, marker.Epoch, marker.FirstSeq)
	if acked == 0 || lines == 0 {
		t.Errorf("the soak checked nothing: %d events acknowledged, %d lines received", acked, lines)
	}
	v := invariant.Check(pubs, subs, opts)
	for i, x := range v {
		if i == 40 {
			t.Errorf("... and %d more violations", len(v)-i)
			break
		}
		t.Errorf("%v", x)
	}
	if len(v) > 0 {
		t.Errorf("%d violations of the invariant (seed %d)", len(v), seed)
	}
}
