package tlog

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// heldSum is what the budget's holders say they hold.
func heldSum(logs []*Memory) int64 {
	var sum int64
	for _, m := range logs {
		sum += m.Held() + m.keys.held
	}
	return sum
}

// checkContiguous reads m from 1 and checks what it gets: one gap for
// the lines it lost (exactly 1..oldest-1), then every line up to newest.
func checkContiguous(t *testing.T, m *Memory) {
	t.Helper()
	oldest, newest := m.Bounds()
	got, gaps := readFrom(t, m, 1, 256)
	if oldest > 1 {
		if len(gaps) != 1 || gaps[0] != (Gap{1, oldest - 1}) {
			t.Fatalf("gaps %v, want [{1 %d}]", gaps, oldest-1)
		}
	} else if len(gaps) != 0 {
		t.Fatalf("gaps %v, want none", gaps)
	}
	if uint64(len(got)) != newest-oldest+1 || (len(got) > 0 && (got[0] != oldest || got[len(got)-1] != newest)) {
		t.Fatalf("read %d lines, want %d..%d", len(got), oldest, newest)
	}
}

// TestBudgetBoundAfterEveryAppend: many tenants appending batches of every
// size into one budget; after each append the budget holds at most its
// limit, and the holders' charges add up to it.
func TestBudgetBoundAfterEveryAppend(t *testing.T) {
	const limit = 4 << 20
	b := NewBudget(limit)
	rng := rand.New(rand.NewPCG(1, 2))
	logs := make([]*Memory, 50)
	next := make([]int, len(logs))
	for i := range logs {
		logs[i] = NewMemoryIn(b, DefaultMaxEvents, DefaultMaxBytes)
		next[i] = 1
	}
	for round := 0; round < 2000; round++ {
		i := rng.IntN(len(logs))
		n := 1 + rng.IntN(50)
		if rng.IntN(20) == 0 {
			n = 5000 // now and then a batch of several blocks
		}
		if _, _, err := add(logs[i], bodies(next[i], n)); err != nil {
			t.Fatal(err)
		}
		next[i] += n
		if u := b.Used(); u > limit {
			t.Fatalf("round %d: budget holds %d, over its limit %d", round, u, limit)
		}
		if u, h := b.Used(), heldSum(logs); u != h {
			t.Fatalf("round %d: budget counts %d, holders hold %d", round, u, h)
		}
	}
	if b.Evicted() == 0 {
		t.Fatal("nothing was evicted: the test did not fill the budget")
	}
	for _, m := range logs {
		checkContiguous(t, m)
	}
	for _, m := range logs {
		m.Close()
	}
	if u := b.Used(); u != 0 {
		t.Fatalf("after closing every log the budget holds %d", u)
	}
}

// TestBudgetBiggestLosesFirst: a tenant holding much and tenants holding
// little; over the budget, only the big one loses lines, its oldest, and
// its readers get the exact gap.
func TestBudgetBiggestLosesFirst(t *testing.T) {
	const limit = 1 << 20
	b := NewBudget(limit)
	big := NewMemoryIn(b, DefaultMaxEvents, DefaultMaxBytes)
	small := make([]*Memory, 10)
	for i := range small {
		small[i] = NewMemoryIn(b, DefaultMaxEvents, DefaultMaxBytes)
		add(small[i], bodies(1, 20))
	}
	heldSmall := small[0].Held()
	next := 1
	for b.Evicted() == 0 {
		add(big, bodies(next, 100))
		next += 100
	}
	for round := 0; round < 200; round++ {
		add(big, bodies(next, 100))
		next += 100
		for i, m := range small {
			if o, n := m.Bounds(); o != 1 || n != 20 {
				t.Fatalf("small tenant %d holds %d..%d, want 1..20", i, o, n)
			}
		}
	}
	if oldest, _ := big.Bounds(); oldest == 1 {
		t.Fatal("the big tenant lost nothing")
	}
	checkContiguous(t, big)

	// A second tenant's appends push the budget over: the first, which
	// holds more, is the one to lose.
	other := NewMemoryIn(b, DefaultMaxEvents, DefaultMaxBytes)
	next2, reclaims := 1, 0
	for i := 0; i < 100; i++ {
		oldest1, _ := big.Bounds()
		evicted := b.Evicted()
		add(other, bodies(next2, 20))
		next2 += 20
		if b.Evicted() == evicted {
			continue
		}
		reclaims++
		if o, _ := other.Bounds(); o != 1 {
			t.Fatalf("the tenant holding less lost lines 1..%d", o-1)
		}
		if o, _ := big.Bounds(); o == oldest1 {
			t.Fatal("the tenant holding the most lost nothing")
		}
	}
	if reclaims == 0 || other.Held() >= big.Held() {
		t.Fatalf("%d reclaims, the second tenant holding %d and the first %d: the test missed its point", reclaims, other.Held(), big.Held())
	}
	for i, m := range small {
		if m.Held() != heldSmall {
			t.Fatalf("small tenant %d holds %d, was %d", i, m.Held(), heldSmall)
		}
	}
	if u := b.Used(); u > limit {
		t.Fatalf("budget holds %d, over %d", u, limit)
	}
}

// TestBudgetLevels: over the budget, the largest holders are brought down
// toward a common level, not the largest emptied while the others keep all.
func TestBudgetLevels(t *testing.T) {
	b := NewBudget(8 << 20)
	var logs []*Memory
	for i := 0; i < 4; i++ {
		m := NewMemoryIn(b, DefaultMaxEvents, DefaultMaxBytes)
		logs = append(logs, m)
	}
	// Four tenants fill the budget in turns, one small batch at a time.
	next := make([]int, len(logs))
	for i := range next {
		next[i] = 1
	}
	for round := 0; b.Evicted() < 4<<20; round++ {
		i := round % len(logs)
		add(logs[i], bodies(next[i], 50))
		next[i] += 50
	}
	lo, hi := logs[0].Held(), logs[0].Held()
	for _, m := range logs {
		lo, hi = min(lo, m.Held()), max(hi, m.Held())
		checkContiguous(t, m)
	}
	// They took turns, so each holds about a quarter: within two rounds
	// of batches and the slack of one reclaim.
	if hi-lo > b.limit/budgetSlackDiv+64<<10 {
		t.Fatalf("holders range from %d to %d bytes: the budget did not level them", lo, hi)
	}
}

// TestBudgetConcurrent appends from many goroutines to many logs, with
// readers, under -race: the budget stays exact and every log contiguous.
func TestBudgetConcurrent(t *testing.T) {
	const limit = 2 << 20
	b := NewBudget(limit)
	logs := make([]*Memory, 16)
	for i := range logs {
		logs[i] = NewMemoryIn(b, DefaultMaxEvents, DefaultMaxBytes)
	}
	keys := NewKeys(b)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < 300; i++ {
				m := logs[rng.IntN(len(logs))]
				if _, _, err := add(m, bodies(1, 1+rng.IntN(200))); err != nil {
					t.Error(err)
					return
				}
				k := fmt.Sprintf("w%d-%d", w, i)
				if _, _, claimed := keys.claim(k); claimed {
					keys.Complete(k, Appended{First: 1, Last: 1})
				}
			}
		}()
	}
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	for r := 0; r < 4; r++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			m := logs[r]
			var from uint64 = 1
			for {
				select {
				case <-stop:
					return
				default:
				}
				lines, next, gap, err := m.Read(from, nil, 64, 64<<10)
				if err != nil {
					t.Error(err)
					return
				}
				if !gap.Empty() && gap.From != from {
					t.Errorf("gap %v does not start at the cursor %d", gap, from)
					return
				}
				if len(lines) > 0 && next-uint64(len(lines)) != max(from, gap.To+1) {
					t.Errorf("lines do not follow the cursor %d and gap %v", from, gap)
					return
				}
				from = next
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	if u := b.Used(); u > limit {
		t.Fatalf("budget holds %d after the appends, over %d", u, limit)
	}
	if u, h := b.Used(), heldSum(logs)+keys.held; u != h {
		t.Fatalf("budget counts %d, holders hold %d", u, h)
	}
	if b.Evicted() == 0 {
		t.Fatal("nothing was evicted: the test did not fill the budget")
	}
}

// TestBudgetKeys: Idempotency-Keys count against the budget and are
// forgotten oldest first when their store is the largest holder; a key
// being claimed is never forgotten.
func TestBudgetKeys(t *testing.T) {
	const limit = 1 << 20
	b := NewBudget(limit)
	k := NewKeys(b)
	if _, _, claimed := k.claim("in-flight"); !claimed {
		t.Fatal("claim failed")
	}
	answer := Appended{First: 1, Last: 1, Epoch: "0123456789abcdef"}
	n := 0
	for ; b.Evicted() == 0; n++ {
		key := "key-" + strconv.Itoa(n)
		k.claim(key)
		k.Complete(key, answer)
		if u := b.Used(); u > limit {
			t.Fatalf("after %d keys the budget holds %d, over %d", n, u, limit)
		}
	}
	if _, _, claimed := k.claim("key-0"); !claimed {
		t.Fatal("the oldest key is still remembered after an eviction")
	}
	k.release("key-0")
	if got, _, _ := k.claim("key-" + strconv.Itoa(n-1)); got != answer {
		t.Fatalf("the newest key answers %v", got)
	}
	if _, wait, claimed := k.claim("in-flight"); claimed || wait == nil {
		t.Fatal("the key of a request in flight was forgotten")
	}
	k.release("in-flight")
	k.Close()
	if u := b.Used(); u != 0 {
		t.Fatalf("after Close the budget holds %d", u)
	}
}

// TestBudgetChargeCoversHeap: what a log and a key store charge is at
// least what they make the heap hold, so the budget is an honest bound.
func TestBudgetChargeCoversHeap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch int
	}{{"one event a batch", 1}, {"batches of 100", 100}, {"one batch of 20000", 20000}} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBudget(1 << 40)
			var m *Memory
			heap := heapDelta(func() {
				m = NewMemoryIn(b, DefaultMaxEvents, DefaultMaxBytes)
				for i := 0; i < 20000; i += tc.batch {
					add(m, bodies(i+1, tc.batch))
				}
			})
			t.Logf("heap grew %d bytes, log charges %d", heap, m.Held())
			if heap > m.Held() {
				t.Errorf("the heap grew %d bytes, but the log charges only %d", heap, m.Held())
			}
			runtime.KeepAlive(m)
		})
	}
	t.Run("keys", func(t *testing.T) {
		b := NewBudget(1 << 40)
		var k *Keys
		answer := Appended{First: 1, Last: 1, Epoch: "0123456789abcdef"}
		heap := heapDelta(func() {
			k = NewKeys(b)
			for i := 0; i < DefaultKeepKeys; i++ {
				key := fmt.Sprintf("%036d", i) // a UUID's length
				k.claim(key)
				k.Complete(key, answer)
			}
		})
		t.Logf("heap grew %d bytes, keys charge %d", heap, k.held)
		if heap > k.held {
			t.Errorf("the heap grew %d bytes, but the keys charge only %d", heap, k.held)
		}
		runtime.KeepAlive(k)
	})
}

// heapDelta returns how much live heap f leaves behind.
func heapDelta(f func()) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

// BenchmarkAppendBudget appends single events round-robin to 100 tenants
// sharing a budget that is full all along (each append past the first
// megabytes makes the budget evict), and, for comparison, to 100 tenants
// without one: the cost of the accounting and the amortised eviction.
func BenchmarkAppendBudget(b *testing.B) {
	for _, budgeted := range []bool{false, true} {
		name := "none"
		if budgeted {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			var budget *Budget
			if budgeted {
				budget = NewBudget(4 << 20)
			}
			logs := make([]*Memory, 100)
			for i := range logs {
				logs[i] = NewMemoryIn(budget, DefaultMaxEvents, DefaultMaxBytes)
			}
			bs := bodies(1, 1)
			// Fill first, so that the budget is at its limit throughout.
			for i := 0; i < 100_000; i++ {
				add(logs[i%len(logs)], bs)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bs[0])))
			i := 0
			for b.Loop() {
				add(logs[i%len(logs)], bs)
				i++
			}
		})
	}
}

// TestBudgetSmallerThanFixed: a budget smaller than what its holders
// charge for themselves cannot be kept; appends still succeed, every
// line beyond the fixed charges is evicted, and nothing breaks.
func TestBudgetSmallerThanFixed(t *testing.T) {
	b := NewBudget(2 << 10)
	var logs []*Memory
	for i := 0; i < 10; i++ {
		logs = append(logs, NewMemoryIn(b, DefaultMaxEvents, DefaultMaxBytes))
	}
	fixed := b.Used()
	for i := 0; i < 1000; i++ {
		if _, _, err := add(logs[i%len(logs)], bodies(i/len(logs)+1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Each log keeps at most its newest block and a small ring; the
	// retry guard lets the budget pass by at most a slack between scans.
	if u := b.Used(); u > fixed+int64(len(logs))*(2<<10) {
		t.Fatalf("budget holds %d, fixed charges %d: lines were not evicted", u, fixed)
	}
	for _, m := range logs {
		checkContiguous(t, m)
		m.Close()
	}
	if u := b.Used(); u != 0 {
		t.Fatalf("after closing every log the budget holds %d", u)
	}
}
