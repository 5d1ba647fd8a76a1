#!/usr/bin/env bash
# Side-by-side wall time of `diagnose report`: a baseline binary and the
# current one, run alternately RUNS times each (so both see the same load),
# each run into its own temporary directory. Prints every time with the load
# average, the medians and their ratio, and fails if any report differs from
# the first by a byte.
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
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for i in $(seq 1 "$runs"); do
    for who in baseline current; do
        bin=$base
        [ "$who" = current ] && bin=$current
        start=$(now)
        "$bin" report --out "$tmp/$who-$i" "$@" > /dev/null
        end=$(now)
        t=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
        echo "$t" >> "$tmp/$who.times"
        echo "$who run $i: $t s (load average $(cut -d' ' -f1 /proc/loadavg))"
    done
done

for d in "$tmp"/*-*/; do
    diff -r "$tmp/baseline-1" "$d" > /dev/null || { echo "FAIL: $(basename "$d") differs from baseline-1"; exit 1; }
done
b=$(median < "$tmp/baseline.times")
c=$(median < "$tmp/current.times")
echo "median baseline $b s, current $c s: $(awk -v b="$b" -v c="$c" 'BEGIN { printf "%.2f", b / c }')x faster; all $((2 * runs)) reports byte-identical"
