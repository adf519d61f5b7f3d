#!/usr/bin/env bash
# make demo: a relay on the in-memory default, a steady trickle of sample
# events posted to tenant "acme", and a live tail of them on this terminal.
#
# Uses the binaries in ./bin (make builds them first; or $TL_BIN): tl-relay,
# and tl-post, tl-tail and tl-fmt when present (else curl for posting and
# tailing).
# Ctrl-C stops everything; DEMO_SECONDS=N stops by itself after N seconds.
# DEMO_RATE sets events per second (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."

# Ctrl-C ends the demo with status 0. On a terminal the whole foreground
# process group gets the SIGINT, make included, and make then dies of it
# whatever the demo does; so the demo re-runs itself as a job of a shell
# with job control, which gives the demo's own process group the terminal:
# Ctrl-C then reaches the demo alone, and make sees it exit 0.
if [ -z "${TL_DEMO_JOB:-}" ] && [ -t 0 ]; then
  export TL_DEMO_JOB=1
  exec bash -m -c 'bash "$0"; exit $?' "$0"
fi

# The binaries: $TL_BIN, else ./bin, else wherever tl-relay is on PATH.
bin=${TL_BIN:-./bin}
if [ -z "${TL_BIN:-}" ] && [ ! -x "$bin/tl-relay" ] && command -v tl-relay >/dev/null 2>&1; then
  bin=$(dirname "$(command -v tl-relay)")
fi
rate=${DEMO_RATE:-5}
seconds=${DEMO_SECONDS:-0}
tenant=acme

[ -x "$bin/tl-relay" ] || { echo "demo: $bin/tl-relay is missing: run make demo (it builds first)" >&2; exit 1; }
have() { [ -x "$bin/$1" ]; }
if ! have tl-post || ! have tl-tail; then
  command -v curl >/dev/null 2>&1 || { echo "demo: needs $bin/tl-post and $bin/tl-tail, or curl" >&2; exit 1; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tl-demo.XXXXXX")
pids=()
cleanup() {
  trap - EXIT INT TERM
  # Stop the feeder and the tail first, then the relay (SIGTERM: it drains).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo >&2; echo "demo: stopped" >&2; exit 0' INT
trap 'exit 143' TERM

# The relay, on a free port; its first stderr line names the address.
"$bin/tl-relay" --listen 127.0.0.1:0 2>"$work/relay.log" &
relay_pid=$!
pids+=("$relay_pid")
url=
for _ in $(seq 100); do
  url=$(sed -n '1s/^tl-relay: listening on //p' "$work/relay.log" 2>/dev/null || true)
  [ -n "$url" ] && break
  kill -0 "$relay_pid" 2>/dev/null || { cat "$work/relay.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$url" ] || { echo "demo: tl-relay did not start" >&2; cat "$work/relay.log" >&2; exit 1; }
export TL_RELAY=$url
echo "demo: tl-relay listening on $url; posting $rate events/s to tenant $tenant; Ctrl-C stops" >&2
echo "demo: from a second terminal, while this runs:" >&2
echo "demo:   export TL_RELAY=$url PATH=$(cd "$bin" && pwd):\$PATH" >&2
echo "demo:   tl-tail $tenant -n 5 | tl-fmt        # or: curl -sN \$TL_RELAY/v1/tenants/$tenant/stream?last=5" >&2
echo "demo:   echo '{\"type\":\"click\",\"path\":\"/hello\"}' | tl-post $tenant" >&2

# events prints sample events forever, $rate a second.
events() {
  local paths=(/ /pricing /docs /blog/edge-telemetry /checkout /signup /account)
  local countries=(US DE JP FR BR IN GB)
  local buttons=(buy subscribe login share)
  local delay i=0
  delay=$(awk -v r="$rate" 'BEGIN { printf "%.3f", 1 / r }')
  while :; do
    local p=${paths[RANDOM % ${#paths[@]}]} c=${countries[RANDOM % ${#countries[@]}]}
    local s
    s=$(printf 's%05x' $((RANDOM * 7 % 1048576)))
    case $((RANDOM % 10)) in
      [0-5]) printf '{"type":"pageview","path":"%s","metadata":{"session":"%s","country":"%s"}}\n' "$p" "$s" "$c" ;;
      [6-8]) printf '{"type":"click","path":"%s","metadata":{"session":"%s","button":"%s"}}\n' "$p" "$s" "${buttons[RANDOM % ${#buttons[@]}]}" ;;
      *) printf '{"type":"custom","path":"/checkout","metadata":{"session":"%s","name":"purchase","value":"%d"}}\n' "$s" $((RANDOM % 200 + 1)) ;;
    esac
    i=$((i + 1))
    sleep "$delay"
  done
}

# The tail first, so that it sees every event.
if have tl-tail; then
  if have tl-fmt; then
    "$bin/tl-tail" "$tenant" | "$bin/tl-fmt" &
  else
    "$bin/tl-tail" "$tenant" &
  fi
else
  curl -sN "$url/v1/tenants/$tenant/stream" | grep --line-buffered -v '^$' &
fi
pids+=($!)
sleep 0.5

if have tl-post; then
  events | "$bin/tl-post" -q --linger 100ms "$tenant" &
else
  events | while IFS= read -r line; do
    curl -s -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary "$line" "$url/v1/tenants/$tenant/events"
  done &
fi
pids+=($!)

if [ "$seconds" -gt 0 ]; then
  sleep "$seconds"
  echo "demo: $seconds seconds are up" >&2
  exit 0
fi
wait "$relay_pid"
