#!/usr/bin/env bash
# Side-by-side wall and CPU time of `diagnose report`: a baseline binary and the
# current one, run alternately RUNS times each (so both see the same load),
# each run into its own temporary directory. Prints every time with the load
# average, the medians and their ratios (wall; CPU, user + sys, which another
# job's load disturbs less); fails if one binary's reports differ
# from each other by a byte (a report must not depend on the run), and lists
# the files in which the current binary's report differs from the baseline's
# (with REQUIRE_SAME_BYTES=1, any such file is a failure too).
#
#   scripts/report_speed.sh BASELINE_BIN CURRENT_BIN [RUNS] [REPORT ARGS...]
#
# e.g. (BENCHMARKS.md, "The report"):
#   git worktree add --detach ../base BASE_COMMIT
#   CARGO_TARGET_DIR=../target-base cargo build --release --bin diagnose --manifest-path ../base/Cargo.toml
#   cargo build --release --bin diagnose
#   scripts/report_speed.sh ../target-base/release/diagnose target/release/diagnose 3 --seed 0
#   scripts/report_speed.sh ../target-base/release/diagnose target/release/diagnose 5 --quick
set -euo pipefail
usage="usage: scripts/report_speed.sh BASELINE_BIN CURRENT_BIN [RUNS] [REPORT ARGS...]"
base=${1:?$usage}
current=${2:?$usage}
runs=${3:-3}
shift $(($# < 3 ? $# : 3))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
TIMEFORMAT='%U %S' # `time`: the CPU seconds of a run
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for i in $(seq 1 "$runs"); do
    for who in baseline current; do
        bin=$base
        [ "$who" = current ] && bin=$current
        start=$(now)
        { time "$bin" report --out "$tmp/$who-$i" "$@" > /dev/null 2> "$tmp/stderr"; } 2> "$tmp/cpu" \
            || { cat "$tmp/stderr"; exit 1; }
        end=$(now)
        t=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
        cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$tmp/cpu")
        echo "$t" >> "$tmp/$who.times"
        echo "$cpu" >> "$tmp/$who.cpu"
        echo "$who run $i: $t s wall, $cpu s CPU (load average $(cut -d' ' -f1 /proc/loadavg))"
    done
done

for who in baseline current; do
    for d in "$tmp/$who"-*/; do
        diff -r "$tmp/$who-1" "$d" > /dev/null || { echo "FAIL: $(basename "$d") differs from $who-1"; exit 1; }
    done
done
b=$(median < "$tmp/baseline.times")
c=$(median < "$tmp/current.times")
echo "median baseline $b s, current $c s: $(awk -v b="$b" -v c="$c" 'BEGIN { printf "%.2f", b / c }')x faster; each binary's $runs reports byte-identical"
b=$(median < "$tmp/baseline.cpu")
c=$(median < "$tmp/current.cpu")
echo "median CPU (user + sys) baseline $b s, current $c s: $(awk -v b="$b" -v c="$c" 'BEGIN { printf "%.2f", b / c }')x less"
changed=$(diff -rq "$tmp/baseline-1" "$tmp/current-1" | sed -e "s|$tmp/current-1/||g" -e "s|$tmp/baseline-1/||g" || true)
if [ -z "$changed" ]; then
    echo "baseline and current reports byte-identical"
else
    echo "baseline and current reports differ:"
    echo "$changed" | sed 's/^/  /'
    [ "${REQUIRE_SAME_BYTES:-0}" = 1 ] && { echo "FAIL: REQUIRE_SAME_BYTES=1"; exit 1; }
fi
