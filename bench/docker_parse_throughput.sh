#!/usr/bin/env bash
# Throughput of `azops parse docker FILE` against `grep -c` and `wc -l` on one BuildKit log.
#
#   bench/docker_parse_throughput.sh [SIZE]     SIZE like 200M or 1G (default 1G)
#
# Builds bench/gen_buildkit_log.cpp and bench/parse_docker_main.cpp (the `azops parse docker` code,
# sanitising included) with ${CXX:-g++} -O2 into /tmp/azops-docker-bench, writes the log there once per size,
# reads it once so that every tool reads from the page cache, then times each tool (best of
# ${RUNS:-3} runs) and prints GB/s (10^9 bytes per second) and the ratio parse/grep (target >= 0.5).
set -euo pipefail

size="${1:-1G}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${AZOPS_BENCH_DIR:-/tmp/azops-docker-bench}"
cxx="${CXX:-g++}"
runs="${RUNS:-3}"
mkdir -p "$work"

"$cxx" -std=c++17 -O2 "$here/gen_buildkit_log.cpp" -o "$work/gen_buildkit_log"
"$cxx" -std=c++17 -O2 -I"$here/../include" "$here/parse_docker_main.cpp" -o "$work/parse_docker"

log="$work/buildkit-$size.log"
if [[ ! -s "$log" ]]; then
    "$work/gen_buildkit_log" "$log" "$size" > /dev/null
fi
bytes=$(stat -c %s "$log")
cat "$log" > /dev/null

# Best wall time in seconds of "$@" over $runs runs; the command's output goes to $work/last.out.
best_seconds() {
    local best=""
    for _ in $(seq "$runs"); do
        local start end
        start=$(date +%s%N)
        "$@" > "$work/last.out" || true
        end=$(date +%s%N)
        best=$(awk -v t="$(( end - start ))" -v b="$best" 'BEGIN { t /= 1e9; print (b == "" || t < b) ? t : b }')
    done
    echo "$best"
}

parse_s=$(best_seconds "$work/parse_docker" "$log")
summary=$(tail -n 1 "$work/last.out")
grep_s=$(best_seconds grep -c '^#[0-9]* \[' "$log")
grep_count=$(cat "$work/last.out")
wc_s=$(best_seconds wc -l "$log")
lines=$(awk '{ print $1 }' "$work/last.out")

case "$summary" in
    *'"outcome":"succeeded"'*'"step":21'*) ;;
    *) echo "azops parse docker did not see the whole build: $summary" >&2; exit 1 ;;
esac

awk -v bytes="$bytes" -v lines="$lines" -v headers="$grep_count" -v cxx="$cxx" -v charmap="$(locale charmap)" \
    -v p="$parse_s" -v g="$grep_s" -v w="$wc_s" 'BEGIN {
    printf "log: %.0f MB, %d lines (%d step headers), %.1f bytes per line; parser built with %s -O2; grep in %s\n",
           bytes / 1e6, lines, headers, bytes / lines, cxx, charmap
    printf "%-26s %8.3f s  %6.2f GB/s\n", "azops parse docker FILE", p, bytes / p / 1e9
    printf "%-26s %8.3f s  %6.2f GB/s\n", "grep -c \x27^#[0-9]* \\[\x27 FILE", g, bytes / g / 1e9
    printf "%-26s %8.3f s  %6.2f GB/s\n", "wc -l FILE", w, bytes / w / 1e9
    printf "ratio parse/grep: %.2f (target >= 0.5)\n", g / p
}'
