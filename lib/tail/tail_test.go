package tail

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/testkit"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int    // exit status of the parse error; 0 for none
		out  string // a substring of stdout (help, version)
		err  string // a substring of the error
	}{
		{"tenant only", []string{"acme"}, 0, "", ""},
		{"flags after the tenant", []string{"acme", "-n", "5", "--type", "click"}, 0, "", ""},
		{"help", []string{"--help"}, 0, "Exit status:", ""},
		{"short help", []string{"-h"}, 0, "141", ""},
		{"version", []string{"--version"}, 0, "tl-tail ", ""},
		{"no tenant", nil, 2, "", "want a TENANT"},
		{"two tenants", []string{"a", "b"}, 0, "", ""},
		{"a pattern", []string{"acme-*", "globex"}, 0, "", ""},
		{"a bad pattern", []string{"acme-["}, 2, "", `pattern "acme-["`},
		{"since with two tenants", []string{"a", "b", "--since", "3"}, 2, "", "one tenant's seqs"},
		{"epoch with a pattern", []string{"a*", "--since", "3", "--epoch", "e"}, 2, "", "one tenant's seqs"},
		{"no-follow", []string{"acme", "--no-follow", "-n", "3"}, 0, "", ""},
		{"follow and no-follow", []string{"acme", "-f", "--no-follow"}, 2, "", "exclude each other"},
		{"ws relay", []string{"acme", "--relay", "ws://127.0.0.1:1"}, 0, "", ""},
		{"bad tenant", []string{"a/b"}, 2, "", "try --help"},
		{"bad flag", []string{"acme", "--bogus"}, 2, "", "unknown flag: --bogus (try --help)"},
		{"bad type", []string{"acme", "--type", "click,scroll"}, 2, "", `--type "scroll"`},
		{"since and last", []string{"acme", "--since", "4", "-n", "2"}, 2, "", "exclude each other"},
		{"epoch without since", []string{"acme", "--epoch", "e"}, 2, "", "--epoch needs --since"},
		{"negative count", []string{"acme", "-c", "-1"}, 2, "", "--count"},
		{"tiny buffer", []string{"acme", "--buffer", "1KiB"}, 2, "", "smaller than"},
		{"bad buffer", []string{"acme", "--buffer", "lots"}, 2, "", "not a size"},
		{"huge buffer", []string{"acme", "--buffer", "2GiB"}, 2, "", "not under 2GiB"},
		{"bad relay", []string{"acme", "--relay", "ftp://x"}, 2, "", "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout bytes.Buffer
			env := &cli.Env{Stdout: &stdout, Stderr: &stdout, Getenv: func(string) string { return "" }}
			_, err := parseArgs(tt.args, env)
			got, msg := cli.Code(err)
			if got != tt.code || !strings.Contains(msg, tt.err) {
				t.Fatalf("parseArgs(%q) = %d %q; want %d containing %q", tt.args, got, msg, tt.code, tt.err)
			}
			if !strings.Contains(stdout.String(), tt.out) {
				t.Fatalf("stdout %q does not contain %q", stdout.String(), tt.out)
			}
		})
	}
}

// TestQuery: the flags become the subscription's query, and the token its
// Authorization header.
func TestQuery(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--type", "click", "--type", "custom,pageview", "--path", "/checkout"}, "path=%2Fcheckout&type=click&type=custom&type=pageview"},
		{[]string{"-n", "20"}, "last=20"},
		{[]string{"--since", "41", "--epoch", "e1"}, "epoch=e1&since=41"},
		{[]string{"--since", "0"}, "since=0"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFakeRelay(t)
			dir := t.TempDir()
			os.WriteFile(dir+"/token", []byte("s3cret\n"), 0o600)
			startTail(t, f, nil, append([]string{"acme", "--token-file", dir + "/token"}, tt.args...)...)
			c := f.next(t)
			if got := c.query.Encode(); got != tt.want {
				t.Fatalf("query %q, want %q", got, tt.want)
			}
			if got := c.header.Get("Authorization"); got != "Bearer s3cret" {
				t.Fatalf("Authorization %q", got)
			}
		})
	}
}

// TestStreamBytesExact: deliveries reach stdout byte for byte, however the
// relay packs them into messages; control lines and keep-alives never do;
// a gap is reported on stderr with its exact count.
func TestStreamBytesExact(t *testing.T) {
	f := newFakeRelay(t)
	r := startTail(t, f, nil, "acme")
	c := f.next(t)
	c.send(t, hello("e1", 0))
	c.send(t, ev(1))
	c.send(t, ev(2), ev(3), gap(4, 6, "evicted"), ev(7), "\n", ev(8))
	last := strings.TrimSuffix(ev(9), "\n") // a message's last line without its newline
	c.send(t, last)
	want := evs(1, 3) + evs(7, 9)
	testkit.WaitFor(t, "the events", func() bool { return r.stdout.String() == want })
	testkit.WaitFor(t, "the gap report", func() bool {
		return strings.Contains(r.stderr.String(), "gap: 3 events lost (seq 4..6): older than the relay's history")
	})
	if !strings.Contains(r.stderr.String(), "tl-tail: connected to "+f.srv.URL+", tenant acme (epoch e1, newest seq 0)") {
		t.Fatalf("no connected status in %q", r.stderr.String())
	}
	r.cancel()
	if err := r.wait(t); code(err) != cli.ExitInterrupted {
		t.Fatalf("after cancel: %v", err)
	}
	if got := c.closeCode(t); got != 1000 {
		t.Fatalf("close code %d, want 1000", got)
	}
}

// TestCount: -c N prints exactly N events, even from one packed message,
// closes with 1000 and exits 0.
func TestCount(t *testing.T) {
	f := newFakeRelay(t)
	r := startTail(t, f, nil, "acme", "-c", "3")
	c := f.next(t)
	c.send(t, hello("e1", 0), ev(1), ev(2))
	c.send(t, evs(3, 10))
	if err := r.wait(t); err != nil {
		t.Fatalf("tl-tail -c 3: %v", err)
	}
	if got, want := r.stdout.String(), evs(1, 3); got != want {
		t.Fatalf("stdout %q, want %q", got, want)
	}
	if got := c.closeCode(t); got != 1000 {
		t.Fatalf("close code %d, want 1000", got)
	}
}

// TestCountZero: an explicit -c 0 exits 0 at once, printing nothing and
// not even connecting (like head -n 0); a negative count is a usage error.
func TestCountZero(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-c", "0"}, 0, ""},
		{[]string{"--count=0", "--type", "click"}, 0, ""},
		{[]string{"-c", "-1"}, 2, "--count must not be negative (try --help)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFakeRelay(t)
			var stdout, stderr testkit.SyncBuffer
			env := &cli.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
				if k == "TL_RELAY" {
					return f.srv.URL
				}
				return ""
			}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- Run(ctx, append([]string{"acme"}, tt.args...), env) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				cancel() // unblock the run; the bound only keeps a broken test from hanging
				<-done
				t.Fatalf("tl-tail %q did not exit by itself", tt.args)
			}
			if got, msg := cli.Code(err); got != tt.code || !strings.Contains(msg, tt.err) {
				t.Fatalf("exit %d %q, want %d containing %q", got, msg, tt.code, tt.err)
			}
			if stdout.String() != "" || stderr.String() != "" || f.attempts() != 0 {
				t.Fatalf("stdout %q, stderr %q, %d connection attempts; want none", stdout.String(), stderr.String(), f.attempts())
			}
		})
	}
}

// TestTimeout: --timeout with -c fails when the count was not reached; on
// its own it ends the stream successfully.
func TestTimeout(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		// The timeout runs from the start: long enough for the connection
		// and the first event on a loaded machine.
		{[]string{"-c", "2", "--timeout", "2s"}, 1, "timeout: 1 of 2 events within 2s"},
		{[]string{"--timeout", "2s"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFakeRelay(t)
			r := startTail(t, f, nil, append([]string{"acme"}, tt.args...)...)
			c := f.next(t)
			c.send(t, hello("e1", 0), ev(1))
			err := r.wait(t)
			got, msg := cli.Code(err)
			if got != tt.code || !strings.Contains(msg, tt.err) {
				t.Fatalf("exit %d %q, want %d %q", got, msg, tt.code, tt.err)
			}
			if r.stdout.String() != ev(1) {
				t.Fatalf("stdout %q", r.stdout.String())
			}
			if got := c.closeCode(t); got != 1000 {
				t.Fatalf("close code %d, want 1000", got)
			}
		})
	}
}

// TestTimeoutWhileConnecting: --timeout also bounds the wait for a relay
// that is not there.
func TestTimeoutWhileConnecting(t *testing.T) {
	f := newFakeRelay(t)
	f.srv.Close()
	r := startTail(t, f, nil, "acme", "-c", "1", "--timeout", "200ms")
	if got, msg := cli.Code(r.wait(t)); got != 1 || !strings.Contains(msg, "timeout: 0 of 1") {
		t.Fatalf("exit %d %q", got, msg)
	}
	if !strings.Contains(r.stderr.String(), "cannot connect to") {
		t.Fatalf("stderr %q", r.stderr.String())
	}
}

// TestRefusals: a refusal retrying cannot fix ends the run at once with
// status 1 and the relay's reason; others are retried.
func TestRefusals(t *testing.T) {
	tests := []struct {
		refuse   []int
		args     []string
		attempts int
		err      string
	}{
		{[]int{400}, nil, 1, "relay answered 400 Bad Request: refused with 400"},
		{[]int{401}, nil, 1, "401 Unauthorized: refused with 401 (the token comes from TL_TOKEN or --token-file)"},
		{[]int{403}, nil, 1, "403 Forbidden"},
		{[]int{404}, nil, 1, "404 Not Found"},
		{[]int{503, 503, 503}, []string{"--max-retries", "2"}, 3, "503 Service Unavailable: refused with 503 (giving up: --max-retries 2)"},
		{[]int{429, 500, 401}, nil, 3, "401 Unauthorized"},
		{[]int{502}, []string{"--max-retries", "0"}, 1, "502 Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.refuse), func(t *testing.T) {
			f := newFakeRelay(t)
			f.refuse = tt.refuse
			r := startTail(t, f, nil, append([]string{"acme"}, tt.args...)...)
			got, msg := cli.Code(r.wait(t))
			if got != 1 || !strings.Contains(msg, tt.err) {
				t.Fatalf("exit %d %q, want 1 containing %q", got, msg, tt.err)
			}
			if f.attempts() != tt.attempts {
				t.Fatalf("%d attempts, want %d", f.attempts(), tt.attempts)
			}
		})
	}
}

// TestResume: across dropped connections tl-tail resumes with since and
// epoch, prints no event twice (even one a relay sends again) and misses
// none.
func TestResume(t *testing.T) {
	f := newFakeRelay(t)
	r := startTail(t, f, nil, "acme")
	c := f.next(t)
	c.send(t, hello("e1", 0), evs(1, 5))
	testkit.WaitFor(t, "events 1..5", func() bool { return r.stdout.String() == evs(1, 5) })
	c.drop()

	c = f.next(t)
	if got := c.query.Encode(); got != "epoch=e1&since=5" {
		t.Fatalf("resume query %q", got)
	}
	c.send(t, hello("e1", 7), ev(5), evs(6, 7))
	c.send(t, evs(8, 8))
	testkit.WaitFor(t, "events 1..8", func() bool { return r.stdout.String() == evs(1, 8) })
	c.ws.Close() // a close without a close frame either

	c = f.next(t)
	if got := c.query.Encode(); got != "epoch=e1&since=8" {
		t.Fatalf("resume query %q", got)
	}
	c.send(t, hello("e1", 8), evs(9, 9))
	testkit.WaitFor(t, "events 1..9", func() bool { return r.stdout.String() == evs(1, 9) })
	for _, want := range []string{"connection lost", "reconnecting in", "reconnected to " + f.srv.URL + ": resumed after seq 5", "resumed after seq 8"} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr.String())
		}
	}
}

// TestResumeLiveAndLast: a tail that printed nothing yet resumes where its
// stream started, so that a reconnect loses nothing published during the
// outage: after the newest seq of the hello when live, after the N before it
// with -n N (an empty tenant: after 0); it never asks for the last N again,
// except with filters (see the case).
func TestResumeLiveAndLast(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		hello  uint64 // the first hello's last_seq
		resume string // the reconnect's query
		after  string // the query once hello+1..hello+2 are printed
	}{
		{"live", nil, 41, "epoch=e1&since=41", "epoch=e1&since=43"},
		{"last 3", []string{"-n", "3"}, 41, "epoch=e1&since=38", "epoch=e1&since=43"},
		{"last 0", []string{"-n", "0"}, 41, "epoch=e1&since=41", "epoch=e1&since=43"},
		{"last more than held", []string{"-n", "100"}, 41, "epoch=e1&since=0", "epoch=e1&since=43"},
		{"last on an empty tenant", []string{"-n", "5"}, 0, "epoch=e1&since=0", "epoch=e1&since=2"},
		// Filtered, -n N counts matching events: where they start is not
		// in the hello, so until one is printed a reconnect asks for the
		// newest N matching again (nothing printed, nothing twice).
		{"last with filters", []string{"-n", "3", "--type", "custom", "--path", "/x"}, 41,
			"last=3&path=%2Fx&type=custom", "epoch=e1&path=%2Fx&since=43&type=custom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRelay(t)
			r := startTail(t, f, nil, append([]string{"acme"}, tt.args...)...)
			c := f.next(t)
			c.send(t, hello("e1", tt.hello))
			c.drop()
			c = f.next(t)
			if got := c.query.Encode(); got != tt.resume {
				t.Fatalf("resume before any event: query %q, want %q", got, tt.resume)
			}
			// Events published during the outage are printed.
			c.send(t, hello("e1", tt.hello+2), evs(tt.hello+1, tt.hello+2))
			testkit.WaitFor(t, "the outage's events", func() bool { return r.stdout.String() == evs(tt.hello+1, tt.hello+2) })
			c.drop()
			if got := f.next(t).query.Encode(); got != tt.after {
				t.Fatalf("resume after printing: query %q, want %q", got, tt.after)
			}
		})
	}
}

// TestResumeAfterLastReplay: with -n, once the replay is printed a
// reconnect resumes after its last event.
func TestResumeAfterLastReplay(t *testing.T) {
	f := newFakeRelay(t)
	r := startTail(t, f, nil, "acme", "-n", "3")
	c := f.next(t)
	if got := c.query.Encode(); got != "last=3" {
		t.Fatalf("first query %q", got)
	}
	c.send(t, hello("e1", 41), evs(39, 40))
	testkit.WaitFor(t, "39..40", func() bool { return r.stdout.String() == evs(39, 40) })
	c.drop()
	if got := f.next(t).query.Encode(); got != "epoch=e1&since=40" {
		t.Fatalf("-n resume query %q", got)
	}
}

// TestSinceAhead: a --since past the relay's newest seq (the relay then goes
// live) is reported, and the new events are printed, not taken for printed
// ones. A reconnect to a relay behind what was printed (a replica catching
// up) skips what it sends again instead.
func TestSinceAhead(t *testing.T) {
	for _, epoch := range []string{"", "e1"} {
		t.Run("epoch="+epoch, func(t *testing.T) {
			f := newFakeRelay(t)
			args := []string{"acme", "--since", "500"}
			if epoch != "" {
				args = append(args, "--epoch", epoch)
			}
			r := startTail(t, f, nil, args...)
			c := f.next(t)
			c.send(t, hello("e1", 100), evs(101, 102))
			testkit.WaitFor(t, "101..102", func() bool { return r.stdout.String() == evs(101, 102) })
			if want := "tl-tail: connected to " + f.srv.URL + ", tenant acme (epoch e1, newest seq 100): the relay is behind --since 500: following from seq 101\n"; r.stderr.String() != want {
				t.Fatalf("stderr %q, want %q", r.stderr.String(), want)
			}
			c.drop()
			c = f.next(t)
			if got := c.query.Encode(); got != "epoch=e1&since=102" {
				t.Fatalf("resume query %q", got)
			}
			c.send(t, hello("e1", 101), evs(102, 103))
			testkit.WaitFor(t, "101..103", func() bool { return r.stdout.String() == evs(101, 103) })
			if strings.Contains(r.stderr.String(), "behind --since 102") {
				t.Fatalf("a lagging relay on reconnect was taken for a bad --since:\n%s", r.stderr.String())
			}
		})
	}
}

// TestEpochChange: after a relay restart that lost its history, the epoch
// change is reported (the hello says it; the relay sends no gap line when
// nothing of the new numbering is lost, an older relay an empty 1..0 one)
// and the stream goes on with the new numbering.
func TestEpochChange(t *testing.T) {
	for _, emptyGap := range []string{"", gap(1, 0, "epoch")} {
		t.Run(fmt.Sprintf("gap line %q", emptyGap), func(t *testing.T) {
			f := newFakeRelay(t)
			r := startTail(t, f, nil, "acme")
			c := f.next(t)
			c.send(t, hello("e1", 0), evs(1, 3))
			testkit.WaitFor(t, "1..3", func() bool { return r.stdout.String() == evs(1, 3) })
			c.drop()
			c = f.next(t)
			if got := c.query.Encode(); got != "epoch=e1&since=3" {
				t.Fatalf("query %q", got)
			}
			c.send(t, hello("e2", 2), emptyGap, evs(1, 2))
			want := evs(1, 3) + evs(1, 2)
			testkit.WaitFor(t, "the new epoch's events", func() bool { return r.stdout.String() == want })
			if !strings.Contains(r.stderr.String(), "the relay's history restarted (epoch e2, was e1)") {
				t.Fatalf("no epoch change report:\n%s", r.stderr.String())
			}
			if strings.Contains(r.stderr.String(), "gap") {
				t.Fatalf("an empty epoch gap was reported:\n%s", r.stderr.String())
			}
			c.drop()
			if got := f.next(t).query.Encode(); got != "epoch=e2&since=2" {
				t.Fatalf("query after the epoch change %q", got)
			}
		})
	}
}

// TestQuiet: -q hides progress but not losses.
func TestQuiet(t *testing.T) {
	f := newFakeRelay(t)
	r := startTail(t, f, nil, "acme", "-q", "-c", "1")
	c := f.next(t)
	c.send(t, hello("e1", 0), gap(1, 2, "evicted"), ev(3))
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if got, want := r.stderr.String(), "tl-tail: gap: 2 events lost (seq 1..2): older than the relay's history (evicted)\n"; got != want {
		t.Fatalf("stderr %q, want %q", got, want)
	}
}

// TestBrokenPipe: when stdout's reader goes away, tl-tail closes its
// WebSocket with 1000 and ends quietly with status 141, even if no further
// event comes.
func TestBrokenPipe(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	f := newFakeRelay(t)
	r := startTail(t, f, pw, "acme")
	c := f.next(t)
	c.send(t, hello("e1", 0), evs(1, 3))
	buf := make([]byte, len(ev(1)))
	if _, err := io.ReadFull(pr, buf); err != nil || string(buf) != ev(1) {
		t.Fatalf("read %q, %v", buf, err)
	}
	pr.Close()
	err = r.wait(t)
	if got, msg := cli.Code(err); got != ExitBrokenPipe || msg != "" {
		t.Fatalf("exit %d %q, want %d and no message", got, msg, ExitBrokenPipe)
	}
	if got := c.closeCode(t); got != 1000 {
		t.Fatalf("close code %d, want 1000", got)
	}
	if r.stderr.String() != "tl-tail: connected to "+f.srv.URL+", tenant acme (epoch e1, newest seq 0)\n"+
		"tl-tail: tenant acme holds no events yet; waiting (Ctrl-C to stop)\n" {
		t.Fatalf("stderr %q", r.stderr.String())
	}
}

// TestInterruptFlushes: on interrupt the lines already received reach
// stdout, the WebSocket is closed with 1000, and the run ends as cancelled
// (130/143 from cli.Main), also when a lossless write was waiting.
func TestInterruptFlushes(t *testing.T) {
	for _, lossless := range []bool{false, true} {
		t.Run(map[bool]string{false: "lossy", true: "lossless"}[lossless], func(t *testing.T) {
			f := newFakeRelay(t)
			args := []string{"acme"}
			if lossless {
				args = append(args, "--lossless")
			}
			r := startTail(t, f, nil, args...)
			c := f.next(t)
			c.send(t, hello("e1", 0), evs(1, 100))
			testkit.WaitFor(t, "events", func() bool { return r.stdout.String() == evs(1, 100) })
			r.cancel()
			if err := r.wait(t); code(err) != cli.ExitInterrupted {
				t.Fatalf("exit %v", err)
			}
			if got := c.closeCode(t); got != 1000 {
				t.Fatalf("close code %d", got)
			}
		})
	}
}

// gateWriter is a stdout that takes nothing until opened; entered is closed
// by the first write.
type gateWriter struct {
	entered, open chan struct{}
	once          sync.Once
	buf           testkit.SyncBuffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	return g.buf.Write(p)
}

// TestInterruptFlushesStalledStdout: lines received but not yet taken by a
// stalled stdout when the interrupt comes are still written once stdout
// takes them (within the shutdown grace period).
func TestInterruptFlushesStalledStdout(t *testing.T) {
	g := &gateWriter{entered: make(chan struct{}), open: make(chan struct{})}
	f := newFakeRelay(t)
	r := startTail(t, f, g, "acme")
	c := f.next(t)
	c.send(t, hello("e1", 0), evs(1, 100))
	<-g.entered
	r.cancel()
	time.Sleep(300 * time.Millisecond) // the interrupt is being handled; stdout still stalled
	close(g.open)
	if err := r.wait(t); code(err) != cli.ExitInterrupted {
		t.Fatalf("exit %v", err)
	}
	if got := g.buf.String(); got != evs(1, 100) {
		t.Fatalf("stdout got %d bytes, want all %d", len(got), len(evs(1, 100)))
	}
	if got := c.closeCode(t); got != 1000 {
		t.Fatalf("close code %d", got)
	}
}
