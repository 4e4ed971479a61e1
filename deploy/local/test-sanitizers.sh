#!/usr/bin/env bash
# The sanitizer pass (issue 8), run by CI after the main suite
# (.ci/run sets AIR_WITH_SANITIZERS=1 for deploy/local/test.sh):
#  1. builds everything with AddressSanitizer + UndefinedBehaviorSanitizer
#     (gcc, -O1) into build-asan and runs the whole CTest suite against those
#     binaries, except the two tests about the release binary itself (the
#     container image's runtime libraries, and the benchmark smoke run);
#  2. builds the libFuzzer targets with clang into build-fuzz and runs each
#     for AIR_FUZZ_SECONDS (default 10) from the committed seed corpus.
# Any sanitizer report fails the test that triggered it. Prints CTest's
# summary for each part; exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
AIR_EXTRA_PACKAGES="clang-14 libclang-rt-14-dev ${AIR_EXTRA_PACKAGES:-}" \
  bash deploy/local/install-deps.sh
jobs="$(nproc)"

asan_dir="${AIR_ASAN_BUILD_DIR:-build-asan}"
cmake -S . -B "$asan_dir" -G Ninja -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_C_FLAGS="-O1 -g1" -DCMAKE_CXX_FLAGS="-O1 -g1" \
  -DAIR_SANITIZE=address,undefined ${AIR_CMAKE_ARGS:-} >/dev/null
cmake --build "$asan_dir" -- -j"$jobs"
# halt_on_error: an UndefinedBehaviorSanitizer report ends the process (and
# so fails its test) instead of scrolling past; leaks are reported at exit.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizers/lsan.supp}"
echo "== ASan+UBSan: the test suite against $asan_dir"
ctest --test-dir "$asan_dir" --output-on-failure -j"$jobs" --timeout 900 \
  -E '^(deploy_image_test|air_bench_smoke)$' "$@"

fuzz_dir="${AIR_FUZZ_BUILD_DIR:-build-fuzz}"
CC=clang-14 CXX=clang++-14 cmake -S . -B "$fuzz_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DAIR_FUZZ=ON -DAIR_FUZZ_SECONDS="${AIR_FUZZ_SECONDS:-10}" >/dev/null
cmake --build "$fuzz_dir" --target filter_fuzzer page_token_fuzzer validation_fuzzer \
  upstream_record_fuzzer -- -j"$jobs"
echo "== libFuzzer: each target for ${AIR_FUZZ_SECONDS:-10} s"
ctest --test-dir "$fuzz_dir" --output-on-failure -L fuzz
