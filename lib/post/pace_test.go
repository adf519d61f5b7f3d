package post

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when the pacer sleeps, so a schedule can be
// checked exactly.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(d time.Duration) bool {
	c.t = c.t.Add(d)
	return true
}

func TestPacer(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		rate   float64
		replay float64
		ts     []int64               // event timestamps (ms), noTimestamp for none
		jump   map[int]time.Duration // the relay was slow before event i
		want   []time.Duration       // when each event was released
	}{
		{name: "unpaced", ts: []int64{0, 5000, 9000}, want: ms(0, 0, 0)},
		{name: "rate 100/s", rate: 100, ts: []int64{0, 0, 0, 0, 0}, want: ms(0, 10, 20, 30, 40)},
		{name: "replay 1x", replay: 1, ts: []int64{1000, 1250, 1250, 2000}, want: ms(0, 250, 250, 1000)},
		{name: "replay 10x", replay: 10, ts: []int64{0, 1000, 1000, 3000, 2000, 5000}, want: ms(0, 100, 100, 300, 300, 500)},
		{name: "replay without timestamps", replay: 2, ts: []int64{noTimestamp, 1000, noTimestamp, 3000}, want: ms(0, 0, 0, 1000)},
		{name: "replay and rate: the slower wins", rate: 10, replay: 1, ts: []int64{0, 10, 20, 1000}, want: ms(0, 100, 200, 1000)},
		{name: "replay re-anchors after a lag", replay: 1, ts: []int64{0, 100, 200, 300},
			jump: map[int]time.Duration{2: 5 * time.Second}, want: ms(0, 100, 5100, 5200)},
		{name: "rate restarts after a lag", rate: 10, ts: []int64{0, 0, 0, 0},
			jump: map[int]time.Duration{2: 5 * time.Second}, want: ms(0, 100, 5100, 5200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Unix(1000, 0)
			c := &fakeClock{t: start}
			p := &pacer{rate: tt.rate, replay: tt.replay, now: c.now, sleep: c.sleep}
			var got []time.Duration
			for i, ts := range tt.ts {
				c.t = c.t.Add(tt.jump[i])
				if !p.wait(ts) {
					t.Fatal("wait returned false")
				}
				got = append(got, c.t.Sub(start))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("released at %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPacerStops(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	p := &pacer{rate: 1, now: c.now, sleep: func(time.Duration) bool { return false }}
	if !p.wait(noTimestamp) || p.wait(noTimestamp) {
		t.Fatal("want the first event released at once and the second stopped")
	}
}

// TestPacingLowerBound runs tl-post with a real clock: events spanning T of
// their own time, replayed at speed S, cannot all be published before T/S;
// n events at --rate R not before (n-1)/R. (Only lower bounds: a loaded
// machine makes runs slower, never faster.)
func TestPacingLowerBound(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ts   []int64
		min  time.Duration
	}{
		{"replay 5x", []string{"--replay", "5"}, []int64{0, 100, 400, 400, 1000}, 200 * time.Millisecond},
		{"replay 1x", []string{"--replay"}, []int64{0, 150, 300}, 300 * time.Millisecond},
		{"rate 50/s", []string{"--rate", "50"}, make([]int64, 11), 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRelay()
			srv := httptest.NewServer(f)
			defer srv.Close()
			var in strings.Builder
			for i, ts := range tt.ts {
				fmt.Fprintf(&in, `{"timestamp":%d,"type":"click","path":"/%d"}`+"\n", 1795824000000+ts, i)
			}
			start := time.Now()
			r := runPost(t, nil, srv.URL, strings.NewReader(in.String()), append(tt.args, "acme", "--linger", "1ms")...)
			took := time.Since(start)
			events, _, _, _ := f.snapshot()
			if r.code != 0 || len(events["acme"]) != len(tt.ts) {
				t.Fatalf("exit %d, %d events; stderr:\n%s", r.code, len(events["acme"]), r.stderr)
			}
			if took < tt.min {
				t.Errorf("published in %v, faster than the pace allows (%v)", took, tt.min)
			}
		})
	}
}
