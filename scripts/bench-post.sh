#!/usr/bin/env bash
# tl-post throughput: publish a 1,000,000-line file (100,000 with QUICK=1),
# built from the sample events, into a fresh local tl-relay, three times;
# print the median events/s. Uses the binaries in $BIN (default bin/, as
# make build leaves them), building them there if needed. With BENCH_RESULTS
# set (scripts/bench.sh), the result is also appended to that file as a line
# of key=value fields, for make bench's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

lines=1000000
[ "${QUICK:-}" = 1 ] && lines=100000
runs=3

bin=${BIN:-bin}
[ -x "$bin/tl-relay" ] && [ -x "$bin/tl-post" ] || go build -o "$bin/" ./cmd/tl-relay ./cmd/tl-post

tmp=$(mktemp -d)
relay_pid=
cleanup() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

sample=lib/event/testdata/events.ndjson
n=$(wc -l <"$sample")
for ((k = 0; k * n < lines; k++)); do cat "$sample"; done | head -n "$lines" >"$tmp/bench.ndjson"

# start_relay starts a fresh relay whose history holds the whole file, and
# sets $url.
start_relay() {
  : >"$tmp/relay.log"
  "$bin/tl-relay" --listen 127.0.0.1:0 --history-events "$lines" --history-bytes 1GiB 2>"$tmp/relay.log" &
  relay_pid=$!
  url=
  for _ in $(seq 100); do
    url=$(grep -o 'http://[0-9.:]*' "$tmp/relay.log" | head -n1 || true)
    [ -n "$url" ] && return
    sleep 0.1
  done
  echo "bench-post: tl-relay did not start:" >&2
  cat "$tmp/relay.log" >&2
  exit 1
}

rates=()
for i in $(seq "$runs"); do
  start_relay
  start=$(date +%s.%N)
  "$bin/tl-post" -q --relay "$url" "$tmp/bench.ndjson"
  end=$(date +%s.%N)
  kill "$relay_pid"; wait "$relay_pid" 2>/dev/null || true; relay_pid=
  rates+=("$(echo "$lines / ($end - $start)" | bc -l | cut -d. -f1)")
done
median=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")

printf '%-44s %14s   %s\n' "tl-post, $lines events into a local relay" "$median events/s" "(median of $runs runs: ${rates[*]})"
if [ -n "${BENCH_RESULTS:-}" ]; then
  echo "post lines=$lines runs=$runs events_s=$median" >>"$BENCH_RESULTS"
fi
