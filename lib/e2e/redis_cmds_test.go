package e2e

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tl-sh/tl/lib/internal/redistest"
)

// The commands for a private redis-server (registered in Params), used by
// redis-*.txtar:
//
//	redis-start [-persist] [NAME]
//	    starts redis-server on a free loopback port (with -persist, an
//	    append-only file fsynced on every write) and sets $REDIS_URL (and
//	    $REDIS_URL_<NAME>); it is stopped when the script ends
//	redis-stop [NAME]
//	    kills it (SIGKILL: an outage); without -persist its data is gone
//	redis-restart [NAME]
//	    starts it again on the same port
//	wait-status STATUS PATH
//	    polls GET $TL_RELAY+PATH (up to 60s) until it answers STATUS (a
//	    relay's /readyz following its broker), then prints the body

// redisTable holds the servers each running script started, by name.
// Scripts run in parallel, so it is guarded by redisMu.
var (
	redisMu    sync.Mutex
	redisTable = map[*testscript.TestScript]map[string]*redistest.Server{}
)

func cmdRedisStart(ts *testscript.TestScript, neg bool, args []string) {
	var opts redistest.Options
	if len(args) > 0 && args[0] == "-persist" {
		opts.Persist, args = true, args[1:]
	}
	if neg || len(args) > 1 {
		ts.Fatalf("usage: redis-start [-persist] [NAME]")
	}
	name := "main"
	if len(args) == 1 {
		name = args[0]
	}
	dir := ts.MkAbs("redis-" + name)
	ts.Check(os.MkdirAll(dir, 0o755))
	srv, err := redistest.Start(dir, opts)
	ts.Check(err)
	redisMu.Lock()
	if redisTable[ts] == nil {
		redisTable[ts] = map[string]*redistest.Server{}
		ts.Defer(func() {
			redisMu.Lock()
			srvs := redisTable[ts]
			delete(redisTable, ts)
			redisMu.Unlock()
			for _, s := range srvs {
				s.Close()
			}
		})
	}
	if old := redisTable[ts][name]; old != nil {
		old.Close()
	}
	redisTable[ts][name] = srv
	redisMu.Unlock()
	ts.Setenv("REDIS_URL", srv.URL())
	ts.Setenv("REDIS_URL_"+strings.ToUpper(name), srv.URL())
}

func redisNamed(ts *testscript.TestScript, usage string, neg bool, args []string) *redistest.Server {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: %s [NAME]", usage)
	}
	name := "main"
	if len(args) == 1 {
		name = args[0]
	}
	redisMu.Lock()
	srv := redisTable[ts][name]
	redisMu.Unlock()
	if srv == nil {
		ts.Fatalf("no redis named %q: run redis-start first", name)
	}
	return srv
}

func cmdRedisStop(ts *testscript.TestScript, neg bool, args []string) {
	redisNamed(ts, "redis-stop", neg, args).Stop()
}

func cmdRedisRestart(ts *testscript.TestScript, neg bool, args []string) {
	ts.Check(redisNamed(ts, "redis-restart", neg, args).Restart())
}

func cmdWaitStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: wait-status STATUS PATH")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		if res, err := client.Get(relayURL(ts) + args[1]); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if got = res.StatusCode; got == want {
				ts.Stdout().Write(body)
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("GET %s still answers %d after 60s, want %d", args[1], got, want)
}
