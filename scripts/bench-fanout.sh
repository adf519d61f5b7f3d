#!/usr/bin/env bash
# tl-relay's fan-out scenarios A-D (issue 10), measured by scripts/loadgen
# against a fresh bin/tl-relay per scenario on loopback: delivered/expected,
# events accounted for in gap lines, deliveries/s, latency from POST sent to
# line read (p50/p95/p99/max), the publishers' accepted rate and POST p99,
# the relay's CPU seconds and RSS, and the generator's own CPU (both share
# the machine); then A and C over TLS. QUICK=1 runs small and short (about
# 30 s). With
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
# A and C again over TLS: every --tls-cert deployment's streams run on the
# relay's goroutine engine (lib/internal/relay/writer.go), not on its hubs.
echo "### over TLS (scripts/loadgen -tls -only AC; https:// and wss://, a throw-away certificate)"
"$bin/loadgen" -relay "$bin/tl-relay" $quick -tls -only AC ${BENCH_RESULTS:+-results "$BENCH_RESULTS"}
# B again with the CPU split evenly: the relay on CPU 0, the generator
# (readers and publisher) on CPU 1. The fan-out then has less CPU than B
# asks for: it must lag and pack, and the POSTs must not wait for it.
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  echo "### B with the relay on CPU 0 and the generator on CPU 1 (taskset)"
  taskset -c 1 "$bin/loadgen" -relay "$bin/tl-relay" $quick -relay-cpus 0 -only B ${BENCH_RESULTS:+-results "$BENCH_RESULTS"}
else
  echo "### B pinned: skipped (needs taskset and 2 cores)"
fi
