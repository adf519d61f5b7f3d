package tlog

import (
	"fmt"
	"strconv"
	"testing"
)

// line returns a distinct line for seq, n bytes long at least.
func ringLine(seq uint64, n int) []byte {
	b := []byte(strconv.FormatUint(seq, 10) + ":")
	for len(b) < n {
		b = append(b, 'x')
	}
	return b
}

// checkRing checks r holds exactly the lines of seqs oldest..newest, in
// order, read back whole.
func checkRing(t *testing.T, r *Ring, oldest, newest uint64) {
	t.Helper()
	if r.Oldest() != oldest || r.Newest() != newest {
		t.Fatalf("ring holds %d..%d, want %d..%d", r.Oldest(), r.Newest(), oldest, newest)
	}
	got, next := r.Read(0, nil, 1<<30, 1<<30)
	if next != newest+1 || uint64(len(got)) != newest+1-oldest {
		t.Fatalf("read %d lines up to %d, want %d..%d", len(got), next, oldest, newest)
	}
	bytes := 0
	for i, l := range got {
		want := strconv.FormatUint(oldest+uint64(i), 10) + ":"
		if string(l[:len(want)]) != want {
			t.Fatalf("line %d is %q, want seq %s", i, l, want)
		}
		bytes += len(l)
	}
	if n, b := r.Len(); n != len(got) || b != bytes {
		t.Fatalf("Len = %d lines %d bytes, want %d, %d", n, b, len(got), bytes)
	}
}

func TestRingBounds(t *testing.T) {
	for _, tc := range []struct {
		name                string
		push, size          int // lines pushed, each of size bytes
		maxLines, maxBytes  int
		wantOldest, wantNew uint64
	}{
		{"empty", 0, 10, 5, 1 << 20, 1, 0},
		{"under both", 4, 10, 5, 1 << 20, 1, 4},
		{"at the line bound", 5, 10, 5, 1 << 20, 1, 5},
		{"over the line bound", 12, 10, 5, 1 << 20, 8, 12},
		{"over the byte bound", 10, 10, 100, 35, 8, 10},
		{"a line over the byte bound stays alone", 3, 50, 100, 20, 3, 3},
		{"wraps many times", 1000, 10, 7, 1 << 20, 994, 1000},
		{"grows past the first size", 200, 10, 1000, 1 << 20, 1, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRing(1)
			dropped := uint64(0)
			for s := uint64(1); s <= uint64(tc.push); s++ {
				r.Push(ringLine(s, tc.size), tc.maxLines, tc.maxBytes, func(l []byte) {
					dropped++
					if want := strconv.FormatUint(dropped, 10) + ":"; string(l[:len(want)]) != want {
						t.Fatalf("dropped %q, want seq %d", l, dropped)
					}
				})
			}
			checkRing(t, &r, tc.wantOldest, tc.wantNew)
			if dropped != tc.wantOldest-1 {
				t.Fatalf("told of %d drops, want %d", dropped, tc.wantOldest-1)
			}
		})
	}
}

func TestRingRead(t *testing.T) {
	r := NewRing(10)
	for s := uint64(10); s < 110; s++ {
		r.Push(ringLine(s, 10), 64, 1<<20, nil) // keeps 46..109, wrapped
	}
	for _, tc := range []struct {
		name               string
		from               uint64
		maxLines, maxBytes int
		wantN              int
		wantNext           uint64
	}{
		{"from before the oldest starts there", 1, 5, 1 << 20, 5, 51},
		{"by lines", 50, 3, 1 << 20, 3, 53},
		{"by bytes", 50, 100, 25, 2, 52},
		{"one line over maxBytes still goes", 50, 100, 1, 1, 51},
		{"to the end", 100, 100, 1 << 20, 10, 110},
		{"at the head: nothing", 110, 100, 1 << 20, 0, 110},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next := r.Read(tc.from, nil, tc.maxLines, tc.maxBytes)
			if len(got) != tc.wantN || next != tc.wantNext {
				t.Fatalf("Read(%d) = %d lines, next %d; want %d, %d", tc.from, len(got), next, tc.wantN, tc.wantNext)
			}
		})
	}
}

func TestRingShrinkReset(t *testing.T) {
	r := NewRing(1)
	for s := uint64(1); s <= 1000; s++ {
		r.Push(ringLine(s, 10), 1<<20, 1<<30, nil)
	}
	if r.SlotBytes() != slotBytes*1024 {
		t.Fatalf("SlotBytes %d after 1000 lines, want %d", r.SlotBytes(), slotBytes*1024)
	}
	for r.Oldest() <= 990 {
		r.DropOldest()
	}
	r.Shrink() // 10 lines left: down to the first size
	if r.SlotBytes() != slotBytes*initialRing {
		t.Fatalf("SlotBytes %d after shrinking, want %d", r.SlotBytes(), slotBytes*initialRing)
	}
	checkRing(t, &r, 991, 1000)
	for r.Oldest() <= 1000 {
		r.DropOldest()
	}
	r.Shrink()
	if r.SlotBytes() != 0 {
		t.Fatalf("an empty ring keeps %d bytes of slots", r.SlotBytes())
	}
	r.Push(ringLine(1001, 10), 10, 1<<20, nil)
	checkRing(t, &r, 1001, 1001)
	r.Reset(5000)
	checkRing(t, &r, 5000, 4999)
	r.Push(ringLine(5000, 10), 10, 1<<20, nil)
	checkRing(t, &r, 5000, 5000)
}

func BenchmarkRing(b *testing.B) {
	for _, maxLines := range []int{1 << 10, DefaultMaxEvents} {
		line := ringLine(1, 200)
		b.Run(fmt.Sprintf("push/max=%d", maxLines), func(b *testing.B) {
			r := NewRing(1)
			b.ReportAllocs()
			for b.Loop() {
				r.Push(line, maxLines, DefaultMaxBytes, nil)
			}
		})
		b.Run(fmt.Sprintf("read256/max=%d", maxLines), func(b *testing.B) {
			r := NewRing(1)
			for i := 0; i < 2*maxLines; i++ {
				r.Push(line, maxLines, DefaultMaxBytes, nil)
			}
			buf := make([][]byte, 0, 256)
			cursor := r.Oldest()
			b.ReportAllocs()
			for b.Loop() {
				lines, next := r.Read(cursor, buf[:0], 256, 64<<10)
				if len(lines) == 0 {
					next = r.Oldest()
				}
				cursor = next
			}
		})
	}
}
