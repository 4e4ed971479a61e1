"""Finds and imports the Python code generated from proto/air/v1.

The generated modules are never committed. They come from one of:
  * the build tree: CMake target `air_python_stubs` runs protoc with Debian's
    grpc_python_plugin into <build>/clients/python/gen (for Debian's
    python3-grpcio);
  * `gen_stubs.py`, which runs `python3 -m grpc_tools.protoc` (for PyPI's
    grpcio + grpcio-tools) into a directory of your choice.
Point at the directory with `load(path)`, the AIR_PYTHON_STUBS environment
variable, or put it on sys.path yourself.
"""
import importlib
import os
import sys
import types

_MODULES = {
    "action_pb2": "air.v1.action_pb2",
    "investigation_pb2": "air.v1.investigation_pb2",
    "event_pb2": "air.v1.event_pb2",
    "error_reason_pb2": "air.v1.error_reason_pb2",
    "action_service_pb2": "air.v1.action_service_pb2",
    "action_service_pb2_grpc": "air.v1.action_service_pb2_grpc",
    "investigation_service_pb2": "air.v1.investigation_service_pb2",
    "investigation_service_pb2_grpc": "air.v1.investigation_service_pb2_grpc",
    "status_pb2": "google.rpc.status_pb2",
    "error_details_pb2": "google.rpc.error_details_pb2",
}

_loaded = None


def _default_dirs():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", "..", ".."))
    return [os.path.join(repo, "build", "clients", "python", "gen")]


def load(stubs_dir=None):
    """Imports the generated modules once and returns them as a namespace.

    Raises ImportError naming the places it looked if they are missing.
    """
    global _loaded
    if _loaded is not None:
        return _loaded
    candidates = [stubs_dir, os.environ.get("AIR_PYTHON_STUBS")]
    candidates = [c for c in candidates if c]
    if not candidates:
        candidates = [d for d in _default_dirs() if os.path.isdir(d)]
    for d in reversed(candidates):
        if not os.path.isdir(os.path.join(d, "air", "v1")):
            raise ImportError(f"no generated air/v1 code under {d}: build the "
                              "air_python_stubs target or run gen_stubs.py")
        if d not in sys.path:
            sys.path.insert(0, d)
    try:
        mods = {k: importlib.import_module(v) for k, v in _MODULES.items()}
    except ImportError as e:
        raise ImportError(f"{e}; looked in {candidates or 'sys.path'} (build the "
                          "air_python_stubs target or run gen_stubs.py, then pass "
                          "--stubs or set AIR_PYTHON_STUBS)") from e
    _loaded = types.SimpleNamespace(**mods)
    return _loaded
