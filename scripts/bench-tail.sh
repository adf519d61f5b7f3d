#!/usr/bin/env bash
# tl-tail throughput: lines/s from a local tl-relay to /dev/null, for events
# delivered as 200-byte lines. N events (1,000,000; 200,000 with QUICK=1) are
# published first, then `tl-tail -n N -c N >/dev/null` streams them from the
# relay's history as fast as both can go: three runs, the median. A live run
# follows: tl-tail connected while tl-post publishes N events (this one is
# bounded by ingest). Uses the binaries in $BIN (default bin/, as make build
# leaves them), building them there if needed. With BENCH_RESULTS set
# (scripts/bench.sh), the results are also appended to that file as a line of
# key=value fields, for make bench's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

lines=1000000
[ "${QUICK:-}" = 1 ] && lines=200000
runs=3

bin=${BIN:-bin}
[ -x "$bin/tl-relay" ] && [ -x "$bin/tl-post" ] && [ -x "$bin/tl-tail" ] ||
  go build -o "$bin/" ./cmd/tl-relay ./cmd/tl-post ./cmd/tl-tail

tmp=$(mktemp -d)
relay_pid=
cleanup() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# Delivered, an event is {"seq":N,"tenant_id":"acme","timestamp":T,
# "type":"click","path":P,"metadata":{}} and a newline: with a 6-digit seq
# and this path it is 200 bytes.
awk -v n="$lines" 'BEGIN {
  pad = sprintf("%*s", 98, ""); gsub(/ /, "x", pad)
  for (i = 1; i <= n; i++) printf "{\"type\":\"click\",\"path\":\"/p/%s\",\"timestamp\":1795824000000}\n", pad
}' >"$tmp/bench.ndjson"

# start_relay starts a fresh relay whose history holds every event, and sets $url.
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
  echo "bench-tail: tl-relay did not start:" >&2
  cat "$tmp/relay.log" >&2
  exit 1
}

stop_relay() { kill "$relay_pid"; wait "$relay_pid" 2>/dev/null || true; relay_pid=; }

start_relay
"$bin/tl-post" -q --relay "$url" acme "$tmp/bench.ndjson"
size=$("$bin/tl-tail" -q --relay "$url" acme --since 99999 -c 1 | wc -c)
rates=()
for i in $(seq "$runs"); do
  start=$(date +%s.%N)
  "$bin/tl-tail" -q --relay "$url" acme -n "$lines" -c "$lines" >/dev/null
  end=$(date +%s.%N)
  rates+=("$(echo "$lines / ($end - $start)" | bc -l | cut -d. -f1)")
done
stop_relay
median=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
printf '%-44s %14s   %s\n' "tl-tail, $lines ${size}-byte lines to /dev/null" "$median lines/s" "(from history; median of $runs runs: ${rates[*]})"

# Live: tl-tail subscribed before tl-post starts publishing.
start_relay
"$bin/tl-tail" --relay "$url" acme -c "$lines" >/dev/null 2>"$tmp/tail.err" &
tail_pid=$!
for _ in $(seq 100); do grep -q connected "$tmp/tail.err" && break; sleep 0.05; done
start=$(date +%s.%N)
"$bin/tl-post" -q --relay "$url" acme "$tmp/bench.ndjson"
wait "$tail_pid"
end=$(date +%s.%N)
stop_relay
live=$(echo "$lines / ($end - $start)" | bc -l | cut -d. -f1)
printf '%-44s %14s   %s\n' "tl-tail, live while tl-post publishes" "$live lines/s" "(post to last line printed; bounded by ingest)"
if [ -n "${BENCH_RESULTS:-}" ]; then
  echo "tail lines=$lines bytes=$size runs=$runs lines_s=$median live_lines_s=$live" >>"$BENCH_RESULTS"
fi
