package invariant

import (
	"strings"
	"testing"
)

// Hand-made runs: each correct one must pass, each broken one must be
// caught by the clause it breaks.

func ack(epoch string, first uint64, ids ...string) Publish {
	return Publish{IDs: ids, Outcome: Acked, Epoch: epoch, FirstSeq: first, LastSeq: first + uint64(len(ids)) - 1}
}

func unknown(ids ...string) Publish { return Publish{IDs: ids, Outcome: Unknown} }

func hello(epoch string, last uint64) Line { return Line{Kind: Hello, Epoch: epoch, LastSeq: last} }

func d(seq uint64, id string) Line { return Line{Kind: Delivery, Seq: seq, ID: id} }

func gap(from, to uint64, reason string) Line {
	return Line{Kind: Gap, From: from, To: to, Reason: reason}
}

// live is a connection that asked for nothing; resume one that asked for
// since/epoch.
func live(lines ...Line) Conn { return Conn{Lines: lines} }

func resume(since uint64, epoch string, lines ...Line) Conn {
	return Conn{HasSince: true, Since: since, Epoch: epoch, Lines: lines}
}

func sub(name string, conns ...Conn) Sub { return Sub{Name: name, Conns: conns} }

var (
	keeps   = Options{Settled: true, FinalEpoch: "e1"}                     // --data-dir, --broker
	memory  = Options{Settled: true, FinalEpoch: "e2", LosesHistory: true} // the default, killed once
	evicts  = Options{Settled: true, FinalEpoch: "e1", Evicts: true}
	unclear = Options{} // not settled: only what was received is judged
)

func TestCorrectRuns(t *testing.T) {
	abc := []Publish{ack("e1", 1, "a", "b"), ack("e1", 3, "c")}
	cases := []struct {
		name string
		pubs []Publish
		subs []Sub
		opts Options
	}{
		{"one subscriber, live from the start", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "b"), d(3, "c")))}, keeps},
		{"live from the middle", abc,
			[]Sub{sub("s", live(hello("e1", 2), d(3, "c")))}, keeps},
		{"resumed across a reconnect", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a")), resume(1, "e1", hello("e1", 3), d(2, "b"), d(3, "c")))}, keeps},
		{"since without epoch means the current one", abc,
			[]Sub{sub("s", resume(1, "", hello("e1", 3), d(2, "b"), d(3, "c")))}, keeps},
		{"an exact gap where the history evicts", abc,
			[]Sub{sub("s", resume(0, "e1", hello("e1", 3), gap(1, 2, "evicted"), d(3, "c")))}, evicts},
		{"not settled: a subscriber that stopped early", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a")))}, unclear},
		{"a refused event, never delivered", []Publish{ack("e1", 1, "a"), {IDs: []string{"x"}, Outcome: Refused}, ack("e1", 2, "b")},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "b")))}, keeps},
		{"unknown events: delivered once, or never", []Publish{ack("e1", 1, "a"), unknown("x"), unknown("y"), ack("e1", 3, "b")},
			[]Sub{
				sub("s1", live(hello("e1", 0), d(1, "a"), d(2, "x"), d(3, "b"))),
				sub("s2", live(hello("e1", 0), d(1, "a"), d(2, "x"), d(3, "b"))),
			}, keeps},
		{"acknowledged without a place (tl-post), placed by deliveries", []Publish{ack("e1", 1, "a"), {IDs: []string{"p", "q"}, Outcome: AckedUnplaced}},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "p"), d(3, "q")))}, keeps},
		{"memory killed: a new hello, the new epoch from seq 1, the old tail lost by design",
			[]Publish{ack("e1", 1, "a", "b", "c"), ack("e2", 1, "d", "e")},
			[]Sub{
				sub("s", live(hello("e1", 0), d(1, "a"), d(2, "b")), resume(2, "e1", hello("e2", 1), d(1, "d"), d(2, "e"))),
				sub("late", resume(0, "", hello("e2", 2), d(1, "d"), d(2, "e"))),
			}, memory},
		{"memory: a retry that crossed the epoch change",
			[]Publish{ack("e1", 1, "a"), {IDs: []string{"r"}, Outcome: Acked, Epoch: "e2", FirstSeq: 1, LastSeq: 1, Retried: true}},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "r")), resume(2, "e1", hello("e2", 1), d(1, "r")))}, memory},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if v := Check(tc.pubs, tc.subs, tc.opts); len(v) > 0 {
				t.Errorf("a correct run was reported:\n%s", join(v))
			}
		})
	}
}

func TestBrokenRuns(t *testing.T) {
	abc := []Publish{ack("e1", 1, "a", "b"), ack("e1", 3, "c")}
	cases := []struct {
		name   string
		pubs   []Publish
		subs   []Sub
		opts   Options
		clause string
		says   string // a part of the message
	}{
		{"two 202s give one seq", []Publish{ack("e1", 1, "a", "b"), ack("e1", 2, "c")},
			nil, unclear, "unique", "(e1, 2) is given twice"},
		{"a rollback reuses acknowledged seqs (issue 16, case 1)", []Publish{ack("e1", 1, "a", "b", "c"), ack("e1", 2, "d", "e")},
			nil, unclear, "unique", "given twice"},
		{"a 202 whose range is not its batch", []Publish{{IDs: []string{"a", "b"}, Outcome: Acked, Epoch: "e1", FirstSeq: 1, LastSeq: 3}},
			nil, unclear, "unique", "202 for 2 events"},
		{"two subscribers get different events at one place", []Publish{unknown("x"), unknown("y")},
			[]Sub{sub("s1", live(hello("e1", 0), d(1, "x"))), sub("s2", live(hello("e1", 0), d(1, "y")))}, unclear, "unique", "belongs to x"},
		{"an unknown event at an acknowledged one's seq", []Publish{ack("e1", 1, "a"), unknown("x")},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "x")))}, unclear, "unique", "belongs to a"},
		{"memory killed, the numbering silently reused in the old epoch", []Publish{ack("e1", 1, "a"), ack("e1", 1, "d")},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a")), resume(1, "e1", hello("e1", 1)))}, Options{LosesHistory: true}, "unique", "(e1, 1) is given twice"},
		{"delivered at another seq than its 202", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(3, "b")))}, unclear, "placed", "its 202 said (e1, 2)"},
		{"delivered in another epoch than its 202", abc,
			[]Sub{sub("s", live(hello("e2", 0), d(1, "a")))}, unclear, "placed", "its 202 said (e1, 1)"},
		{"an event nobody published", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "b"), d(3, "c"), d(4, "zz")))}, unclear, "placed", "nobody published"},
		{"an unknown event published twice", []Publish{unknown("x")},
			[]Sub{sub("s1", live(hello("e1", 0), d(1, "x"))), sub("s2", live(hello("e1", 0), d(2, "x")))}, unclear, "placed", "published twice"},
		{"an unknown event in two epochs where the history is kept", []Publish{unknown("x")},
			[]Sub{sub("s1", live(hello("e1", 0), d(1, "x"))), sub("s2", live(hello("e2", 0), d(1, "x")))}, unclear, "placed", "published twice"},
		{"an event refused with 503, delivered all the same (issue 16, case 2)", []Publish{ack("e1", 1, "a"), {IDs: []string{"x"}, Outcome: Refused}},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "x")))}, unclear, "placed", "refused (503)"},
		{"memory: a retried event's place in the lost epoch, given to another event too",
			[]Publish{{IDs: []string{"r"}, Outcome: Acked, Epoch: "e2", FirstSeq: 1, LastSeq: 1, Retried: true}, unknown("y")},
			[]Sub{sub("s1", live(hello("e1", 4), d(5, "r"))), sub("s2", live(hello("e1", 4), d(5, "y")))}, Options{LosesHistory: true}, "unique", "belongs to r"},
		{"an event twice", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "b"), d(2, "b"), d(3, "c")))}, keeps, "ordered", "twice"},
		{"an event twice across a reconnect", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "b")), resume(2, "e1", hello("e1", 3), d(2, "b"), d(3, "c")))}, keeps, "ordered", "twice"},
		{"out of order", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(2, "b"), d(1, "a"), d(3, "c")))}, unclear, "ordered", "out of order"},
		{"a gap that covers what it then delivers", abc,
			[]Sub{sub("s", resume(0, "e1", hello("e1", 3), gap(1, 2, "evicted"), d(2, "b"), d(3, "c")))}, evicts, "ordered", "comes after seq 2"},
		{"a gap over what was delivered", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "b"), gap(2, 2, "evicted"), d(3, "c")))}, evicts, "ordered", "must start after"},
		{"a gap whose ends are reversed", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "b"), d(3, "c"), gap(5, 4, "epoch")))}, evicts, "ordered", "gap 5..4"},
		{"a delivery before the hello", abc,
			[]Sub{sub("s", live(d(1, "a")))}, unclear, "ordered", "before any hello"},
		{"an epoch that comes back", []Publish{ack("e1", 1, "a"), ack("e2", 1, "b")},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a")), resume(1, "e1", hello("e2", 0), d(1, "b")), resume(1, "e2", hello("e1", 1)))}, Options{LosesHistory: true}, "ordered", "epoch e1 again"},
		{"a silent skip", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(3, "c")))}, unclear, "complete", "never received acknowledged seq 2"},
		{"a skip across a reconnect", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a")), resume(1, "e1", hello("e1", 3), d(3, "c")))}, unclear, "complete", "seq 2 of epoch e1"},
		{"settled, but the newest never came", abc,
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), d(2, "b")))}, keeps, "complete", "seq 3"},
		{"mid-stream hello skips the new epoch's start (issue 16, case 5)", []Publish{ack("e1", 1, "a"), ack("e2", 1, "b", "c", "d")},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a"), hello("e2", 2), d(3, "d")))}, memory, "complete", "seqs 1..2 of epoch e2"},
		{"resumed into a new epoch, but from the middle", []Publish{ack("e1", 1, "a"), ack("e2", 1, "b", "c")},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a")), resume(1, "e1", hello("e2", 1), d(2, "c")))}, memory, "complete", "seq 1 of epoch e2"},
		{"never saw the epoch change", []Publish{ack("e1", 1, "a"), ack("e2", 1, "b")},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a")))}, memory, "complete", "never saw the backing's epoch e2"},
		{"acknowledged without a place, received by nobody", []Publish{ack("e1", 1, "a"), {IDs: []string{"p"}, Outcome: AckedUnplaced}},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a")))}, keeps, "complete", "p was acknowledged"},
		{"a gap wider than the loss", abc,
			[]Sub{sub("s", resume(0, "e1", hello("e1", 3), gap(1, 2, "evicted"), d(3, "c")))}, keeps, "gap", "covers acknowledged seqs 1..2"},
		{"a gap with no known reason", abc,
			[]Sub{sub("s", resume(0, "e1", hello("e1", 3), gap(1, 2, "oops"), d(3, "c")))}, evicts, "gap", `reason "oops"`},
		{"the epoch changed where the history is kept", []Publish{ack("e1", 1, "a"), ack("e2", 1, "b")},
			[]Sub{sub("s", live(hello("e1", 0), d(1, "a")), resume(1, "e1", hello("e2", 0), d(1, "b")))}, Options{FinalEpoch: "e2"}, "kept", "changed from e1 to e2"},
		{"acknowledged events in a lost epoch where the history is kept", []Publish{ack("e1", 1, "a"), ack("e2", 1, "b")},
			nil, Options{FinalEpoch: "e2"}, "kept", "acknowledged in epoch e1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Check(tc.pubs, tc.subs, tc.opts)
			for _, x := range v {
				if x.Clause == tc.clause && strings.Contains(x.Msg, tc.says) {
					return
				}
			}
			t.Errorf("want a %q violation saying %q, got:\n%s", tc.clause, tc.says, join(v))
		})
	}
}

func TestParseLine(t *testing.T) {
	cases := []struct {
		in   string
		want Line
	}{
		{`{"control":"hello","tenant":"acme","epoch":"E","last_seq":41}`, hello("E", 41)},
		{`{"control":"gap","from_seq":3,"to_seq":9,"reason":"evicted"}`, gap(3, 9, "evicted")},
		{`{"seq":42,"tenant_id":"acme","timestamp":1,"type":"click","path":"/a","metadata":{"id":"p1-7"}}`, d(42, "p1-7")},
	}
	for _, tc := range cases {
		got, err := ParseLine([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("ParseLine(%s) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`{"control":"bye"}`, `{"type":"click"}`, `not json`} {
		if _, err := ParseLine([]byte(bad)); err == nil {
			t.Errorf("ParseLine(%s): no error", bad)
		}
	}
}

func TestSeqList(t *testing.T) {
	if got, want := seqList([]uint64{9, 3, 4, 5, 7}), "seqs 3..5, 7, 9"; got != want {
		t.Errorf("seqList = %q, want %q", got, want)
	}
}

func join(v []Violation) string {
	var b strings.Builder
	for _, x := range v {
		b.WriteString("  " + x.String() + "\n")
	}
	return b.String()
}
