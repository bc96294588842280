#!/usr/bin/env bash
# The project's two entry points on a fresh Debian 12 machine:
#   bash tools/dev.sh demo   install what is missing, build, run setup-waa in simulation with its dashboard open
#   bash tools/dev.sh test   install what is missing, build with g++ (CMake and meson) and clang++ (with
#                            ASan + UBSan, TSan and the fuzzers), run every test, clang-tidy the headers
# Build folders go under build/ (override with AZOPS_BUILD_ROOT).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_ROOT=${AZOPS_BUILD_ROOT:-$ROOT/build}
JOBS=${AZOPS_JOBS:-$(nproc)}

# What the builds use, from Debian 12's own archive.
BUILD_PACKAGES=(
  g++ clang libclang-rt-14-dev cmake ninja-build meson pkg-config python3
  nlohmann-json3-dev libcpp-httplib-dev doctest-dev libcli11-dev
)
# What the tests add: the browser tests' Chromium, a real Prometheus, clang-tidy.
TEST_PACKAGES=(chromium prometheus clang-tidy-14)
# Commands whose Debian package is installed only when the command is missing: a Node.js from
# elsewhere (NodeSource's nodejs carries its own npm and conflicts with Debian's) serves as well.
TEST_COMMANDS=(node:nodejs npm:npm)

log() { printf '\n== %s\n' "$*"; }

install_missing_packages() {  # packages... [command:package...]
  local missing=()
  for p in "$@"; do
    if [[ $p == *:* ]]; then
      command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
    else
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "all $# packages present"
    return
  fi
  log "installing: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

cmake_build() {  # name, compiler, build type, extra cmake arguments...
  local dir=$BUILD_ROOT/$1
  log "CMake build with $2 ($3) in $dir"
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER="$2" -DCMAKE_BUILD_TYPE="$3" "${@:4}" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

# playwright-core, pinned by tests/browser/package-lock.json; it drives Debian's chromium, downloads no browser.
install_browser_test_packages() {
  local wanted installed
  wanted=$(node -p 'require("./tests/browser/package-lock.json").packages["node_modules/playwright-core"].version')
  installed=$(node -p 'require("./tests/browser/node_modules/playwright-core/package.json").version' 2>/dev/null || true)
  [ "$wanted" = "$installed" ] && return
  log "npm ci (tests/browser)"
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
}

run_tests() {
  # As root (CI), the full-disk tests mount a small tmpfs; they must run, never skip.
  [ "$(id -u)" -ne 0 ] || export AZOPS_REQUIRE_TMPFS=1
  install_missing_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${TEST_COMMANDS[@]}"
  install_browser_test_packages
  cmake_build gcc g++ RelWithDebInfo -DAZOPS_BROWSER_TESTS=ON
  log "ctest (g++)"
  ctest --test-dir "$BUILD_ROOT/gcc" -j "$JOBS" --output-on-failure --timeout 600

  log "meson build and test (g++)"
  rm -rf "$BUILD_ROOT/meson"
  meson setup "$BUILD_ROOT/meson" "$ROOT" -Dbrowser_tests=enabled >/dev/null
  meson test -C "$BUILD_ROOT/meson" --print-errorlogs --num-processes "$JOBS"

  run_sanitizers
  log "clang-tidy (include/azops)"
  bash tools/clang_tidy.sh
}

# The clang++ build (warnings are errors there too) is the ASan + UBSan one: every test but the
# browser suites and the install-consumer one, and the fuzzers. Then the unit and server tests
# (tracker, writer, server threads) under TSan. tests/tsan.supp says what it hides and why.
run_sanitizers() {
  local asan="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
  cmake_build asan clang++ RelWithDebInfo -DAZOPS_BROWSER_TESTS=OFF \
    -DAZOPS_BUILD_FUZZERS=ON -DAZOPS_FUZZ_SECONDS="${AZOPS_FUZZ_SECONDS:-30}" \
    "-DCMAKE_CXX_FLAGS=$asan" "-DCMAKE_EXE_LINKER_FLAGS=$asan"
  log "ctest (clang++, ASan + UBSan, with the fuzzers)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$BUILD_ROOT/asan" -E 'browser|cmake:' -j "$JOBS" --output-on-failure --timeout 600

  local tsan=$BUILD_ROOT/tsan
  log "CMake build with clang++ -fsanitize=thread (unit and server tests) in $tsan"
  cmake -S "$ROOT" -B "$tsan" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAZOPS_BROWSER_TESTS=OFF -DCMAKE_CXX_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread >/dev/null
  cmake --build "$tsan" -j "$JOBS" --target azops_tests azops_server_tests
  log "ctest (clang++, TSan: unit and server tests)"
  TSAN_OPTIONS="suppressions=$ROOT/tests/tsan.supp second_deadlock_stack=1" \
    ctest --test-dir "$tsan" -R '^(unit|server):' -j "$JOBS" --output-on-failure --timeout 600
}

run_demo() {
  install_missing_packages "${BUILD_PACKAGES[@]}"
  cmake_build gcc g++ RelWithDebInfo
  log "demo: a whole setup-waa (create the VM, install Docker, build the WAA image, boot Windows), simulated in about a minute"
  log "the dashboard opens in your browser (or open the URL printed below); Ctrl-C stops"
  mkdir -p "$BUILD_ROOT/demo"
  "$BUILD_ROOT/gcc/bin/setup_waa" --simulate --linger 30 \
    --status-file "$BUILD_ROOT/demo/azure_ops_status.json" --history "$BUILD_ROOT/demo/azure_ops_history.json"
}

# The five-minute soak (ctest runs one minute of it): 50 pages on a flood of build output.
run_soak() {
  install_missing_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${TEST_COMMANDS[@]}"
  install_browser_test_packages
  cmake_build gcc g++ RelWithDebInfo
  node tests/soak/soak.mjs --seconds "${AZOPS_SOAK_SECONDS:-300}" --azops "$BUILD_ROOT/gcc/bin/azops"
}

# The speed and memory figures against their references (bench/results.md records them).
run_bench() {
  install_missing_packages "${BUILD_PACKAGES[@]}" libbenchmark-dev wrk nginx-light curl
  bash bench/run_all.sh "$@"
}

case "${1:-}" in
  test) run_tests ;;
  demo) run_demo ;;
  soak) run_soak ;;
  bench) shift; run_bench "$@" ;;
  *) echo "usage: bash tools/dev.sh demo|test|soak|bench" >&2; exit 2 ;;
esac
