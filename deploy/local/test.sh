#!/usr/bin/env bash
# Builds everything and runs the whole test suite with CTest. Prints CTest's
# summary; exits non-zero if any test fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/build.sh
build_dir="${AIR_BUILD_DIR:-build}"
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" --timeout 600 "$@"
