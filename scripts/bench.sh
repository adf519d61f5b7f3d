#!/usr/bin/env bash
# make bench (QUICK=1: make bench-quick): runs every scripts/bench-*.sh in
# turn, each printing its own section of the results, then prints one
# summary table of the headline figures beside the goals of issue 10 and
# issue 19's beacon path (scripts/benchsum; bench-beacon.sh measures it). The scripts append those figures as key=value lines to
# $BENCH_RESULTS: a temporary file, or the file you name there (emptied
# first, and kept). If a script fails, the others still run and the summary
# is printed, but this exits non-zero. Missed goals do not fail it.
# Tables go to stdout, diagnostics to stderr.
set -uo pipefail
cd "$(dirname "$0")/.."

tmp=
if [ -n "${BENCH_RESULTS:-}" ]; then
  : >"$BENCH_RESULTS" || exit 1
else
  tmp=$(mktemp)
  export BENCH_RESULTS=$tmp
fi
trap '[ -z "$tmp" ] || rm -f "$tmp"' EXIT
# Stop at ^C rather than go on to the next script.
trap 'exit 130' INT
trap 'exit 143' TERM

# Build the summary first: no use running the benchmarks if it cannot print.
go build -o bin/benchsum ./scripts/benchsum || exit 1

quick=0
[ "${QUICK:-0}" = 1 ] && quick=1
echo "run quick=$quick cores=$(nproc) load=$(cut -d' ' -f1 /proc/loadavg) commit=$(git describe --always --dirty 2>/dev/null || echo unknown)" >>"$BENCH_RESULTS"

status=0
for s in scripts/bench-*.sh; do
  bash "$s"
  rc=$?
  if [ "$rc" != 0 ]; then
    echo "bench: $s failed (exit $rc)" >&2
    echo "failed script=$s rc=$rc" >>"$BENCH_RESULTS"
    status=1
  fi
  echo
done
echo "done secs=$SECONDS load=$(cut -d' ' -f1 /proc/loadavg)" >>"$BENCH_RESULTS"

bin/benchsum "$BENCH_RESULTS" || status=1
exit "$status"
