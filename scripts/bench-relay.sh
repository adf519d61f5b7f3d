#!/usr/bin/env bash
# Part of make bench: tl-relay's ingest rate, fan-out rate and memory per
# idle subscriber, measured on loopback by scripts/loadgen against
# bin/tl-relay: scenario I (one client posting 1,000-event batches as fast
# as they are answered), F (1,000 subscribers on one tenant, the same
# batches) and D with 10,000 idle subscribers. QUICK=1 runs short and small.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=5s subs=1000 idle=10000
if [ "${QUICK:-0}" = 1 ]; then
  secs=1s subs=200 idle=1000
fi
go build -o bin/loadgen ./scripts/loadgen
echo "## tl-relay (loopback, $(nproc) cores)"
bin/loadgen -relay bin/tl-relay -only I -batch 1000 -duration "$secs"
bin/loadgen -relay bin/tl-relay -only F -batch 1000 -subs "$subs" -duration "$secs" | tail -n +2
bin/loadgen -relay bin/tl-relay -only D -subs "$idle" | tail -n +2
