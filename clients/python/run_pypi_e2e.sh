#!/usr/bin/env bash
# CTest python_subscriber_e2e_pypi_grpcio: the subscriber under PyPI's grpcio,
# as SOAR users install it. Creates (once) a venv in the build tree with
# grpcio + grpcio-tools, generates the stubs with grpc_tools.protoc, and runs
# the end-to-end scenario with that interpreter.
# Usage: run_pypi_e2e.sh AIRD_BINARY BUILD_DIR
set -euo pipefail
aird=$1
mkdir -p "$2"
build=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
venv=$build/venv-pypi
stubs=$build/gen-pypi

python=${AIR_PYPI_PYTHON:-python3}
if ! "$venv/bin/python" -c 'import grpc, grpc_tools' 2>/dev/null; then
  rm -rf "$venv"
  if ! "$python" -m venv "$venv"; then
    echo "SKIP: '$python -m venv' failed; set AIR_PYPI_PYTHON to an interpreter with venv" >&2
    exit 77
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check grpcio grpcio-tools
fi
"$venv/bin/python" -c 'import grpc, google.protobuf as p; print("PyPI grpcio", grpc.__version__, "protobuf", p.__version__)'
rm -rf "$stubs"
"$venv/bin/python" "$here/gen_stubs.py" --out "$stubs"
exec "$venv/bin/python" "$here/../e2e/subscriber_e2e.py" --aird "$aird" --stubs "$stubs" \
  --work "$build/e2e-pypi" -- "$venv/bin/python" "$here/soar_subscriber.py" --stubs "$stubs"
