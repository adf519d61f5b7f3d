package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tl-sh/tl/lib/internal/invariant"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

// The soak's clients that are tl commands: tl-tail, whose output is read
// as a subscriber's lines, and tl-post, fed through a pipe.

// soakTail is a tl-tail process from the history's start, its stdout in
// a file.
type soakTail struct {
	name   string
	out    string
	stderr *testkit.SyncBuffer
	cmd    *exec.Cmd
	done   chan struct{}
}

// startTails starts one tl-tail on each relay.
func (r *soakRun) startTails() {
	for i, u := range r.urls {
		tl := &soakTail{name: fmt.Sprintf("tl-tail@relay%d", i), out: filepath.Join(r.t.TempDir(), "tail.ndjson"),
			stderr: &testkit.SyncBuffer{}, done: make(chan struct{})}
		f, err := os.Create(tl.out)
		if err != nil {
			r.t.Fatal(err)
		}
		tl.cmd = exec.Command(filepath.Join(binDir, "tl-tail"), soakTenant, "--since", "0", "--relay", u)
		tl.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + r.t.TempDir()}
		tl.cmd.Stdout, tl.cmd.Stderr = f, tl.stderr
		if err := tl.cmd.Start(); err != nil {
			f.Close()
			r.t.Fatal(err)
		}
		f.Close()
		go func() {
			tl.cmd.Wait()
			close(tl.done)
		}()
		r.tails = append(r.tails, tl)
		r.wg.Add(1)
		go func() { // ends it with the run: SIGINT flushes and exits 130
			defer r.wg.Done()
			select {
			case <-r.ctx.Done():
				tl.cmd.Process.Signal(syscall.SIGINT)
				<-tl.done
			case <-tl.done:
				r.t.Errorf("%s ended by itself (%v):\n%s", tl.name, tl.cmd.ProcessState, tl.stderr)
			}
		}()
	}
}

// soakPoster is tl-post, fed the soak's events through a pipe.
type soakPoster struct {
	ids    []string
	stderr *testkit.SyncBuffer
	err    error // tl-post's exit
}

// startPosters starts one tl-post on the first relay, fed twenty events a
// second until stopPublishers; its events are acknowledged if it exits 0.
func (r *soakRun) startPosters() {
	p := &soakPoster{stderr: &testkit.SyncBuffer{}}
	r.posters = append(r.posters, p)
	cmd := exec.Command(filepath.Join(binDir, "tl-post"), soakTenant, "--relay", r.urls[0], "--max-retries", "1000", "--timeout", "0", "-q")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + r.t.TempDir()}
	cmd.Stderr = p.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.pubWG.Add(1)
	go func() {
		defer r.pubWG.Done()
		for n := 1; ; n++ {
			select {
			case <-r.pubStop:
				in.Close()
				p.err = cmd.Wait()
				return
			case <-time.After(50 * time.Millisecond):
			}
			id := fmt.Sprintf("tp-%d", n)
			if _, err := in.Write(soakEvent(id)); err != nil {
				r.t.Errorf("writing to tl-post: %v", err)
			}
			p.ids = append(p.ids, id)
		}
	}()
}

// tailSub reads a tl-tail's output as a subscriber's lines. tl-tail prints
// deliveries only, so its hellos are inferred: one epoch, unless the
// backing may lose its history, and then a new epoch wherever the seqs
// start again, named by the 202s of the events in it.
func (r *soakRun) tailSub(tl *soakTail, pubs []invariant.Publish, opts invariant.Options) invariant.Sub {
	epochOf := map[string]string{}
	for _, p := range pubs {
		if p.Outcome == invariant.Acked && !p.Retried {
			for _, id := range p.IDs {
				epochOf[id] = p.Epoch
			}
		}
	}
	b, err := os.ReadFile(tl.out)
	if err != nil {
		r.t.Fatal(err)
	}
	var segs [][]invariant.Line
	var last uint64
	for _, raw := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(raw) == 0 {
			continue
		}
		l, err := invariant.ParseLine(raw)
		if err != nil {
			r.t.Errorf("%s: %v", tl.name, err)
			continue
		}
		if segs == nil || (opts.LosesHistory && l.Seq <= last) {
			segs = append(segs, nil)
		}
		segs[len(segs)-1] = append(segs[len(segs)-1], l)
		last = l.Seq
	}
	conn := invariant.Conn{HasSince: true}
	for i, seg := range segs {
		votes := map[string]int{}
		best := fmt.Sprintf("%s-unnamed-%d", tl.name, i)
		for _, l := range seg {
			if e, ok := epochOf[l.ID]; ok {
				votes[e]++
				if votes[e] > votes[best] {
					best = e
				}
			}
		}
		conn.Lines = append(conn.Lines, invariant.Line{Kind: invariant.Hello, Epoch: best})
		conn.Lines = append(conn.Lines, seg...)
	}
	return invariant.Sub{Name: tl.name, Conns: []invariant.Conn{conn}}
}
