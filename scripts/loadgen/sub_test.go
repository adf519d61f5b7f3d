package main

import (
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	s := &sub{hist: &hist{}, now: time.Unix(0, 1795824000010000000)}
	lines := []string{
		`{"control":"hello","tenant":"t","epoch":"e","last_seq":4}` + "\n",
		`{"seq":5,"tenant_id":"t","timestamp":1,"type":"click","path":"/b","metadata":{"sent_ns":"1795824000000000000"}}` + "\n",
		`{"seq":7,"tenant_id":"t","timestamp":1,"type":"click","path":"/b","metadata":{"sent_ns":"1795824000000000000"}}` + "\n",
		`{"control":"gap","from_seq":8,"to_seq":20,"reason":"evicted"}` + "\n",
		`{"seq":21,"tenant_id":"t","timestamp":1,"type":"click","path":"/b","metadata":{"sent_ns":"1795824000000000000"}}` + "\n",
	}
	for _, l := range lines {
		// Split each line in two pieces to exercise the carry.
		s.feed([]byte(l[:10]))
		s.feed([]byte(l[10:]))
	}
	if s.delivered != 3 || s.lost != 1 || s.gapEvents != 13 || s.last != 21 || s.dup != 0 {
		t.Errorf("delivered %d lost %d gaps %d last %d dup %d, want 3 1 13 21 0", s.delivered, s.lost, s.gapEvents, s.last, s.dup)
	}
	if s.hist.N != 3 || s.hist.quantile(1) < 9*time.Millisecond || s.hist.quantile(1) > 11*time.Millisecond {
		t.Errorf("latency n %d max %v, want 3 around 10ms", s.hist.N, s.hist.quantile(1))
	}
}
