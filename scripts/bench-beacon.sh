#!/usr/bin/env bash
# Part of make bench: the web beacon path (issue 19), measured by
# scripts/loadgen's scenario W against a fresh bin/tl-relay on loopback:
# one-event POSTs as navigator.sendBeacon sends them (text/plain, an Origin
# header, a public ingest key in ?key=, so each one passes the CORS check
# and the key's checks) over 16 keep-alive connections, as fast as the relay
# answers. All come from 127.0.0.1, so loadgen starts the relay with
# --ingest-rate 1000000: the default limit per client address (10 events/s)
# would cap the generator, not measure the relay. make bench's summary
# compares the rate with scenario A's (scripts/benchsum, the beacon row).
# QUICK=1 runs shorter.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin}
[ -x "$bin/tl-relay" ] || go build -o "$bin/" ./cmd/tl-relay
go build -o "$bin/loadgen" ./scripts/loadgen
quick=
[ "${QUICK:-0}" = 1 ] && quick=-quick
echo "## web beacons (scripts/loadgen $quick -only W; $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at start)"
"$bin/loadgen" -relay "$bin/tl-relay" $quick -only W ${BENCH_RESULTS:+-results "$BENCH_RESULTS"}
