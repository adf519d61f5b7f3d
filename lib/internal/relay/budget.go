package relay

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/tl-sh/tl/lib/event"
)

// The memory budget (--memory-budget): one bound on the bytes that every
// tenant's history and Idempotency-Keys hold in memory (tlog.Budget).
const (
	// budgetDivisor makes the default budget a quarter of the memory the
	// relay may use. The budget is live data: Go's collector lets the
	// heap grow to about twice the live data before it runs (GOGC=100),
	// and the relay needs room besides for request bodies in flight,
	// connections' buffers and the subscribers' messages being written.
	// A quarter keeps all of that within the machine.
	budgetDivisor = 4
	// fallbackMemory is assumed when neither /proc/meminfo nor a cgroup
	// says how much memory there is (not Linux).
	fallbackMemory = 2 << 30
	// minRawEvent is the shortest event a body can carry, with the
	// newline before the next: {"type":"click","path":"x"}.
	minRawEvent = len(`{"type":"click","path":"x"}`)
	// lineSlot is what a stored line costs besides its bytes: its ring
	// slot and the room reserved for its seq (see tlog.Memory).
	lineSlot = 24 + len(`{"seq":`) + 20 + 1
)

// DefaultMemoryBudget returns the default --memory-budget: a quarter of
// the memory the relay may use, the lower of MemTotal (/proc/meminfo) and
// its cgroup's limit (memory.max, or memory.limit_in_bytes on cgroup v1),
// and says where that figure came from.
func DefaultMemoryBudget() (budget int64, from string) {
	total, from := physicalMemory(os.ReadFile)
	return total / budgetDivisor, from
}

// physicalMemory returns the memory the process may use and its source.
func physicalMemory(readFile func(string) ([]byte, error)) (int64, string) {
	total, from := int64(0), ""
	if b, err := readFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(rest) // "16318412 kB"
				if len(f) == 2 && f[1] == "kB" {
					if n, err := strconv.ParseInt(f[0], 10, 64); err == nil && n > 0 {
						total, from = n<<10, "MemTotal"
					}
				}
			}
		}
	}
	if n, ok := cgroupLimit(readFile); ok && (total == 0 || n < total) {
		total, from = n, "cgroup memory limit"
	}
	if total == 0 {
		return fallbackMemory, "a guess (physical memory unknown)"
	}
	return total, from
}

// cgroupLimit returns the memory limit of the process's cgroup, if any.
func cgroupLimit(readFile func(string) ([]byte, error)) (int64, bool) {
	var paths []string
	if b, err := readFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok { // cgroup v2
				paths = append(paths, "/sys/fs/cgroup"+strings.TrimSuffix(rest, "/")+"/memory.max")
			}
		}
	}
	paths = append(paths, "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	for _, p := range paths {
		b, err := readFile(p)
		if err != nil {
			continue
		}
		s := string(bytes.TrimSpace(b))
		if s == "max" {
			return 0, false
		}
		// cgroup v1 says "no limit" with a huge number.
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n < 1<<60 {
			return n, true
		}
		return 0, false
	}
	return 0, false
}

// batchMemory is the most one accepted body of maxBody bytes can hold in
// memory once stored: every event the smallest there is, each stored with
// the longest tenant name, a timestamp, its seq and a ring slot.
func batchMemory(maxBody int64) int64 {
	var v event.Validator
	tenant := strings.Repeat("t", 64)
	if err := v.Validate([]byte(`{"type":"click","path":"x"}`), tenant); err != nil {
		panic(fmt.Sprintf("relay: the smallest event is invalid: %v", err))
	}
	line := len(v.AppendBody(nil, tenant, 1<<62)) + lineSlot
	return (maxBody/int64(minRawEvent+1) + 1) * int64(line)
}

// minMemoryBudget is the smallest budget for bodies of maxBody: one
// batch of the worst kind must fit under the level a full budget is
// brought down to (1/32 under its limit), or it would be evicted as soon
// as accepted.
func minMemoryBudget(maxBody int64) int64 {
	b := batchMemory(maxBody)
	return b + b/31 + 1
}
