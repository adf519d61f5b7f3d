#!/usr/bin/env bash
# Part of make bench: tl-relay's ingest rate, fan-out rate and memory per
# idle subscriber, measured on loopback by scripts/relayload against
# bin/tl-relay. QUICK=1 runs short and small.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=5s subs=1000 idle=10000
if [ "${QUICK:-0}" = 1 ]; then
  secs=1s subs=200 idle=1000
fi
go build -o bin/relayload ./scripts/relayload
echo "## tl-relay (loopback, $(nproc) cores)"
bin/relayload -relay bin/tl-relay -mode ingest -batch 1000 -duration "$secs"
bin/relayload -relay bin/tl-relay -mode fanout -batch 1000 -subs "$subs" -duration "$secs"
bin/relayload -relay bin/tl-relay -mode idle -subs "$idle"
