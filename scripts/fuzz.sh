#!/usr/bin/env bash
# Runs every native fuzz target in lib/ for a few seconds each (FUZZTIME).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-5s}
for pkg in $(go list ./lib/...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "fuzz $pkg $f ($t)"
    out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" 2>&1) || { printf '%s\n' "$out"; exit 1; }
  done
done
