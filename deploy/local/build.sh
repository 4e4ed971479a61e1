#!/usr/bin/env bash
# Configures and builds everything into ./build (or $AIR_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/install-deps.sh
build_dir="${AIR_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${AIR_BUILD_TYPE:-RelWithDebInfo}" \
  ${AIR_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -- -j"$(nproc)"
