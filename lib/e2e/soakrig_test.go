package e2e

import (
	"bufio"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/internal/redistest"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// The soak's processes and its faults.

// requireRedis skips when redis-server is not installed, and fails under
// CI=true, as every test needing a tool does (testkit.NeedTool).
func requireRedis(t *testing.T) {
	t.Helper()
	testkit.NeedTool(t, "redis-server")
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

	began time.Time // the soak's start, for the faults' times

	mu    sync.Mutex // guards procs
	procs []*secProc // nil while that relay is down
}

func newSoakRig(t *testing.T, b soakBacking) *soakRig {
	r := &soakRig{t: t, hangs: b.hangs, began: time.Now()}
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
		if err := r.start(i); err != nil {
			t.Fatal(err)
		}
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
func (r *soakRig) start(i int) error {
	var err error
	for try := 0; try < 20; try++ {
		var p *secProc
		if p, err = secTryStartRelay(r.t, r.args[i]...); err == nil {
			r.mu.Lock()
			r.procs[i] = p
			r.mu.Unlock()
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("starting relay %d: %w", i, err)
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
			r.logf("fault %d: redis-server hangs (SIGSTOP) for %v", n, hang)
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
			r.logf("fault %d: kill -9 redis-server, restart after %v", n, pause)
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
		r.logf("fault %d: %v relay %d, restart after %v", n, sig, victim, pause)
		r.stop(victim, sig)
		time.Sleep(pause)
		if err := r.start(victim); err != nil {
			r.t.Error(err)
			return
		}
	}
}

// rollback copies Redis's append-only files aside (the first time, and
// at even-numbered faults); else it kills Redis and restarts it from that
// older copy.
func (r *soakRig) rollback(n int) {
	aof := filepath.Join(r.redisDir, "appendonlydir")
	if r.snap == "" || n%2 == 0 {
		r.snap, r.snapFault = r.t.TempDir(), n
		r.logf("fault %d: a copy of redis-server's append-only files", n)
		if err := copyFiles(aof, r.snap); err != nil {
			r.t.Errorf("copying redis-server's files: %v", err)
		}
		return
	}
	r.logf("fault %d: kill -9 redis-server, restart it from the copy of fault %d", n, r.snapFault)
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

// logf logs a line with the time since the soak started.
func (r *soakRig) logf(format string, a ...any) {
	r.t.Logf("+%.1fs "+format, append([]any{time.Since(r.began).Seconds()}, a...)...)
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
