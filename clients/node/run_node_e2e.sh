#!/usr/bin/env bash
# CTest node_subscriber_e2e: installs the locked npm dependencies into the
# build tree (npm ci, only when package-lock.json changed) and runs the
# end-to-end scenario with soar_subscriber.js. Skipped (exit 77) only when
# node is missing.
# Usage: run_node_e2e.sh AIRD_BINARY BUILD_DIR PYTHON PYTHON_STUBS [DRIVER_ARGS...]
set -euo pipefail
aird=$1
mkdir -p "$2"
build=$(cd "$2" && pwd)
python=$3
stubs=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v node >/dev/null; then
  echo "SKIP: node is not installed; the Node subscriber was not tested" >&2
  exit 77
fi
command -v npm >/dev/null || { echo "FAIL: node is installed but npm is not" >&2; exit 1; }

pkg=$build/npm
mkdir -p "$pkg"
lock_sum=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$pkg/node_modules/.air-lock-sum" 2>/dev/null)" != "$lock_sum" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$pkg/"
  (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$pkg/node_modules/.air-lock-sum"
fi
echo "node $(node --version), @grpc/grpc-js $(node -p "require('$pkg/node_modules/@grpc/grpc-js/package.json').version")"

export NODE_PATH=$pkg/node_modules
exec "$python" "$here/../e2e/subscriber_e2e.py" --aird "$aird" --stubs "$stubs" \
  --work "$build/e2e" "$@" -- node "$here/soar_subscriber.js"
