package relaycmd

import "runtime"

// minProcs is the fewest Ps (runtime.GOMAXPROCS) tl-relay runs with, so
// that ingestion comes first when the relay has a single CPU (taskset, a
// one-CPU container or VM).
//
// With one P, a POST's goroutine runs only when the fan-out gives way (the
// pacer, lib/internal/relay/pace.go, parks it every millisecond so that the
// netpoller runs), and then waits its turn behind the fan-out's other
// runnable goroutines. With a second P it runs on the idle one as soon as
// the netpoller sees it, and the kernel shares the CPU between the two
// threads. make bench's B/pinned (10,000 subscribers, 500 POSTs/s, the relay
// on CPU 0): POST p99 in five runs each 11.3–19.5 ms (median 14.8) with one P,
// 5.6–11.8 ms (median 9.7) with two; deliveries/s the same (4.87 million).
const minProcs = 2

// raiseProcs raises GOMAXPROCS to minProcs, unless the user set GOMAXPROCS
// (getenv) or the runtime found at least that many CPUs.
func raiseProcs(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
}
