package limit

import (
	"fmt"
	"sync"
	"testing"
)

func TestBudgetSteps(t *testing.T) {
	b := NewBudget(100, 40)
	steps := []struct {
		op   string // "r" reserve, "x" release
		key  string
		n    int64
		want Refusal
		used int64 // in all, after the step
	}{
		{"r", "a", 40, Granted, 40},
		{"r", "a", 1, OverKey, 40}, // a's share is full
		{"r", "b", 40, Granted, 80},
		{"r", "c", 30, OverTotal, 80}, // c's share has room, the whole does not
		{"r", "c", 20, Granted, 100},
		{"r", "d", 1, OverTotal, 100},
		{"x", "a", 40, Granted, 60},
		{"r", "d", 40, Granted, 100},
		{"r", "a", 0, Granted, 100}, // nothing is always granted
		{"x", "b", 40, Granted, 60},
		{"x", "c", 20, Granted, 40},
		{"x", "d", 40, Granted, 0},
	}
	for i, s := range steps {
		got := Granted
		if s.op == "r" {
			got = b.Reserve(s.key, s.n)
		} else {
			b.Release(s.key, s.n)
		}
		used, _ := b.Used(s.key)
		if got != s.want || used != s.used {
			t.Fatalf("step %d (%s %s %d): %v, used %d; want %v, %d", i, s.op, s.key, s.n, got, used, s.want, s.used)
		}
	}
	if n := b.Keys(); n != 0 {
		t.Errorf("%d keys held after every release", n)
	}
}

func TestBudgetShareDefaults(t *testing.T) {
	for _, tt := range []struct{ total, perKey, want int64 }{
		{100, 0, 100}, {100, -1, 100}, {100, 200, 100}, {100, 25, 25},
	} {
		if _, got := NewBudget(tt.total, tt.perKey).Limits(); got != tt.want {
			t.Errorf("NewBudget(%d, %d) share %d, want %d", tt.total, tt.perKey, got, tt.want)
		}
	}
}

func TestBudgetOverRelease(t *testing.T) {
	b := NewBudget(100, 100)
	b.Reserve("a", 10)
	b.Release("a", 50) // a slip: must not make room beyond the bound
	if r := b.Reserve("b", 101); r != OverKey {
		t.Fatalf("101 of 100 granted after an over-release: %v", r)
	}
	if used, _ := b.Used("a"); used != 0 {
		t.Fatalf("used %d", used)
	}
}

// TestBudgetConcurrent: many goroutines reserving and releasing never take
// more than the bounds between them, and leave nothing behind (-race).
func TestBudgetConcurrent(t *testing.T) {
	b := NewBudget(1000, 300)
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := map[string]int64{}
	var total, maxTotal int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint("k", g%3)
			for i := 0; i < 2000; i++ {
				n := int64(1 + (i*7+g)%90)
				if b.Reserve(key, n) != Granted {
					continue
				}
				mu.Lock()
				held[key] += n
				total += n
				if held[key] > 300 || total > 1000 {
					t.Errorf("over the bounds: %s holds %d, all %d", key, held[key], total)
				}
				maxTotal = max(maxTotal, total)
				held[key] -= n
				total -= n
				mu.Unlock()
				b.Release(key, n)
			}
		}()
	}
	wg.Wait()
	if used, _ := b.Used(""); used != 0 || b.Keys() != 0 {
		t.Errorf("left %d bytes over %d keys", used, b.Keys())
	}
	var nilBudget *Budget
	if nilBudget.Reserve("a", 1<<60) != Granted {
		t.Error("nil Budget refused")
	}
	nilBudget.Release("a", 1)
}

// BenchmarkBudget is what a POST pays for the budget: one reservation and
// one release, uncontended and with every core at it.
func BenchmarkBudget(b *testing.B) {
	bud := NewBudget(256<<20, 64<<20)
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			bud.Reserve("acme", 20<<10)
			bud.Release("acme", 20<<10)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				bud.Reserve("acme", 20<<10)
				bud.Release("acme", 20<<10)
			}
		})
	})
}
