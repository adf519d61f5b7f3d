#!/usr/bin/env bash
# tl-fmt throughput against jq and gojq, side by side in one run: the same
# filter over a file of N sample events (1,000,000; 200,000 with QUICK=1),
# made by repeating lib/event/testdata/events.ndjson, written to /dev/null.
# Each command runs three times; the table shows the median. Rows:
#   tl-fmt '.type=="click"'          the fast path (answered from the bytes)
#   tl-fmt '.type | . == "click"'    the same selection through gojq, on every core
#   jq -c 'select(.type=="click")'   Debian's jq, if installed
#   gojq -c 'select(.type=="click")' the gojq command (installed into a temp GOBIN)
# The outputs of tl-fmt, jq and gojq are checked to be identical first.
# Uses $BIN/tl-fmt (default bin/, as make build leaves it), building it if needed.
# With BENCH_RESULTS set (scripts/bench.sh), the median seconds are also
# appended to that file as a line of key=value fields, for make bench's
# summary (a command that is not installed has no field).
set -euo pipefail
cd "$(dirname "$0")/.."

lines=1000000
[ "${QUICK:-}" = 1 ] && lines=200000
runs=3

bin=${BIN:-bin}
[ -x "$bin/tl-fmt" ] || go build -o "$bin/" ./cmd/tl-fmt

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sample=lib/event/testdata/events.ndjson
per=$(wc -l <"$sample")
reps=$(( (lines + per - 1) / per ))
for _ in $(seq "$reps"); do cat "$sample"; done | head -n "$lines" >"$tmp/events.ndjson"
mb=$(( $(wc -c <"$tmp/events.ndjson") / 1000000 ))

# gojq: the command at the version go.mod pins, else the newest earlier
# release whose own dependencies the module proxy still serves.
gojq=$(command -v gojq || true)
gojq_note=
if [ -z "$gojq" ]; then
  want=$(go list -m -f '{{.Version}}' github.com/itchyny/gojq)
  mkdir -p "$tmp/gobin"
  for v in $want $(go list -m -versions github.com/itchyny/gojq | tr ' ' '\n' | grep '^v' | sort -rV |
    awk -v w="$want" 'f && n < 3 {print; n++} $0 == w {f = 1}'); do
    if GOBIN="$tmp/gobin" GOFLAGS=-mod=mod go install "github.com/itchyny/gojq/cmd/gojq@$v" 2>"$tmp/gojq-install.log"; then
      gojq="$tmp/gobin/gojq"
      [ "$v" != "$want" ] && gojq_note=" (go.mod pins $want, whose command does not install here)"
      break
    fi
  done
  [ -n "$gojq" ] || { echo "bench-fmt: could not install gojq:" >&2; cat "$tmp/gojq-install.log" >&2; }
fi
jq=$(command -v jq || true)

# median_secs CMD...: run CMD $runs times with stdout to /dev/null, print the
# median wall time in seconds.
median_secs() {
  local t=()
  for _ in $(seq "$runs"); do
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null
    e=$(date +%s.%N)
    t+=("$(awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f", e - s}')")
  done
  printf '%s\n' "${t[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}

# The outputs must agree before the timings mean anything: byte for byte
# with jq (which keeps key order), line for line with gojq (which sorts keys).
"$bin/tl-fmt" '.type=="click"' "$tmp/events.ndjson" >"$tmp/tl.out"
"$bin/tl-fmt" '.type | . == "click"' "$tmp/events.ndjson" | cmp -s - "$tmp/tl.out" ||
  { echo "bench-fmt: tl-fmt's two paths disagree" >&2; exit 1; }
if [ -n "$jq" ]; then
  "$jq" -c 'select(.type=="click")' "$tmp/events.ndjson" | cmp -s - "$tmp/tl.out" ||
    { echo "bench-fmt: jq disagrees with tl-fmt" >&2; exit 1; }
fi
if [ -n "$gojq" ]; then
  [ "$("$gojq" -c 'select(.type=="click")' "$tmp/events.ndjson" | wc -l)" = "$(wc -l <"$tmp/tl.out")" ] ||
    { echo "bench-fmt: gojq disagrees with tl-fmt" >&2; exit 1; }
fi
rm -f "$tmp/tl.out"

declare -A secs
secs[fast]=$(median_secs "$bin/tl-fmt" '.type=="click"' "$tmp/events.ndjson")
secs[slow]=$(median_secs "$bin/tl-fmt" '.type | . == "click"' "$tmp/events.ndjson")
[ -n "$jq" ] && secs[jq]=$(median_secs "$jq" -c 'select(.type=="click")' "$tmp/events.ndjson")
[ -n "$gojq" ] && secs[gojq]=$(median_secs "$gojq" -c 'select(.type=="click")' "$tmp/events.ndjson")

ratio() { # ratio KEY BASE: how many times faster KEY is than BASE
  [ -n "${secs[$2]:-}" ] || { echo "-"; return; }
  awk -v a="${secs[$1]}" -v b="${secs[$2]}" 'BEGIN {printf "%.1fx", b / a}'
}
row() { # row KEY LABEL
  [ -n "${secs[$1]:-}" ] || { printf '%-48s %s\n' "$2" "not installed"; return; }
  printf '%-48s %8s %12s %8s %8s\n' "$2" "${secs[$1]}" \
    "$(awk -v n="$lines" -v s="${secs[$1]}" 'BEGIN {printf "%d", n / s}')" "$(ratio "$1" jq)" "$(ratio "$1" gojq)"
}

echo "tl-fmt: $lines events ($mb MB) to /dev/null, median of $runs runs; ratios are throughput (higher is faster)"
printf '%-48s %8s %12s %8s %8s\n' "command" "seconds" "lines/s" "vs jq" "vs gojq"
row fast "tl-fmt '.type==\"click\"'"
row slow "tl-fmt '.type | . == \"click\"' (gojq path)"
row jq "jq -c 'select(.type==\"click\")' ($(${jq:-false} --version 2>/dev/null || true))"
row gojq "gojq -c 'select(.type==\"click\")' ($(${gojq:-false} --version 2>/dev/null | awk '{print $2}' || true))"
[ -n "$gojq_note" ] && echo "gojq$gojq_note"
if [ -n "${BENCH_RESULTS:-}" ]; then
  r="fmt lines=$lines runs=$runs fast_s=${secs[fast]} gojq_path_s=${secs[slow]}"
  [ -n "$jq" ] && r+=" jq_s=${secs[jq]} jq_version=$("$jq" --version 2>/dev/null | tr -d ' ')"
  [ -n "$gojq" ] && r+=" gojq_s=${secs[gojq]} gojq_version=$("$gojq" --version 2>/dev/null | awk '{print $2}')"
  echo "$r" >>"$BENCH_RESULTS"
fi
exit 0
