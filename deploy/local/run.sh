#!/usr/bin/env bash
# Quick start: builds aird and runs it on 127.0.0.1:50051 (gRPC) and
# http://127.0.0.1:8080/ (the web console) with demo data in ./air-demo.db,
# fed by the in-process upstream simulator (a new investigation about every
# 10 s, approved actions run and complete), with Prometheus metrics on
# http://127.0.0.1:9464/metrics.
# Extra arguments go to aird (e.g. --listen=127.0.0.1:6000,
# --http_listen=127.0.0.1:9090, --tokens_file=tokens).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/build.sh
build_dir="${AIR_BUILD_DIR:-build}"
echo
echo "aird is starting with demo data."
echo "Web console: http://127.0.0.1:8080/ (no sign-in without --tokens_file)"
echo "In another terminal try:"
echo "  $build_dir/clients/airctl/airctl investigations list"
echo "  $build_dir/clients/airctl/airctl actions list --filter='state = STATE_PENDING'"
echo "  $build_dir/clients/airctl/airctl actions watch"
echo "  $build_dir/clients/airctl/airctl status"
echo "  curl -s http://127.0.0.1:9464/metrics | grep ^aird_"
echo
exec "$build_dir/service/aird" --demo --db=air-demo.db --http_listen=127.0.0.1:8080 \
  --metrics_listen=127.0.0.1:9464 --upstream=sim --sim_arrival_rate=0.1 "$@"
