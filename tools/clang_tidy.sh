#!/usr/bin/env bash
# clang-tidy over every public header in include/azops, with the checks in .clang-tidy.
#   bash tools/clang_tidy.sh            check every header; exit 1 on any finding
#   bash tools/clang_tidy.sh tracker    check only the headers whose names contain "tracker"
# A header is not a translation unit, so each one is checked through a tiny generated .cpp that
# includes it (C++17, the server built in, cpp-httplib's pkg-config flags, which change its class
# layouts). Headers under include/azops/detail are checked through the headers that include them.
# Findings are reported only for files under include/azops, never for the standard library,
# nlohmann/json or cpp-httplib. Works offline; AZOPS_JOBS (default: nproc) headers run at once.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CLANG_TIDY=${CLANG_TIDY:-clang-tidy-14}
JOBS=${AZOPS_JOBS:-$(nproc)}

command -v "$CLANG_TIDY" >/dev/null || { echo "clang_tidy.sh: $CLANG_TIDY not found (apt-get install clang-tidy-14)" >&2; exit 2; }
HTTPLIB_FLAGS=$(pkg-config --cflags cpp-httplib) || { echo "clang_tidy.sh: pkg-config knows no cpp-httplib (apt-get install libcpp-httplib-dev)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/azops-tidy.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

names=()
for h in include/azops/*.hpp; do
  name=$(basename "$h" .hpp)
  [[ -z ${1:-} || $name == *"$1"* ]] || continue
  names+=("$name")
  printf '#include <azops/%s.hpp>\n' "$name" >"$WORK/$name.cpp"
done
[ ${#names[@]} -gt 0 ] || { echo "clang_tidy.sh: no header matches '${1:-}'" >&2; exit 2; }

# The checks come from .clang-tidy; the header filter is set here so that it follows the checkout.
HEADER_FILTER="^$ROOT/include/azops/.*\\.hpp\$"

check_one() {  # name: writes $WORK/name.log and $WORK/name.status
  # shellcheck disable=SC2086  # HTTPLIB_FLAGS holds several flags
  if "$CLANG_TIDY" --quiet --config-file="$ROOT/.clang-tidy" --header-filter="$HEADER_FILTER" \
       --warnings-as-errors='*' "$WORK/$1.cpp" -- \
       -std=c++17 -Wall -Wextra -Wpedantic -I"$ROOT/include" $HTTPLIB_FLAGS -DAZOPS_WITH_SERVER=1 \
       >"$WORK/$1.log" 2>&1; then
    echo ok >"$WORK/$1.status"
  else
    echo failed >"$WORK/$1.status"
  fi
}
export -f check_one
export ROOT WORK CLANG_TIDY HEADER_FILTER HTTPLIB_FLAGS

start=$(date +%s)
# shellcheck disable=SC2016  # $1 is the inner shell's
printf '%s\n' "${names[@]}" | xargs -P "$JOBS" -n 1 bash -c 'check_one "$1"' _

failed=()
logs=()
for name in "${names[@]}"; do
  [ "$(cat "$WORK/$name.status")" = ok ] && continue
  failed+=("$name.hpp")
  logs+=("$WORK/$name.log")
done

# A finding in a header shows up once per translation unit that includes it: print each once, with
# its notes. clang-tidy's own tallies ("N warnings generated") are left out.
findings=0
if [ ${#logs[@]} -gt 0 ]; then
  awk -v count_file="$WORK/count" '
    FNR == 1 { show = 1 }
    /^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$/ || /^Suppressed [0-9]+ warnings/ { next }
    /^Use -header-filter/ || /^[0-9]+ warnings? treated as errors?$/ { next }
    /^[^ ].*:[0-9]+:[0-9]+: (warning|error): / { show = !seen[$0]++; if (show) count++ }
    show { print }
    END { print count + 0 > count_file }
  ' "${logs[@]}" | sed "s|$WORK/|<generated>/|g"
  findings=$(cat "$WORK/count")
fi

echo "clang-tidy: ${#names[@]} headers in $(( $(date +%s) - start )) s, $findings findings${failed:+, failing: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
