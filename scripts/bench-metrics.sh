#!/usr/bin/env bash
# The cost of tl-relay's metrics on its hot paths (lib/internal/metrics benchmarks):
# per message a subscriber's writer sends, per append, and per scrape of a
# relay holding 100,000 tenants. QUICK=1 runs each benchmark briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=1s
[ "${QUICK:-}" = 1 ] && benchtime=100ms
out=$(go test -run '^$' -bench 'BenchmarkWrote$|BenchmarkWroteLagging|BenchmarkWroteNoLatency|BenchmarkWroteParallel|BenchmarkAccepted|BenchmarkScrape100k' \
	-benchtime "$benchtime" -benchmem ./lib/internal/metrics/)
echo "metrics overhead (lib/internal/metrics, benchtime $benchtime)"
printf '%-28s %14s %10s %10s\n' benchmark ns/op B/op allocs/op
echo "$out" | awk '/^Benchmark/ { name=$1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name);
	printf "%-28s %14s %10s %10s\n", name, $3, $5, $7 }'
