#!/usr/bin/env bash
# Quick start: builds aird and runs it on 127.0.0.1:50051 with demo data in
# ./air-demo.db. Extra arguments go to aird (e.g. --listen=127.0.0.1:6000).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/build.sh
build_dir="${AIR_BUILD_DIR:-build}"
echo
echo "aird is starting with demo data. In another terminal try:"
echo "  $build_dir/clients/airctl/airctl investigations list"
echo "  $build_dir/clients/airctl/airctl actions list --filter='state = STATE_PENDING'"
echo "  $build_dir/clients/airctl/airctl actions watch"
echo
exec "$build_dir/service/aird" --demo --db=air-demo.db "$@"
