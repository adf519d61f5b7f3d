#!/usr/bin/env bash
# Durable ingest against memory: tl-relay with and without --data-dir, fed
# 1,000-event NDJSON batches by 8 concurrent clients (scripts/loadgen -only I).
# QUICK=1 sends fewer events. Prints a small table of events/s.
set -euo pipefail
cd "$(dirname "$0")/.."

events=${EVENTS:-400000}
runs=${RUNS:-3}
if [ "${QUICK:-}" = 1 ]; then events=50000; runs=1; fi
clients=${CLIENTS:-8}
batch=${BATCH:-1000}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

relay=bin/tl-relay
[ -x "$relay" ] || { go build -o "$tmp/" ./cmd/tl-relay; relay=$tmp/tl-relay; }
go build -o "$tmp/loadgen" ./scripts/loadgen

# run [ARGS]: load a fresh relay started with ARGS (loadgen starts and stops
# it); the whole events/s go to $tmp/out.
run() {
  "$tmp/loadgen" -relay "$relay" -only I -workers "$clients" -batch "$batch" -events "$events" \
    -duration 10m -relay-args "${1:-}" -results "$tmp/res" >/dev/null
  sed -n 's/.* posted_s=\([0-9]*\).*/\1/p' "$tmp/res" | tail -1 >"$tmp/out"
}

# Memory and durable runs alternate (the box is shared and its load drifts);
# each mode keeps its best run.
mem=0 dur=0
for _ in $(seq "$runs"); do
  run; r=$(cut -d. -f1 "$tmp/out")
  [ "$r" -gt "$mem" ] && mem=$r
  run "--data-dir $tmp/data"; r=$(cut -d. -f1 "$tmp/out")
  [ "$r" -gt "$dur" ] && dur=$r
  rm -rf "$tmp/data"
done
printf '%-34s %14s\n' "ingest ($clients clients x $batch-event batches)" "events/s"
printf '%-34s %14s\n' "memory (default)" "$mem"
printf '%-34s %14s\n' "durable (--data-dir, fsync'd 202)" "$dur"
printf '%-34s %13s%%\n' "durable / memory" "$((100 * dur / (mem > 0 ? mem : 1)))"
