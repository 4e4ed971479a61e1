#!/usr/bin/env bash
# Installs the Debian 12 packages aird needs to build and test, if missing.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libsqlite3-dev sqlite3 libgtest-dev libgmock-dev libbenchmark-dev
  libspdlog-dev
  # Prometheus metrics endpoint (prometheus-cpp 1.0, civetweb).
  prometheus-cpp-dev
  # google/rpc/{status,error_details}.proto, compiled with our own protos.
  golang-github-gogo-googleapis-dev
  # The web console's HTTP server (cpp-httplib).
  libcpp-httplib-dev
  # The PostgreSQL repository's client library (libpq).
  libpq-dev
  # aird's allocator (CMakeLists.txt, AIR_JEMALLOC).
  libjemalloc-dev
)
# What only the tests need, unless only building (AIR_DEPS=build, as the
# Dockerfile's build stage does).
if [ "${AIR_DEPS:-all}" != "build" ]; then
  # Client end-to-end tests: Debian's grpcio for the Python client.
  packages+=(python3-grpcio python3-venv python3-pip openssl)
  # A real PostgreSQL 15 server for the PostgreSQL repository's tests (run
  # from a temporary directory, never as a system service).
  packages+=(postgresql)
  # The tests of deploy/: systemd-analyze verify, the manifests' YAML.
  packages+=(systemd python3 python3-yaml)
  # The headless browser the web console's end-to-end tests drive (with
  # playwright-core from npm; Node below).
  packages+=(chromium)
  # Node (Node client, buf, browser tests): Debian's only if none is installed,
  # since a NodeSource nodejs already ships npm and conflicts with Debian's.
  if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi
fi
if [ -n "${AIR_EXTRA_PACKAGES:-}" ]; then
  read -r -a extra <<<"$AIR_EXTRA_PACKAGES"
  packages+=("${extra[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
