#!/usr/bin/env bash
# Durable ingest against memory: tl-relay with and without --data-dir, fed
# 1,000-event NDJSON batches by 8 concurrent clients (scripts/benchpost).
# QUICK=1 sends fewer events. Prints a small table of events/s.
set -euo pipefail
cd "$(dirname "$0")/.."

events=${EVENTS:-400000}
runs=${RUNS:-3}
if [ "${QUICK:-}" = 1 ]; then events=50000; runs=1; fi
clients=${CLIENTS:-8}
batch=${BATCH:-1000}

tmp=$(mktemp -d)
relay_pid=
cleanup() {
  if [ -n "$relay_pid" ]; then kill "$relay_pid" 2>/dev/null || true; wait "$relay_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

relay=bin/tl-relay
[ -x "$relay" ] || { go build -o "$tmp/" ./cmd/tl-relay; relay=$tmp/tl-relay; }
go build -o "$tmp/benchpost" ./scripts/benchpost

# run ARGS...: start a relay with ARGS, load it, stop it; events/s go to
# $tmp/out (run is not called in a subshell, so the EXIT trap can always stop
# the relay).
run() {
  : >"$tmp/relay.log"
  "$relay" --listen 127.0.0.1:0 "$@" 2>"$tmp/relay.log" &
  relay_pid=$!
  local url=
  for _ in $(seq 200); do
    url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$tmp/relay.log" | head -1)
    [ -n "$url" ] && break
    sleep 0.05
  done
  [ -n "$url" ] || { echo "bench-durable: tl-relay did not start:" >&2; cat "$tmp/relay.log" >&2; exit 1; }
  "$tmp/benchpost" -url "$url" -clients "$clients" -batch "$batch" -events "$events" >"$tmp/out"
  kill -TERM "$relay_pid"; wait "$relay_pid" || true
  relay_pid=
}

# Memory and durable runs alternate (the box is shared and its load drifts);
# each mode keeps its best run.
mem=0 dur=0
for _ in $(seq "$runs"); do
  run; r=$(cut -d. -f1 "$tmp/out")
  [ "$r" -gt "$mem" ] && mem=$r
  run --data-dir "$tmp/data"; r=$(cut -d. -f1 "$tmp/out")
  [ "$r" -gt "$dur" ] && dur=$r
  rm -rf "$tmp/data"
done
printf '%-34s %14s\n' "ingest ($clients clients x $batch-event batches)" "events/s"
printf '%-34s %14s\n' "memory (default)" "$mem"
printf '%-34s %14s\n' "durable (--data-dir, fsync'd 202)" "$dur"
printf '%-34s %13s%%\n' "durable / memory" "$((100 * dur / (mem > 0 ? mem : 1)))"
