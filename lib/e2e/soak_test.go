package e2e

import (
	"flag"
	"math/rand"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/invariant"
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
	// oneShot adds a publisher that never retries, so that a 503 is its
	// batch's final answer: such a batch must never be delivered.
	oneShot bool
	data    bool
	opts    invariant.Options // Settled and FinalEpoch are filled in at the end
}

var soakBackings = []soakBacking{
	{name: "memory", relays: 1, oneShot: true, opts: invariant.Options{LosesHistory: true}},
	{name: "data-dir", relays: 1, data: true, oneShot: true},
	{name: "broker", relays: 2, redis: true},
	{name: "broker-503", relays: 2, redis: true, oneShot: true},
	{name: "broker-hung", relays: 2, redis: true, hangs: true, oneShot: true},
	{name: "broker-rollback", relays: 2, redis: true, rollback: true, opts: invariant.Options{LosesHistory: true}},
	{name: "broker-volatile", relays: 2, redis: true, volatile: true, opts: invariant.Options{LosesHistory: true}},
}

// soakShortBackings are the backings the short run in make test covers:
// every one (the map stays so that a case can be left out, with its reason,
// should it need to be).
var soakShortBackings = map[string]bool{"memory": true, "data-dir": true, "broker": true, "broker-volatile": true,
	"broker-503": true, "broker-hung": true, "broker-rollback": true}

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

// runSoak runs one backing for dur: clients throughout, faults until the
// end, then a settled wait and the check.
func runSoak(t *testing.T, b soakBacking, dur time.Duration, seed int64) {
	rig := newSoakRig(t, b)
	rng := rand.New(rand.NewSource(seed))
	run := newSoakRun(t, rig.began, rig.urls, rand.New(rand.NewSource(rng.Int63())))

	run.startSubscribers(2)
	run.startTails()
	run.startPosters()
	run.startPublishers(2, soakAttempts)
	if b.oneShot {
		run.startPublishers(1, 1)
	}

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
	lines, gaps, changes := 0, 0, 0 // gap lines; hellos that changed the epoch
	for _, s := range subs {
		epoch := ""
		for _, c := range s.Conns {
			lines += len(c.Lines)
			for _, l := range c.Lines {
				switch {
				case l.Kind == invariant.Gap:
					gaps++
				case l.Kind == invariant.Hello && l.Epoch != epoch:
					if epoch != "" {
						changes++
					}
					epoch = l.Epoch
				}
			}
		}
	}
	t.Logf("soak %s: %d events acknowledged, %d unknown, %d refused (503); %d subscribers received %d lines, %d epoch changes, %d gap lines; final epoch %s, newest seq %d",
		b.name, acked, unknown, refused, len(subs), lines, changes, gaps, marker.Epoch, marker.FirstSeq)
	if acked == 0 || lines == 0 {
		t.Errorf("the soak checked nothing: %d events acknowledged, %d lines received", acked, lines)
	}
	v := invariant.Check(pubs, subs, opts)
	run.logRefusedDelivered(subs)
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
