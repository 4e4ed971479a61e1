#!/usr/bin/env python3
"""Generates the air.v1 Python code with PyPI's grpcio-tools.

    pip install grpcio grpcio-tools
    python3 clients/python/gen_stubs.py --out /tmp/air-stubs
    AIR_PYTHON_STUBS=/tmp/air-stubs python3 clients/python/soar_subscriber.py ...

(With Debian's python3-grpcio, build the CMake target air_python_stubs
instead: it uses Debian's protoc and grpc_python_plugin.) The google.rpc
error-detail protos come from --googleapis (default: Debian's
golang-github-gogo-googleapis-dev copy).
"""
import argparse
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
GOOGLEAPIS = "/usr/share/gocode/src/github.com/gogo/googleapis"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--proto-root", default=PROTO_ROOT)
    p.add_argument("--googleapis", default=GOOGLEAPIS,
                   help="directory holding google/rpc/{status,error_details}.proto")
    args = p.parse_args()

    from grpc_tools import protoc
    import grpc_tools
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    os.makedirs(args.out, exist_ok=True)
    air = sorted(glob.glob(os.path.join(args.proto_root, "air", "v1", "*.proto")))
    rpc = [os.path.join(args.googleapis, "google", "rpc", n)
           for n in ("status.proto", "error_details.proto")]
    for files, root in ((air, args.proto_root), (rpc, args.googleapis)):
        rc = protoc.main(["grpc_tools.protoc", f"-I{args.proto_root}", f"-I{args.googleapis}",
                          f"-I{wkt}", f"--python_out={args.out}",
                          f"--grpc_python_out={args.out}"] + files)
        if rc != 0:
            sys.exit(f"protoc failed ({rc}) on {root}")
    print(f"generated {len(air) + len(rpc)} protos into {args.out}")


if __name__ == "__main__":
    main()
