package post

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/client"
)

// stopGrace is how long a batch already in flight may take to finish after
// Ctrl-C or a fatal error; then it is abandoned (and reported as such).
const stopGrace = 3 * time.Second

// readerGrace is how long a stopped run waits for its reader to notice.
const readerGrace = 500 * time.Millisecond

// poster is one run of tl-post.
type poster struct {
	o     *Options
	cfg   *client.Config
	hc    *http.Client
	env   *cli.Env
	con   *console
	stats stats
	now   func() time.Time

	files []string // the inputs, "-" for stdin
	names []string // how messages name them ("<stdin>" for "-")
	stdin io.Reader

	lanesMu sync.Mutex // guards lanes and order
	lanes   map[string]*lane
	order   []*lane

	stop        chan struct{} // closed when the run stops early
	stopOnce    sync.Once
	interrupted atomic.Bool     // the stop came from a signal
	sendCtx     context.Context // HTTP attempts: cancelled stopGrace after stop

	failMu  sync.Mutex // guards failErr
	failErr error      // the first fatal error

	// Bad lines reported so far, here or by the relay; past --max-errors
	// they are only counted (the summary says how many went unshown).
	lineErrs atomic.Int64
	// maxBatch is the most events per batch the relay takes (its rate
	// limit's burst, from a 429's TL-Max-Batch); 0 until one says so. Once
	// lowered it stays lowered for the rest of the run, for every tenant:
	// the burst is the relay's, the same for all of them.
	maxBatch atomic.Int64
}

// batchEvents is the most events a batch may hold: --batch-events, or less
// once the relay said so.
func (p *poster) batchEvents() int {
	if m := int(p.maxBatch.Load()); m > 0 && m < p.o.BatchEvents {
		return m
	}
	return p.o.BatchEvents
}

// lowerBatch records the relay's TL-Max-Batch, n; it says so once per new
// size.
func (p *poster) lowerBatch(tenant string, n int) {
	for {
		cur := p.maxBatch.Load()
		if cur > 0 && cur <= int64(n) {
			return
		}
		if p.maxBatch.CompareAndSwap(cur, int64(n)) {
			p.con.note(fmt.Sprintf("tl-post: %s: the relay takes at most %s per batch (its rate limit's burst); sending batches of %d from now on", tenant, plural(n, "event", "events"), n))
			return
		}
	}
}

func newPoster(o *Options, cfg *client.Config, env *cli.Env) *poster {
	p := &poster{
		o: o, cfg: cfg, env: env,
		hc:    httpClient(cfg),
		now:   time.Now,
		lanes: map[string]*lane{},
		stop:  make(chan struct{}),
	}
	p.files = o.Files
	if len(p.files) == 0 {
		p.files = []string{"-"}
	}
	for _, f := range p.files {
		if f == "-" {
			f = "<stdin>"
		}
		p.names = append(p.names, f)
	}
	mode := progressMode(o.Progress, o.Quiet, env.Stdin, env.Stderr, env.Getenv)
	p.con = newConsole(env.Stderr, mode, o.Quiet, &p.stats)
	return p
}

// halt stops the run: no more reading, no new batches, no more retries.
func (p *poster) halt() { p.stopOnce.Do(func() { close(p.stop) }) }

// fail records a fatal error and stops the run.
func (p *poster) fail(err error) {
	p.failMu.Lock()
	if p.failErr == nil {
		p.failErr = err
	}
	p.failMu.Unlock()
	p.halt()
}

func (p *poster) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// sleep waits d, or less if the run stops; it reports whether it waited d.
func (p *poster) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stop:
		return false
	}
}

// lane returns the tenant's lane, starting it on first use.
func (p *poster) lane(tenant string) *lane {
	p.lanesMu.Lock()
	defer p.lanesMu.Unlock()
	l := p.lanes[tenant]
	if l == nil {
		l = newLane(p, tenant)
		p.lanes[tenant] = l
		p.order = append(p.order, l)
	}
	return l
}

func (p *poster) run(ctx context.Context) error {
	start := p.now()
	go p.con.run()
	defer p.con.close()

	// Attempts outlive Ctrl-C by stopGrace, so that a batch in flight can
	// finish and be counted rather than be cut off blind.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	p.sendCtx = sendCtx
	stopWatch := context.AfterFunc(ctx, func() {
		p.interrupted.Store(true)
		p.halt()
	})
	defer stopWatch()
	go func() {
		// Ends when the run stops or finishes (cancelSend closes sendCtx).
		select {
		case <-p.stop:
			t := time.NewTimer(stopGrace)
			defer t.Stop()
			select {
			case <-t.C:
				cancelSend()
			case <-sendCtx.Done():
			}
		case <-sendCtx.Done():
		}
	}()

	in, interruptIn := openStdin(p.env.Stdin)
	p.stdin = in
	defer interruptIn()

	pace := &pacer{rate: p.o.Rate, replay: p.o.Replay, maxGap: p.o.ReplayGap, note: p.con.note, now: p.now, sleep: p.sleep}
	var last *lane // the reader's lane of the previous line: most lines skip the lookup
	route := func(it *item) bool {
		if last == nil || last.tenant != it.tenant {
			last = p.lane(it.tenant)
		}
		if !pace.wait(it.ts) || !last.add(it.wire, it.ref) {
			p.stats.unsent.Add(1) // read and good, but the run stopped
			return false
		}
		return true
	}

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		if !p.o.Strict {
			p.readAll(route)
			return
		}
		// --strict: everything is read and validated before anything is
		// sent; the good lines wait in memory.
		var held []item
		p.readAll(func(it *item) bool {
			c := *it
			c.wire = append([]byte(nil), it.wire...)
			held = append(held, c)
			return true
		})
		if n := p.stats.refused.Load() + p.stats.failedFiles.Load(); n > 0 || p.stopped() {
			if n > 0 {
				p.con.printf("tl-post: --strict: nothing sent (%s)", plural(int(p.stats.refused.Load()), "bad line", "bad lines"))
			}
			p.stats.unsent.Add(int64(len(held)))
			return
		}
		for i := range held {
			if !route(&held[i]) {
				p.stats.unsent.Add(int64(len(held) - i - 1))
				return
			}
		}
	}()
	select {
	case <-readDone:
	case <-p.stop:
		// A reader blocked on a quiet stdin would never notice.
		interruptIn()
		select {
		case <-readDone:
		case <-time.After(readerGrace):
			// A reader that cannot be interrupted (not a file) is left
			// to end at its next line: it sends nothing more.
		}
	}

	p.lanesMu.Lock()
	lanes := append([]*lane(nil), p.order...)
	p.lanesMu.Unlock()
	for _, l := range lanes {
		l.close()
	}
	for _, l := range lanes {
		<-l.done
		p.stats.unsent.Add(int64(l.pending()))
		if l.refusedMore > 0 {
			p.con.printf("tl-post: tenant %s: %s more not sent after the relay refused a batch: %s",
				l.tenant, plural(l.refusedMore, "line", "lines"), l.refusal)
		}
	}
	return p.finish(p.now().Sub(start))
}

// finish prints the summary and decides the outcome.
func (p *poster) finish(took time.Duration) error {
	st := &p.stats
	sent, refused, unsent := st.sent.Load(), st.refused.Load(), st.unsent.Load()
	if n := p.lineErrs.Load() - int64(p.o.MaxErrors); p.o.MaxErrors > 0 && n > 0 {
		p.con.put(fmt.Sprintf("tl-post: %s not shown (--max-errors %d)", plural(int(n), "more bad line", "more bad lines"), p.o.MaxErrors))
	}
	if !p.o.Quiet {
		rate := float64(sent) / took.Seconds()
		s := fmt.Sprintf("tl-post: published %s to %s in %v (%s events/s); %s read, %s refused, %s",
			plural(int(sent), "event", "events"), plural(int(st.tenants.Load()), "tenant", "tenants"),
			took.Round(time.Millisecond), commas(int64(rate+0.5)),
			plural(int(st.read.Load()), "line", "lines"), commas(refused), plural(int(st.retried.Load()), "retry", "retries"))
		if unsent > 0 {
			s += fmt.Sprintf(", %s not sent", commas(unsent))
		}
		if p.interrupted.Load() {
			s = "tl-post: interrupted: " + s[len("tl-post: "):]
		}
		p.con.put(s)
	}
	p.con.close()

	p.failMu.Lock()
	failErr := p.failErr
	p.failMu.Unlock()
	switch {
	case p.interrupted.Load():
		return cli.Interrupted
	case failErr != nil:
		return failErr
	case refused > 0 || st.failedFiles.Load() > 0:
		if !p.o.Quiet {
			return cli.Exit(cli.ExitFailure, cli.Silent) // the summary said it
		}
		var why []string
		if refused > 0 {
			why = append(why, plural(int(refused), "line", "lines")+" refused")
		}
		if n := st.failedFiles.Load(); n > 0 {
			why = append(why, plural(int(n), "input", "inputs")+" not read")
		}
		return errors.New(strings.Join(why, ", "))
	}
	return nil
}
