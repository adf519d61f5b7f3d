package format

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tl-sh/tl/lib/cli"
)

const clickLine = `{"seq":3,"tenant_id":"acme","timestamp":1795824000000,"type":"click","path":"/buy","metadata":{"button":"buy"}}` + "\n"

func TestColorWanted(t *testing.T) {
	tests := []struct {
		flag string
		env  map[string]string
		tty  bool
		want bool
	}{
		{"auto", nil, true, true},
		{"auto", nil, false, false},
		{"always", nil, false, true},
		{"always", map[string]string{"NO_COLOR": "1"}, false, true},
		{"never", map[string]string{"CLICOLOR_FORCE": "1"}, true, false},
		{"auto", map[string]string{"NO_COLOR": "1"}, true, false},
		{"auto", map[string]string{"NO_COLOR": ""}, true, true},
		{"auto", map[string]string{"NO_COLOR": "1", "CLICOLOR_FORCE": "1"}, false, false},
		{"auto", map[string]string{"CLICOLOR_FORCE": "1"}, false, true},
		{"auto", map[string]string{"CLICOLOR_FORCE": "0"}, false, false},
		{"auto", map[string]string{"FORCE_COLOR": "1"}, false, true},
		{"auto", map[string]string{"FORCE_COLOR": "1", "TERM": "dumb"}, false, true},
		{"auto", map[string]string{"TERM": "dumb"}, true, false},
		{"auto", map[string]string{"TERM": "xterm-256color"}, true, true},
	}
	for _, tt := range tests {
		got, err := colorWanted(tt.flag, func(k string) string { return tt.env[k] }, tt.tty)
		if err != nil || got != tt.want {
			t.Errorf("colorWanted(%s, %v, tty=%v) = %v, %v; want %v", tt.flag, tt.env, tt.tty, got, err, tt.want)
		}
	}
}

// runOnTerminal runs tl-fmt in-process with stdout on a pty and returns
// what the terminal received.
func runOnTerminal(t *testing.T, vars map[string]string, args ...string) (string, int) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var got bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&got, ptmx) // ends when the tty side closes (EIO)
		close(done)
	}()
	var errb bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(clickLine), Stdout: tty, Stderr: &errb,
		Getenv: func(k string) string { return vars[k] }}
	code, _ := cli.Code(Run(context.Background(), args, env))
	tty.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal did not close")
	}
	return strings.ReplaceAll(got.String(), "\r\n", "\n"), code
}

func TestTerminal(t *testing.T) {
	tests := []struct {
		name  string
		vars  map[string]string
		args  []string
		color bool
		line  bool // -o line by default on a terminal
	}{
		{"default", nil, nil, true, true},
		{"NO_COLOR", map[string]string{"NO_COLOR": "1"}, nil, false, true},
		{"TERM=dumb", map[string]string{"TERM": "dumb"}, nil, false, true},
		{"--color=never", nil, []string{"--color=never"}, false, true},
		{"-M", nil, []string{"-M"}, false, true},
		{"-c keeps colour", nil, []string{"-c"}, true, false},
		{"-o json", nil, []string{"-o", "json", "."}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runOnTerminal(t, tt.vars, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			if has := strings.Contains(out, "\x1b["); has != tt.color {
				t.Errorf("colour %v, want %v: %q", has, tt.color, out)
			}
			plain := stripANSI(out)
			if tt.line {
				want := "2026-11-28T00:00:00.000Z #3 acme     click    /buy button=buy\n"
				if plain != want {
					t.Errorf("line output %q, want %q", plain, want)
				}
				if tt.color && !strings.Contains(out, typeColor("click")+"click") {
					t.Errorf("the type is not coloured as a click: %q", out)
				}
			} else if !strings.HasPrefix(plain, `{"seq":3,`) {
				t.Errorf("json output %q", plain)
			}
		})
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestPipeHasNoColor: on a pipe, output is compact JSON without colour,
// byte for byte the input.
func TestPipeHasNoColor(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	env := &cli.Env{Stdin: strings.NewReader(clickLine), Stdout: w, Stderr: io.Discard,
		Getenv: func(string) string { return "" }}
	err = Run(context.Background(), nil, env)
	w.Close()
	got, _ := io.ReadAll(r)
	if err != nil || string(got) != clickLine {
		t.Errorf("got %q, %v; want the line unchanged", got, err)
	}
}

// chanWriter hands each write to a channel, as a pipe to a reader would.
type chanWriter struct{ c chan string }

func (w chanWriter) Write(b []byte) (int, error) {
	w.c <- string(b)
	return len(b), nil
}

// TestLive: a line written to tl-fmt's stdin appears on its stdout while
// stdin is still open (no block buffering), in both the parallel and the
// sequential engines.
func TestLive(t *testing.T) {
	for _, args := range [][]string{{".path"}, {`.type=="click"`}, {"-n", "inputs | .path"}, {"debug | .path"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			inR, inW := io.Pipe()
			outs := make(chan string, 100)
			env := &cli.Env{Stdin: inR, Stdout: chanWriter{outs}, Stderr: io.Discard,
				Getenv: func(string) string { return "" }}
			done := make(chan error, 1)
			go func() { done <- Run(context.Background(), args, env) }()
			for i := range 3 {
				go io.WriteString(inW, clickLine) // fails once inR is closed
				select {
				case err := <-done:
					t.Fatalf("tl-fmt ended early: %v", err)
				case got := <-outs:
					if !strings.Contains(got, "/buy") {
						t.Fatalf("event %d: got %q", i, got)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("event %d did not come out while stdin stayed open", i)
				}
			}
			inW.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			inR.Close()
		})
	}
}

// epipeWriter fails like a pipe whose reader has gone.
type epipeWriter struct{}

func (epipeWriter) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "|1", Err: syscall.EPIPE}
}

func TestClosedPipeIsQuiet(t *testing.T) {
	for _, args := range [][]string{{"."}, {"-n", "inputs"}, {"--list"}} {
		var errb bytes.Buffer
		env := &cli.Env{Stdin: strings.NewReader(strings.Repeat(clickLine, 1000)), Stdout: epipeWriter{},
			Stderr: &errb, Getenv: func(string) string { return "" }}
		code, msg := cli.Code(Run(context.Background(), args, env))
		if code != exitPipe || msg != "" || errb.Len() != 0 {
			t.Errorf("%v: exit %d, message %q, stderr %q; want %d and silence", args, code, msg, errb.String(), exitPipe)
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/tl-fmt once for the tests that need a real process.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tl-fmt-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "tl-fmt")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/tl-fmt").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestHeadEndsQuietly: `tl-fmt . | head -1` ends without a word on stderr.
func TestHeadEndsQuietly(t *testing.T) {
	bin := binary(t)
	in := filepath.Join(t.TempDir(), "in.ndjson")
	os.WriteFile(in, bytes.Repeat([]byte(clickLine), 200000), 0o644)
	for _, args := range [][]string{{"."}, {"-o", "pretty", "."}, {"-n", "inputs"}} {
		cmd := exec.Command(bin, append(args, in)...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.Contains(line, "seq") && !strings.Contains(line, "{") {
			t.Errorf("%v: first line %q, %v", args, line, err)
		}
		out.Close() // as head does after its line
		err = cmd.Wait()
		if errb.Len() != 0 {
			t.Errorf("%v: stderr %q, want silence", args, errb.String())
		}
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || (ee.ExitCode() != exitPipe && ee.ExitCode() != -1)) {
			t.Errorf("%v: %v, want death by SIGPIPE or exit %d", args, err, exitPipe)
		}
	}
}

// TestBinaryOnTerminal runs the real binary on a pty: line output, coloured.
func TestBinaryOnTerminal(t *testing.T) {
	bin := binary(t)
	in := filepath.Join(t.TempDir(), "in.ndjson")
	os.WriteFile(in, []byte(clickLine), 0o644)
	for _, noColor := range []string{"", "1"} {
		cmd := exec.Command(bin, ".", in)
		cmd.Env = []string{"NO_COLOR=" + noColor, "TERM=xterm", "HOME=" + t.TempDir()}
		ptmx, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		io.Copy(&got, ptmx) // ends with EIO when the process exits
		cmd.Wait()
		ptmx.Close()
		out := got.String()
		if has := strings.Contains(out, "\x1b["); has != (noColor == "") {
			t.Errorf("NO_COLOR=%q: colour %v in %q", noColor, has, out)
		}
		if !strings.Contains(stripANSI(out), "acme     click    /buy button=buy") {
			t.Errorf("NO_COLOR=%q: not line output: %q", noColor, out)
		}
	}
}

// countWriter counts the writes that reach it.
type countWriter struct {
	writes, bytes int
}

func (w *countWriter) Write(b []byte) (int, error) {
	w.writes++
	w.bytes += len(b)
	return len(b), nil
}

// TestFloodIsBatched: when the input has many lines ready, output goes out
// in large writes, not one per line, in both engines.
func TestFloodIsBatched(t *testing.T) {
	in := strings.Repeat(clickLine, 20000)
	for _, args := range [][]string{{"."}, {".path"}, {"-n", "inputs"}, {"debug | .path"}} {
		var w countWriter
		env := &cli.Env{Stdin: strings.NewReader(in), Stdout: &w, Stderr: io.Discard,
			Getenv: func(string) string { return "" }}
		if err := Run(context.Background(), args, env); err != nil {
			t.Fatal(err)
		}
		if w.bytes == 0 || w.writes > 20000/100 {
			t.Errorf("%v: %d bytes in %d writes for 20000 lines; want batches", args, w.bytes, w.writes)
		}
	}
}
