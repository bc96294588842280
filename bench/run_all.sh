#!/usr/bin/env bash
# The benchmark suite: each figure measured against its reference in the same run, with its target.
#
#   bash bench/run_all.sh [--quick] [--size SIZE] [--duration SECONDS] [--results FILE]
#
#   1. Tracker::log on the caller's thread vs a naive writer that rewrites the whole status file on
#      every update (Google Benchmark, median of repetitions)              target <= 200 ns per line
#   2. azops run -- cat LOG  vs  cat LOG | tee /dev/null  (SIZE docker build log, best of 3, warm cache)
#                                                                          target ratio >= 0.5
#   3. GET /api/azure-ops-status: azops serve vs nginx serving the same file (wrk, best of 2 rounds)
#                                                                          target ratio >= 0.5
#   4. VmRSS growth of one Tracker between 100k and 10M logged lines       target <= 2 MiB
#
# --quick: a 128M log, 3 repetitions, 3 s of wrk (for trying things; the figures are noisier).
# Builds (Release, with ${CXX:-g++}) into $AZOPS_BENCH_BUILD (default build/bench) and keeps the
# generated logs there. Writes the figures to --results (default bench/results.md; build/bench/results.md
# with --quick). Needs cmake, the build dependencies, libbenchmark-dev, wrk, nginx, curl, python3.
# Exit status: 0 when every target is met, 1 when one is missed, 2 when something could not be measured.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${AZOPS_BENCH_BUILD:-$root/build/bench}"
cxx="${CXX:-g++}"
size=1G
duration=10
repetitions=10
runs=3
quick=0
results=""

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; size=128M; duration=3; repetitions=3 ;;
        --size) size="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        --results) results="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run_all.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$results" ]; then
    if [ "$quick" = 1 ]; then results="$build/results.md"; else results="$here/results.md"; fi
fi

die() { echo "run_all.sh: $*" >&2; exit 2; }
say() { printf '\n== %s\n' "$*" >&2; }

for tool in cmake "$cxx" wrk nginx python3 curl; do
    command -v "$tool" > /dev/null || die "$tool is not installed"
done

mkdir -p "$build"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
work="$(mktemp -d "${TMPDIR:-/tmp}/azops-bench.XXXXXX")"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------
say "building (Release, $cxx) in $build"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake -S "$root" -B "$build/cmake" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" \
    -DAZOPS_BUILD_TESTS=OFF -DAZOPS_INSTALL=OFF > "$build/cmake-configure.log" ||
    die "cmake configure failed, see $build/cmake-configure.log"
cmake --build "$build/cmake" -j 1 --target azops_cli > "$build/cmake-build.log" ||
    die "building azops failed, see $build/cmake-build.log"
azops="$build/cmake/bin/azops"
flags=(-std=c++17 -O3 -DNDEBUG -Wall -Wextra -Wpedantic -Werror -I"$root/include")
"$cxx" "${flags[@]}" "$here/gen_buildkit_log.cpp" -o "$build/gen_buildkit_log"
"$cxx" "${flags[@]}" "$here/tracker_log.cpp" -o "$build/tracker_log" -lbenchmark -lpthread
"$cxx" "${flags[@]}" "$here/tracker_memory.cpp" -o "$build/tracker_memory" -lpthread

log_of_size() {  # SIZE → path of a generated BuildKit log of that size (made once, then reused)
    local path="$build/buildkit-$1.log"
    if [ ! -s "$path" ]; then
        "$build/gen_buildkit_log" "$path.partial" "$1" > /dev/null
        mv "$path.partial" "$path"
    fi
    echo "$path"
}
big_log="$(log_of_size "$size")"
line_log="$(log_of_size 64M)"

# Wall time in seconds of "$@".
seconds_of() {
    local start end
    start=$(date +%s%N)
    "$@" || die "failed: $*"
    end=$(date +%s%N)
    awk -v t="$((end - start))" 'BEGIN { print t / 1e9 }'
}

min_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }

verdict() {  # VALUE OP TARGET → PASS or MISS
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == "<=") ? (v <= t) : (v >= t); print ok ? "PASS" : "MISS" }'
}

# CPU seconds the whole machine spent on processes since boot (user, nice, system, and time stolen
# by other guests; interrupt time is left out, as loopback traffic lands there whoever caused it).
machine_cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $9) / hz; exit }' /proc/stat
}
# CPU seconds of this script and its children so far. `times` must run in this shell: call it with a
# redirection, never inside $(...), where a subshell would report its own (empty) account.
own_cpu_seconds() {
    times > "$work/times"
    awk '{ for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } } END { print t }' "$work/times"
}
window_start_wall=$(date +%s.%N)
window_start_machine=$(machine_cpu_seconds)
own_cpu_seconds > "$work/own_start"

rows=()
add_row() {  # one table row; a `|` inside a cell (even in code) must be escaped in Markdown
    local cells=() cell
    for cell in "$@"; do cells+=("${cell//|/\\|}"); done
    rows+=("$(printf '| %s | %s | %s | %s | %s |' "${cells[@]}")")
}

# ---------------------------------------------------------------------------------------------------
say "1. Tracker::log vs naive writer ($repetitions repetitions, $(wc -l < "$line_log") lines)"
tracker_log_cmd=("$build/tracker_log" --benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=true
    --benchmark_out="$work/tracker_log.json" --benchmark_out_format=json "$line_log")
"${tracker_log_cmd[@]}" >&2
read -r log_ns naive_ns < <(python3 - "$work/tracker_log.json" << 'EOF'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
def median(name):
    for r in runs:
        if r.get("run_name") == name and r.get("aggregate_name") == "median" and not r.get("error_occurred"):
            return r["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[r["time_unit"]]
    sys.exit("no median for " + name)
names = sorted({r["run_name"] for r in runs})
print(median(next(n for n in names if n.startswith("tracker_log"))),
      median(next(n for n in names if n.startswith("naive_writer"))))
EOF
) || die "cannot read the Google Benchmark results"
log_ratio=$(awk -v a="$naive_ns" -v b="$log_ns" 'BEGIN { printf "%.0f", a / b }')
log_verdict=$(verdict "$log_ns" "<=" 200)
printf 'Tracker::log median %.1f ns per line; naive writer median %.0f µs; naive/Tracker::log = %sx; target <= 200 ns: %s\n' \
    "$log_ns" "$(awk -v n="$naive_ns" 'BEGIN { print n / 1000 }')" "$log_ratio" "$log_verdict"
add_row "Tracker::log, caller's thread (median ns per line)" "$(printf '%.1f ns (naive writer %.0f µs: %sx slower)' "$log_ns" "$(awk -v n="$naive_ns" 'BEGIN { print n / 1000 }')" "$log_ratio")" \
    "≤ 200 ns" "$log_verdict" "\`bench/tracker_log --benchmark_repetitions=$repetitions --benchmark_report_aggregates_only=true $(basename "$line_log")\`"

# ---------------------------------------------------------------------------------------------------
say "2. azops run -- cat LOG vs cat LOG | tee /dev/null ($(basename "$big_log"), best of $runs)"
cat "$big_log" > /dev/null  # warm page cache for both
mkdir -p "$work/run"
run_status="$work/run/azure_ops_status.json"
azops_run() { "$azops" run --no-serve --no-open --status-file "$run_status" -- cat "$big_log" > /dev/null 2> "$work/run/stderr"; }
cat_tee() { cat "$big_log" | tee /dev/null > /dev/null; }
# Alternating, so that both see the machine in the same state.
run_s=""
tee_s=""
for _ in $(seq "$runs"); do
    run_s=$(min_of "$run_s" "$(seconds_of azops_run)")
    tee_s=$(min_of "$tee_s" "$(seconds_of cat_tee)")
done
# The figure counts only if azops really followed the build to its end.
python3 - "$run_status" "$big_log" << 'EOF' || die "azops run did not track the whole build (see above)"
import json, sys
s = json.load(open(sys.argv[1]))
last = open(sys.argv[2], "rb").read()[-4096:].decode().rstrip("\n").split("\n")[-1]
ok = (s["state"], s["operation"], s["step"], s["total_steps"]) == ("succeeded", "docker_build", 21, 21)
if not ok or s["log_tail"][-1] != last:
    sys.exit("status: %s %s step %s/%s, last line %r" % (s["state"], s["operation"], s["step"], s["total_steps"], s["log_tail"][-1:]))
EOF
bytes=$(stat -c %s "$big_log")
run_ratio=$(awk -v a="$tee_s" -v b="$run_s" 'BEGIN { printf "%.2f", a / b }')
run_verdict=$(verdict "$run_ratio" ">=" 0.5)
printf 'azops run %.3f s (%.2f GB/s); cat|tee %.3f s (%.2f GB/s); ratio t(cat|tee)/t(azops run) = %s; target >= 0.5: %s\n' \
    "$run_s" "$(awk -v b="$bytes" -v t="$run_s" 'BEGIN { print b / t / 1e9 }')" "$tee_s" \
    "$(awk -v b="$bytes" -v t="$tee_s" 'BEGIN { print b / t / 1e9 }')" "$run_ratio" "$run_verdict"
add_row "azops run on a $(awk -v b="$bytes" 'BEGIN { printf "%.2f GB", b / 1e9 }') docker build log ($(wc -l < "$big_log") lines)" \
    "$(printf '%.3f s vs cat|tee %.3f s: ratio %s' "$run_s" "$tee_s" "$run_ratio")" "≥ 0.5" "$run_verdict" \
    "\`azops run --no-serve --no-open --status-file S -- cat $(basename "$big_log") > /dev/null\` vs \`cat $(basename "$big_log") | tee /dev/null > /dev/null\`, best of $runs"

# ---------------------------------------------------------------------------------------------------
say "3. GET /api/azure-ops-status: azops serve vs nginx (wrk -t2 -c32 -d${duration}s)"
site="$work/site"
mkdir -p "$site"
status_file="$site/azure_ops_status.json"
"$azops" run --no-serve --no-open --task setup-waa --operation docker_build --vm-size Standard_D8ds_v5 \
    --status-file "$status_file" -- cat "$line_log" > /dev/null 2>&1 || die "could not produce a status file"

wait_for_url() {  # URL → waits until it answers, at most 10 s
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "$1" 2> /dev/null && return 0
        sleep 0.1
    done
    return 1
}

"$azops" serve --status-file "$status_file" --port 0 --no-open > "$work/serve.out" 2>&1 &
pids+=($!)
azops_url=""
for _ in $(seq 100); do
    azops_url=$(sed -n 's/.*dashboard at \(http[^ ]*\).*/\1/p' "$work/serve.out" | head -n 1)
    [ -n "$azops_url" ] && break
    kill -0 "${pids[-1]}" 2> /dev/null || die "azops serve ended: $(cat "$work/serve.out")"
    sleep 0.1
done
[ -n "$azops_url" ] || die "azops serve printed no URL: $(cat "$work/serve.out")"
azops_url="${azops_url%/}/api/azure-ops-status"
wait_for_url "$azops_url" || die "azops serve does not answer at $azops_url"

nginx_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prefix="$work/nginx"
mkdir -p "$prefix"
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user $(id -un) $(id -gn);"
cat > "$prefix/nginx.conf" << EOF
$user_line
worker_processes $(nproc);
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    client_body_temp_path $prefix/client_body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        location = /api/azure-ops-status {
            alias $status_file;
            default_type application/json;
            add_header Cache-Control no-store;
        }
    }
}
EOF
nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" &
pids+=($!)
nginx_url="http://127.0.0.1:$nginx_port/api/azure-ops-status"
wait_for_url "$nginx_url" || die "nginx does not answer at $nginx_url: $(cat "$prefix/error.log" 2> /dev/null)"

curl -fsS "$azops_url" > "$work/from_azops.json"
curl -fsS "$nginx_url" > "$work/from_nginx.json"
python3 -c 'import json, sys; a, b = (json.load(open(p)) for p in sys.argv[1:]); sys.exit(a != b)' \
    "$work/from_azops.json" "$work/from_nginx.json" || die "azops and nginx do not serve the same status"
status_bytes=$(stat -c %s "$status_file")

wrk_rps() {  # URL → requests per second; dies on errors or non-2xx answers
    local out
    out=$(wrk -t2 -c32 -d"${duration}s" "$1")
    echo "$out" >&2
    if grep -q -e 'Non-2xx' -e 'Socket errors' <<< "$out"; then
        die "wrk saw errors against $1"
    fi
    awk '/^Requests\/sec:/ { print $2 }' <<< "$out"
}
# Best of two rounds each, alternating, so that both see the machine in the same state.
max_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b > a) ? b : a }'; }
azops_rps=""
nginx_rps=""
for _ in 1 2; do
    azops_rps=$(max_of "$azops_rps" "$(wrk_rps "$azops_url")")
    nginx_rps=$(max_of "$nginx_rps" "$(wrk_rps "$nginx_url")")
done
http_ratio=$(awk -v a="$azops_rps" -v b="$nginx_rps" 'BEGIN { printf "%.2f", a / b }')
http_verdict=$(verdict "$http_ratio" ">=" 0.5)
printf 'azops serve %.0f req/s; nginx %.0f req/s (%s-byte status); ratio azops/nginx = %s; target >= 0.5: %s\n' \
    "$azops_rps" "$nginx_rps" "$status_bytes" "$http_ratio" "$http_verdict"
add_row "GET /api/azure-ops-status, $status_bytes-byte status (req/s)" \
    "$(printf 'azops serve %.0f vs nginx %.0f: ratio %s' "$azops_rps" "$nginx_rps" "$http_ratio")" "≥ 0.5" "$http_verdict" \
    "best of 2 rounds of \`wrk -t2 -c32 -d${duration}s URL\` against \`azops serve --status-file F --port 0 --no-open\` and nginx ($(nproc) workers, sendfile, access_log off)"

# Both servers stop here, so that their CPU time counts as this script's own.
for pid in "${pids[@]}"; do
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
done
pids=()

# ---------------------------------------------------------------------------------------------------
say "4. memory of one Tracker over 10M lines"
memory_out=$("$build/tracker_memory" "$big_log" 10000000 100000) || die "tracker_memory failed"
echo "$memory_out" >&2
kv() { sed -n "s/.*\b$1=\([0-9-]*\).*/\1/p" <<< "$memory_out"; }
warm_kib=$(kv rss_warm_kib)
end_kib=$(kv rss_end_kib)
growth_kib=$(kv growth_kib)
passes=$(kv passes)
mem_verdict=$(verdict "$growth_kib" "<=" 2048)
printf 'VmRSS after 100k lines %s KiB, after 10M lines %s KiB: growth %s KiB; target <= 2048 KiB: %s\n' \
    "$warm_kib" "$end_kib" "$growth_kib" "$mem_verdict"
add_row "VmRSS growth of one Tracker, 100k → 10M lines ($passes pass(es) over the log)" \
    "$warm_kib KiB → $end_kib KiB: +$growth_kib KiB" "≤ 2048 KiB" "$mem_verdict" \
    "\`bench/tracker_memory $(basename "$big_log") 10000000 100000\`"

# ---------------------------------------------------------------------------------------------------
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
# Other work on the machine slows the two sides of a ratio unevenly: measure how much CPU the rest of
# the machine took while the figures were measured, and say so rather than trust them.
own_cpu_seconds > "$work/own_end"
own_cpu=$(awk -v a="$(cat "$work/own_start")" -v b="$(cat "$work/own_end")" 'BEGIN { print b - a }')
read -r other_cpu other_pct < <(awk -v w0="$window_start_wall" -v w1="$(date +%s.%N)" -v m0="$window_start_machine" \
    -v m1="$(machine_cpu_seconds)" -v own="$own_cpu" -v n="$(nproc)" \
    'BEGIN { other = m1 - m0 - own; if (other < 0) other = 0; printf "%.1f %.1f\n", other, 100 * other / ((w1 - w0) * n) }')
busy_note=""
if awk -v p="$other_pct" 'BEGIN { exit !(p > 10) }'; then
    busy_note="The machine was busy: other processes took $other_cpu CPU seconds ($other_pct % of its $(nproc) cores) while the figures were measured, so the wall-time figures are unreliable; rerun on a quiet machine."
    echo "WARNING: $busy_note"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
memory=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
{
    echo "# Benchmark results"
    echo
    echo "Written by \`bash bench/run_all.sh$([ "$quick" = 1 ] && echo " --quick")\` on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
    echo
    echo "| machine | |"
    echo "|---|---|"
    echo "| CPU | ${cpu_model:-unknown}, $(nproc) cores |"
    echo "| memory | $memory |"
    echo "| kernel | $(uname -sr) |"
    echo "| compiler | $("$cxx" --version | head -n 1), -O3 -DNDEBUG |"
    echo "| nginx, wrk | $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }') |"
    echo "| other processes while measuring | $other_cpu CPU s, $other_pct % of the machine (load average $load_before before, $load_after after, this run included) |"
    echo
    echo "| figure | measured | target | | command |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    [ -z "$busy_note" ] || printf '**%s**\n\n' "$busy_note"
    echo "Each ratio compares two figures taken in the same run on the same machine. Logs: generated by"
    echo "\`bench/gen_buildkit_log\` (BuildKit plain output of a 21-step image build, about 70 bytes a line)."
} > "$results.partial"
mv "$results.partial" "$results"
say "figures written to $results"

for v in "$log_verdict" "$run_verdict" "$http_verdict" "$mem_verdict"; do
    [ "$v" = PASS ] || exit 1
done
exit 0
