package post

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tl-sh/tl/lib/internal/ndjson"
)

// TestByteOrderMark: a UTF-8 BOM at the start of a file or of stdin is
// skipped, as jq does; line 1 is published.
func TestByteOrderMark(t *testing.T) {
	f := newFakeRelay()
	srv := httptest.NewServer(f)
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "bom.ndjson")
	os.WriteFile(file, []byte(ndjson.BOM+genEvents(2, "acme")), 0o644)
	r := runPost(t, nil, srv.URL, strings.NewReader(ndjson.BOM+genEvents(3, "acme")), "-", file)
	events, _, _, _ := f.snapshot()
	if got := paths(events["acme"]); r.code != 0 || !slices.Equal(got, []string{"/e/0", "/e/1", "/e/2", "/e/0", "/e/1"}) {
		t.Fatalf("exit %d, published %q; stderr:\n%s", r.code, got, r.stderr)
	}
}

// TestReplayMaxGap: --replay cuts a wait longer than --replay-max-gap and
// says so; the events after it keep their own spacing.
func TestReplayMaxGap(t *testing.T) {
	const hour = int64(time.Hour / time.Millisecond)
	for _, tt := range []struct {
		maxGap time.Duration
		want   []time.Duration
		notes  int
	}{
		{10 * time.Second, []time.Duration{0, 10 * time.Second, 10*time.Second + 500*time.Millisecond, 20*time.Second + 500*time.Millisecond}, 2},
		{0, []time.Duration{0, 3 * time.Hour, 3*time.Hour + 500*time.Millisecond, 6*time.Hour + 500*time.Millisecond}, 0},
	} {
		start := time.Unix(1000, 0)
		c := &fakeClock{t: start}
		var notes []string
		p := &pacer{replay: 1, maxGap: tt.maxGap, note: func(s string) { notes = append(notes, s) }, now: c.now, sleep: c.sleep}
		var got []time.Duration
		for _, ts := range []int64{0, 3 * hour, 3*hour + 500, 6*hour + 500} {
			p.wait(ts)
			got = append(got, c.t.Sub(start))
		}
		if !slices.Equal(got, tt.want) || len(notes) != tt.notes {
			t.Errorf("max gap %v: released at %v, want %v; notes %q", tt.maxGap, got, tt.want, notes)
		}
		if tt.notes > 0 && notes[0] != "tl-post: --replay: the next event is stamped 3h0m0s after the last; waiting 10s instead (--replay-max-gap)" {
			t.Errorf("note %q", notes[0])
		}
	}

	// The same through the command, on the real clock: a recording with an
	// hour in it is published after the short gap, with the message.
	f := newFakeRelay()
	srv := httptest.NewServer(f)
	defer srv.Close()
	in := `{"tenant_id":"acme","timestamp":1795824000000,"type":"click","path":"/e/0"}` + "\n" +
		`{"tenant_id":"acme","timestamp":1795827600000,"type":"click","path":"/e/1"}` + "\n"
	r := runPost(t, nil, srv.URL, strings.NewReader(in), "--replay", "--replay-max-gap", "20ms")
	events, _, _, _ := f.snapshot()
	if r.code != 0 || len(events["acme"]) != 2 || !strings.Contains(r.stderr, "stamped 1h0m0s after the last; waiting 20ms instead (--replay-max-gap)") {
		t.Fatalf("exit %d, %d events; stderr:\n%s", r.code, len(events["acme"]), r.stderr)
	}
}

// TestTenantArgIsFile: `tl-post events.log < /dev/null` keeps taking
// events.log as the tenant (the meaning does not depend on the directory),
// but warns, pointing to ./FILE and -t.
func TestTenantArgIsFile(t *testing.T) {
	f := newFakeRelay()
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Chdir(t.TempDir())
	os.WriteFile("events.log", []byte(genEvents(3, "acme")), 0o644)
	r := runPost(t, nil, srv.URL, nil, "events.log")
	if !strings.Contains(r.stderr, `tl-post: warning: "events.log" is taken as the TENANT, but it is also a file here; to read it write ./events.log (or name the tenant: -t TENANT events.log)`) {
		t.Errorf("no warning; stderr:\n%s", r.stderr)
	}
	// No warning for a tenant that is not a file here, nor with -t.
	for _, args := range [][]string{{"acme"}, {"-t", "acme", "events.log"}} {
		if r := runPost(t, nil, srv.URL, nil, args...); strings.Contains(r.stderr, "warning") || r.code != 0 {
			t.Errorf("%q: exit %d, stderr:\n%s", args, r.code, r.stderr)
		}
	}
}

// TestMessages: the refusal of another tenant's line names --retarget, an
// unreadable file is reported with the tl-post: prefix, and "lines read"
// counts blank lines, as the line numbers do.
func TestMessages(t *testing.T) {
	f := newFakeRelay()
	srv := httptest.NewServer(f)
	defer srv.Close()
	in := genEvents(1, "acme") + "\n\n" + genEvents(1, "globex") + "\n"
	r := runPost(t, nil, srv.URL, strings.NewReader(in), "acme", "-", "/nonexistent/x.ndjson")
	for _, want := range []string{
		`<stdin>:4: tenant_id "globex" does not match tenant "acme" (--retarget publishes it to acme anyway)`,
		"\ntl-post: open /nonexistent/x.ndjson: no such file or directory\n",
		"; 5 lines read, 1 refused",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestMaxErrors: a flood of bad lines prints --max-errors of them, then one
// count; the good lines still go.
func TestMaxErrors(t *testing.T) {
	f := newFakeRelay()
	srv := httptest.NewServer(f)
	defer srv.Close()
	in := strings.Repeat("garbage\n", 1000) + genEvents(1, "acme")
	for _, tt := range []struct {
		args  []string
		shown int
		more  string
	}{
		{nil, 100, "tl-post: 900 more bad lines not shown (--max-errors 100)"},
		{[]string{"--max-errors", "3"}, 3, "tl-post: 997 more bad lines not shown (--max-errors 3)"},
		{[]string{"--max-errors", "0"}, 1000, ""},
	} {
		r := runPost(t, nil, srv.URL, strings.NewReader(in), append([]string{"acme"}, tt.args...)...)
		shown := strings.Count(r.stderr, ": invalid JSON at byte 1")
		if r.code != 1 || shown != tt.shown || !strings.Contains(r.stderr, tt.more) || !strings.Contains(r.stderr, "1,000 refused") {
			t.Errorf("%q: exit %d, %d lines shown, want %d and %q; stderr ends:\n%s", tt.args, r.code, shown, tt.shown, tt.more, r.stderr[max(0, len(r.stderr)-300):])
		}
	}
	events, _, _, _ := f.snapshot()
	if len(events["acme"]) != 3 {
		t.Errorf("%d events published, want the good line 3 times", len(events["acme"]))
	}
}

// TestProgressNotWhileTyping: --progress=auto draws on a terminal, but not
// when stdin is that terminal (the line would be redrawn where the user
// types events).
func TestProgressNotWhileTyping(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	defer tty.Close()
	pr, pw, _ := os.Pipe()
	defer pr.Close()
	defer pw.Close()
	getenv := func(string) string { return "" }
	if m := progressMode("auto", false, tty, tty, getenv); m != progressNone {
		t.Errorf("stdin and stderr on a terminal: mode %d, want none", m)
	}
	if m := progressMode("auto", false, pr, tty, getenv); m != progressTTY {
		t.Errorf("stdin a pipe, stderr a terminal: mode %d, want tty", m)
	}
	if m := progressMode("tty", false, tty, tty, getenv); m != progressTTY {
		t.Errorf("--progress=tty: mode %d, want tty", m)
	}
}
