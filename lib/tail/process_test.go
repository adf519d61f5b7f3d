package tail

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/event"
	"github.com/tl-sh/tl/lib/internal/client"
	"github.com/tl-sh/tl/lib/internal/drain"
)

// processTail is a tail whose stdout is out, for process alone.
func processTail(out io.Writer, count int64) *tail {
	conn, _ := (&client.Flags{Relay: "http://127.0.0.1:1"}).Resolve(&cli.Env{Getenv: func(string) string { return "" }})
	o := &options{tenant: "acme", count: count, conn: conn}
	t := newTail(o, &cli.Env{Stdout: out, Stderr: io.Discard})
	t.out = drain.New(out, drain.Config{Lossless: true})
	return t
}

// FuzzProcess: whatever a relay sends, stdout gets only whole lines that
// were sent, in order, never a control line, never a line twice.
func FuzzProcess(f *testing.F) {
	f.Add([]byte(hello("e", 0) + evs(1, 3)))
	f.Add([]byte(ev(1) + gap(2, 3, "evicted") + ev(4) + "\n\n" + ev(4) + `{"seq":x}` + "\n" + "plain"))
	f.Add([]byte(`{"seq":18446744073709551615,"a":1}` + "\n" + `{"seq":1,` + "\n" + `{"control":"bogus"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var out bytes.Buffer
		tl := processTail(&out, 0)
		in := bytes.Clone(msg)
		tl.process(context.Background(), msg)
		tl.out.Close(context.Background())
		if out.Len() > 0 && out.Bytes()[out.Len()-1] != '\n' {
			t.Fatalf("output ends in a partial line: %q", out.Bytes())
		}
		rest := in
		for _, line := range bytes.SplitAfter(out.Bytes(), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if event.IsControl(line) {
				t.Fatalf("a control line reached stdout: %q", line)
			}
			i := bytes.Index(append(bytes.Clone(rest), '\n'), line)
			if i < 0 {
				t.Fatalf("line %q was not sent (or not in this order)", line)
			}
			rest = rest[min(i+len(line), len(rest)):]
		}
	})
}

// BenchmarkProcess is the hot path: a packed message of 200-byte events
// through the line scan and into the stdout writer (on io.Discard).
func BenchmarkProcess(b *testing.B) {
	for _, perMsg := range []int{1, 256} {
		b.Run(fmt.Sprintf("lines=%d", perMsg), func(b *testing.B) {
			var msg []byte
			for i := range perMsg {
				l := []byte(ev(uint64(i + 1)))
				l = append(l[:len(l)-2], bytes.Repeat([]byte{' '}, 200-len(l))...)
				msg = append(msg, append(l, '}', '\n')...)
			}
			tl := processTail(io.Discard, 0)
			ctx := context.Background()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				tl.haveSeq = false // the same message again: no duplicate skipping
				tl.process(ctx, msg)
			}
			tl.out.Close(ctx)
			b.ReportMetric(float64(b.N*perMsg)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
