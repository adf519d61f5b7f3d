#!/usr/bin/env bash
# Part of make bench: tl-relay's fan-out scenarios A and C (scripts/loadgen)
# on the embedded in-memory log, then on Redis (--broker, a private
# redis-server without persistence on the same machine): deliveries/s and
# latency from POST sent to line read (p50/p95/p99). Through Redis a publish
# runs the Lua script and comes back over Pub/Sub before the relay's local
# fan-out, so the difference is the price of sharing tenants between relays.
# QUICK=1 runs small and short.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin}
if ! command -v redis-server >/dev/null; then
  echo "## tl-relay on Redis: redis-server is not installed (apt-get install redis-server); skipped"
  exit 0
fi
[ -x "$bin/tl-relay" ] || go build -o "$bin/" ./cmd/tl-relay
go build -o "$bin/loadgen" ./scripts/loadgen
quick=
[ "${QUICK:-0}" = 1 ] && quick=-quick

# A free loopback port (Redis cannot pick one itself and say which).
port=
for p in $(shuf -i 20000-60000 -n 50); do
  if ! { exec 3<>"/dev/tcp/127.0.0.1/$p"; } 2>/dev/null; then port=$p; break; fi
  exec 3>&-
done
[ -n "$port" ] || { echo "bench-redis: no free port found" >&2; exit 1; }
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" --daemonize no --unixsocket "" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 250); do
  if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
    printf 'PING\r\n' >&3
    read -r -t 2 reply <&3 || true
    exec 3>&-
    [ "${reply%$'\r'}" = "+PONG" ] && break
  fi
  sleep 0.02
done

echo "## tl-relay: embedded log vs Redis (scripts/loadgen $quick -only ${ONLY:-AC}; $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at start)"
echo "### embedded (default)"
"$bin/loadgen" -relay "$bin/tl-relay" $quick -only ${ONLY:-AC}
echo "### --broker redis://127.0.0.1:$port/0 ($(redis-server --version | cut -d' ' -f3))"
"$bin/loadgen" -relay "$bin/tl-relay" $quick -only ${ONLY:-AC} -relay-args "--broker redis://127.0.0.1:$port/0"
