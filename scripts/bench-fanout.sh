#!/usr/bin/env bash
# tl-relay's fan-out scenarios A-D (issue 10), measured by scripts/loadgen
# against a fresh bin/tl-relay per scenario on loopback: delivered/expected,
# events accounted for in gap lines, deliveries/s, latency from POST sent to
# line read (p50/p95/p99/max), the publishers' accepted rate and POST p99,
# the relay's CPU seconds and RSS, and the generator's own CPU (both share
# the machine). QUICK=1 runs small and short (about 20 s). With
# BENCH_RESULTS set (scripts/bench.sh), each row is also appended to that
# file as a line of key=value fields, for make bench's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin}
[ -x "$bin/tl-relay" ] || go build -o "$bin/" ./cmd/tl-relay
go build -o "$bin/loadgen" ./scripts/loadgen
quick=
[ "${QUICK:-0}" = 1 ] && quick=-quick
echo "## tl-relay fan-out (scripts/loadgen $quick; $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at start)"
"$bin/loadgen" -relay "$bin/tl-relay" $quick ${BENCH_RESULTS:+-results "$BENCH_RESULTS"}
