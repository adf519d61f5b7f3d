package relay

import (
	"fmt"
	"runtime"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/tl-sh/tl/lib/internal/tlog"
)

func TestPhysicalMemory(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if s, ok := m[name]; ok {
				return []byte(s), nil
			}
			return nil, fmt.Errorf("no %s", name)
		}
	}
	meminfo := "MemTotal:       16318412 kB\nMemFree:         1000 kB\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
		from  string
	}{
		{"meminfo", map[string]string{"/proc/meminfo": meminfo}, 16318412 << 10, "MemTotal"},
		{"cgroup v2 lower", map[string]string{"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/relay.slice\n",
			"/sys/fs/cgroup/relay.slice/memory.max": "536870912\n"}, 512 << 20, "cgroup memory limit"},
		{"cgroup v2 max", map[string]string{"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/\n",
			"/sys/fs/cgroup/memory.max": "max\n"}, 16318412 << 10, "MemTotal"},
		{"cgroup v2 higher", map[string]string{"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/\n",
			"/sys/fs/cgroup/memory.max": "68719476736\n"}, 16318412 << 10, "MemTotal"},
		{"cgroup v1", map[string]string{"/proc/meminfo": meminfo,
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n"}, 1 << 30, "cgroup memory limit"},
		{"cgroup v1 unlimited", map[string]string{"/proc/meminfo": meminfo,
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 16318412 << 10, "MemTotal"},
		{"nothing", map[string]string{}, fallbackMemory, "a guess (physical memory unknown)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, from := physicalMemory(files(tc.files))
			if got != tc.want || from != tc.from {
				t.Errorf("physicalMemory = %d (%s), want %d (%s)", got, from, tc.want, tc.from)
			}
		})
	}
}

func TestBatchMemory(t *testing.T) {
	if b := batchMemory(DefaultMaxBody); b < 7*DefaultMaxBody || b > 8*DefaultMaxBody {
		t.Errorf("a batch of 8 MiB holds up to %d bytes: expected about 7x", b)
	}
}

// TestTenantFixedCost measures what a tenant costs besides what its log
// and keys charge to the budget: nothing, as their fixed charges (1 KiB
// for an idle tenant) cover the tenant too (README, Limits).
func TestTenantFixedCost(t *testing.T) {
	const n = 5000
	budget := tlog.NewBudget(1 << 40)
	s := New(Config{Budget: budget})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		tn, err := s.reg.acquire(fmt.Sprintf("tenant-%d", i), false)
		if err != nil {
			t.Fatal(err)
		}
		s.reg.release(tn, false)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc) - budget.Used()) / n
	t.Logf("a tenant costs %d bytes besides the %d its log and keys charge the budget", per, budget.Used()/n)
	if per > 128 { // within the noise of measuring the heap
		t.Errorf("a tenant costs %d bytes outside the budget; README says its 1 KiB of fixed charges cover it", per)
	}
	runtime.KeepAlive(s)
}

// TestMemoryMetrics: /metrics shows the budget, what it holds and what it
// evicted.
func TestMemoryMetrics(t *testing.T) {
	const limit = 1 << 20
	s := New(Config{Budget: tlog.NewBudget(limit)})
	tn, err := s.reg.acquire("acme", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.reg.release(tn, false)
	body := []byte(`"tenant_id":"acme","timestamp":1,"type":"click","path":"/x","metadata":{}}` + "\n")
	for s.cfg.Budget.Evicted() == 0 {
		if _, _, err := appendBodies(tn.log, [][]byte{body, body, body, body}); err != nil {
			t.Fatal(err)
		}
	}
	mfs, gerr := s.metrics.Registry().Gather()
	if gerr != nil {
		t.Fatal(gerr)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, f := range mfs {
		fams[f.GetName()] = f
	}
	if got := metricValue(fams, "tl_relay_memory_budget_bytes"); got != limit {
		t.Errorf("tl_relay_memory_budget_bytes = %v, want %d", got, limit)
	}
	if got := metricValue(fams, "tl_relay_memory_held_bytes"); got <= 0 || got > limit {
		t.Errorf("tl_relay_memory_held_bytes = %v, want in (0, %d]", got, limit)
	}
	if got := metricValue(fams, "tl_relay_memory_evicted_bytes_total"); got <= 0 {
		t.Errorf("tl_relay_memory_evicted_bytes_total = %v, want > 0", got)
	}
}
