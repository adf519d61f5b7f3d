package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// TestDurableCutSegment: the relay is killed, and its newest segment cut
// short before it starts again (a restore or a copy gone wrong: not a
// crash, so the events cut off were acknowledged). The restarted relay
// starts a new epoch, never gives the lost seqs again, and tells a client
// resuming with the old epoch: the hello names the new epoch, the history
// kept is replayed as it was, a gap line names exactly the seqs lost, and
// tl-tail, following across the restart, says the history restarted.
func TestDurableCutSegment(t *testing.T) {
	const tenant = "cut"
	dir := t.TempDir()
	r := startRelay(t, "127.0.0.1:0", "--data-dir", dir)
	addr := strings.TrimPrefix(r.url, "http://")
	names := map[string]map[uint64]string{} // epoch -> seq -> event
	pub := func(r *secProc, from, n int) accepted {
		t.Helper()
		var body bytes.Buffer
		for i := from; i < from+n; i++ {
			fmt.Fprintf(&body, `{"type":"custom","path":"/cut","metadata":{"id":"e%d"}}`+"\n", i)
		}
		a, ok := publish(http.DefaultClient, r.url, tenant, body.Bytes())
		if !ok {
			t.Fatalf("batch from e%d not accepted:\n%s", from, r.log.String())
		}
		if names[a.Epoch] == nil {
			names[a.Epoch] = map[uint64]string{}
		}
		for i := 0; i < n; i++ {
			seq, ev := a.FirstSeq+uint64(i), fmt.Sprintf("e%d", from+i)
			if old, ok := names[a.Epoch][seq]; ok && old != ev {
				t.Fatalf("(%s, %d) acknowledged as %s, then as %s", a.Epoch, seq, old, ev)
			}
			names[a.Epoch][seq] = ev
		}
		return a
	}
	var epoch string
	for b := 0; b < 10; b++ {
		epoch = pub(r, 1+10*b, 10).Epoch
	}
	tail := exec.Command(filepath.Join(binDir, "tl-tail"), "--relay", r.url, "--since", "0", tenant)
	tail.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GORACE=" + os.Getenv("GORACE")}
	var tailOut, tailErr testkit.SyncBuffer
	tail.Stdout, tail.Stderr = &tailOut, &tailErr
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tail.Process.Kill(); tail.Wait() })
	waitFor(t, "tl-tail printing seq 100", func() bool { return strings.Contains(tailOut.String(), `"id":"e100"`) })
	r.kill()

	// Cut the segment at the start of seq 71's record (16 bytes of header
	// before its line).
	segs, _ := filepath.Glob(filepath.Join(dir, "tenants", tenant, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte(`{"seq":71,`))
	if at < 16 {
		t.Fatalf("seq 71 not found in %s", segs[0])
	}
	if err := os.Truncate(segs[0], int64(at-16)); err != nil {
		t.Fatal(err)
	}

	r = startRelay(t, addr, "--data-dir", dir)
	r.waitLog("acknowledged events missing")
	a := pub(r, 101, 5)
	if a.Epoch == epoch || a.FirstSeq != 101 {
		t.Fatalf("after the cut: 202 %+v; want a new epoch and first_seq 101 (seqs up to 100 were acknowledged)", a)
	}

	// A client resuming after seq 100 of the old epoch.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, fmt.Sprintf("ws://%s/v1/tenants/%s/stream?since=100&epoch=%s", addr, tenant, epoch), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	lines := make(chan []byte)
	go func() {
		defer close(lines)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			for _, line := range bytes.Split(bytes.TrimSpace(msg), []byte("\n")) {
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	var got []string
	for line := range lines {
		if len(line) == 0 {
			continue
		}
		var d struct {
			Control  string            `json:"control"`
			Epoch    string            `json:"epoch"`
			From     uint64            `json:"from_seq"`
			To       uint64            `json:"to_seq"`
			Reason   string            `json:"reason"`
			Seq      uint64            `json:"seq"`
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal(line, &d); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		switch d.Control {
		case "hello":
			got = append(got, "hello "+d.Epoch)
		case "gap":
			got = append(got, fmt.Sprintf("gap %d-%d %s", d.From, d.To, d.Reason))
		case "":
			if ev := names[epoch][d.Seq]; d.Seq <= 70 && ev != d.Metadata["id"] {
				t.Fatalf("seq %d of the new epoch is %s; it was acknowledged as %s", d.Seq, d.Metadata["id"], ev)
			}
			if ev := names[a.Epoch][d.Seq]; d.Seq > 100 && ev != d.Metadata["id"] {
				t.Fatalf("seq %d is %s; it was acknowledged as %s", d.Seq, d.Metadata["id"], ev)
			}
			if n := len(got); n > 0 && strings.HasPrefix(got[n-1], "seqs ") {
				got[n-1] = fmt.Sprintf("%s-%d", strings.Split(got[n-1], "-")[0], d.Seq)
			} else {
				got = append(got, fmt.Sprintf("seqs %d-%d", d.Seq, d.Seq))
			}
		}
		if d.Seq == a.LastSeq {
			cancel()
			break
		}
	}
	want := []string{"hello " + a.Epoch, "seqs 1-70", "gap 71-100 evicted", "seqs 101-105"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("resuming with the old epoch: %v; want %v", got, want)
	}
	waitFor(t, "tl-tail telling the restart", func() bool { return strings.Contains(tailErr.String(), "history restarted") })
	waitFor(t, "tl-tail printing e105", func() bool { return strings.Contains(tailOut.String(), `"id":"e105"`) })
	tail.Process.Signal(syscall.SIGTERM)
	tail.Wait()
}

// waitFor waits up to a minute for cond, polling.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
