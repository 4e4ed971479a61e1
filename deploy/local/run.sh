#!/usr/bin/env bash
# Quick start: builds aird and runs it on 127.0.0.1:50051 (gRPC) and
# http://127.0.0.1:8080/ (the web console) with demo data in ./air-demo.db,
# fed by the upstream simulator (air-upstream-sim, its own process on a
# loopback port it picks: a new investigation about every 10 s, approved
# actions run and complete), with Prometheus metrics on
# http://127.0.0.1:9464/metrics. The simulator stops with aird (or Ctrl-C).
# Extra arguments go to aird (e.g. --listen=127.0.0.1:6000,
# --http_listen=127.0.0.1:9090, --tokens_file=tokens).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/build.sh
build_dir="${AIR_BUILD_DIR:-build}"

sim_dir=$(mktemp -d)
sim_log="$build_dir/air-upstream-sim.log"
sim_pid=""
aird_pid=""
stop_all() {
  if [ -n "$aird_pid" ]; then
    kill -TERM "$aird_pid" 2>/dev/null || true
    wait "$aird_pid" 2>/dev/null || true
  fi
  if [ -n "$sim_pid" ]; then
    kill -TERM "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
  fi
  rm -rf "$sim_dir"
}
trap stop_all EXIT
# Ctrl-C, or SIGTERM to this script, stops both: aird first (SIGTERM, its
# graceful shutdown), then the simulator it was syncing with.
trap 'exit 130' INT
trap 'exit 143' TERM

# Port 0: the kernel picks a free port, which the simulator writes to
# --port_file once it serves; no fixed port to collide with.
"$build_dir/sim/air-upstream-sim" --listen=127.0.0.1:0 --port_file="$sim_dir/port" \
  --arrival_rate=0.1 >"$sim_log" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do
  [ -s "$sim_dir/port" ] && break
  if ! kill -0 "$sim_pid" 2>/dev/null; then
    echo "air-upstream-sim did not start; see $sim_log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ ! -s "$sim_dir/port" ]; then
  echo "air-upstream-sim did not report its port within 10 s; see $sim_log" >&2
  exit 1
fi
upstream="127.0.0.1:$(cat "$sim_dir/port")"

echo
echo "aird is starting with demo data; the upstream simulator serves on $upstream"
echo "(its log: $sim_log)."
echo "Web console: http://127.0.0.1:8080/ (no sign-in without --tokens_file)"
echo "In another terminal try:"
echo "  $build_dir/clients/airctl/airctl investigations list"
echo "  $build_dir/clients/airctl/airctl actions list --filter='state = STATE_PENDING'"
echo "  $build_dir/clients/airctl/airctl actions watch"
echo "  $build_dir/clients/airctl/airctl status"
echo "  curl -s http://127.0.0.1:9464/metrics | grep ^aird_"
echo
"$build_dir/service/aird" --demo --db=air-demo.db --http_listen=127.0.0.1:8080 \
  --metrics_listen=127.0.0.1:9464 --upstream="$upstream" "$@" &
aird_pid=$!
aird_status=0
wait "$aird_pid" || aird_status=$?
aird_pid=""
exit "$aird_status"
