"""A small client for aird's air.v1 API.

    from air_client import connect, AirClient, AirError, load_stubs
    load_stubs("build/clients/python/gen")      # or AIR_PYTHON_STUBS
    client = AirClient(connect("127.0.0.1:50051"), token=None, timeout=10)
    try:
        client.get_action("act-1")
    except AirError as e:
        print(e.code.name, e.reason, e.field_violations)
"""
from air_client.stubs import load as load_stubs
from air_client.errors import AirError
from air_client.channel import AirClient, Backoff, connect, retry_idempotent

__all__ = ["AirClient", "AirError", "Backoff", "connect", "load_stubs", "retry_idempotent"]
