#!/usr/bin/env bash
# Builds everything and runs the whole test suite with CTest. Prints CTest's
# summary; exits non-zero if any test fails. With AIR_WITH_SANITIZERS=1 (as
# CI runs it) it then runs the suite again under ASan+UBSan and the fuzz
# targets briefly (deploy/local/test-sanitizers.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/build.sh
build_dir="${AIR_BUILD_DIR:-build}"
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" --timeout 600 "$@"
if [ "${AIR_WITH_SANITIZERS:-0}" = "1" ]; then
  bash deploy/local/test-sanitizers.sh "$@"
fi
