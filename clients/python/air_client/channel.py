"""Connecting to aird: channel, credentials, per-call deadline and token."""
import time

import grpc

from air_client import stubs
from air_client.errors import AirError


def connect(target, *, tls=False, ca_file=None, cert_file=None, key_file=None,
            server_name=None, max_reconnect_backoff=10.0, bdp_probe=True):
    """Returns a channel to `target` (HOST:PORT).

    Plaintext unless `tls` (or any file) is given. `ca_file` verifies the
    server (default: the system roots); `cert_file`/`key_file` present a client
    certificate for mutual TLS; `server_name` overrides the name checked
    against the server's certificate. `max_reconnect_backoff` (seconds) caps
    how long the channel waits between connection attempts once the server
    went away (gRPC's default grows to 120 s, and calls fail fast meanwhile).
    `bdp_probe=False` turns off HTTP/2 BDP probing, which on a watch stream
    costs the server a PING per event burst (see clients/README.md); keep it
    for channels that page through large lists over long links.
    """
    options = [("grpc.initial_reconnect_backoff_ms", 100),
               ("grpc.max_reconnect_backoff_ms", int(max_reconnect_backoff * 1000))]
    if not bdp_probe:
        options.append(("grpc.http2.bdp_probe", 0))
    if not (tls or ca_file or cert_file or key_file):
        return grpc.insecure_channel(target, options=options)

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(
        root_certificates=read(ca_file) if ca_file else None,
        private_key=read(key_file) if key_file else None,
        certificate_chain=read(cert_file) if cert_file else None)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(target, creds, options=options)


class AirClient:
    """Typed calls with a deadline and the bearer token on each.

    Unary calls raise AirError (never grpc.RpcError). `watch` returns the raw
    streaming call: iterate it, and turn a grpc.RpcError it raises into an
    AirError with AirError.from_rpc_error.
    """

    def __init__(self, channel, *, token=None, timeout=10.0):
        """`channel` is a grpc.Channel, or a function returning a new one
        (then reconnect() can replace a channel that lost its server)."""
        self.pb = stubs.load()
        self._factory = None if isinstance(channel, grpc.Channel) else channel
        self._channel = None
        self._use(channel if self._factory is None else self._factory())
        self.timeout = timeout
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def _use(self, channel):
        self._channel = channel
        self.actions = self.pb.action_service_pb2_grpc.ActionServiceStub(channel)
        self.investigations = (
            self.pb.investigation_service_pb2_grpc.InvestigationServiceStub(channel))

    def reconnect(self):
        """Replaces the channel with a new one from the factory. After the
        server went away, Python's gRPC may wait seconds between connection
        attempts whatever the backoff options say; a new channel connects at
        once."""
        if self._factory is None:
            return
        old = self._channel
        self._use(self._factory())
        old.close()

    def _unary(self, method, request):
        try:
            return method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as e:
            raise AirError.from_rpc_error(e) from None

    def get_action(self, action_id):
        req = self.pb.action_service_pb2.GetActionRequest(id=action_id)
        return self._unary(self.actions.GetAction, req).action

    def get_investigation(self, investigation_id):
        req = self.pb.investigation_service_pb2.GetInvestigationRequest(id=investigation_id)
        return self._unary(self.investigations.GetInvestigation, req).investigation

    def list_actions(self, filter="", page_size=0):
        """Yields every action matching `filter`, page by page."""
        token = ""
        while True:
            req = self.pb.action_service_pb2.ListActionsRequest(
                filter=filter, page_size=page_size, page_token=token)
            resp = self._unary(self.actions.ListActions, req)
            yield from resp.actions
            token = resp.next_page_token
            if not token:
                return

    def decide(self, action_id, approve, *, comment="", request_id="", etag=""):
        """Approves or rejects one action. With a request_id this is
        idempotent, so callers may retry it (see retry_idempotent)."""
        m = self.pb.action_service_pb2
        cls, method = ((m.ApproveActionRequest, self.actions.ApproveAction) if approve
                       else (m.RejectActionRequest, self.actions.RejectAction))
        req = cls(id=action_id, comment=comment, request_id=request_id, etag=etag)
        return self._unary(method, req).action

    def watch(self, *, after_sequence=0, initial_snapshot=False, filter="",
              heartbeat_seconds=30.0):
        """Opens WatchActions with no deadline (it is meant to run for days)."""
        m = self.pb.action_service_pb2
        req = m.WatchActionsRequest(after_sequence=after_sequence,
                                    initial_snapshot=initial_snapshot, filter=filter)
        req.heartbeat_interval.FromMilliseconds(int(heartbeat_seconds * 1000))
        return self.actions.WatchActions(req, metadata=self.metadata)


class Backoff:
    """Exponential backoff with full jitter, reset after a success."""

    def __init__(self, initial=0.1, maximum=30.0):
        import random
        self._random = random.Random()
        self.initial, self.maximum, self.next = initial, maximum, initial

    def reset(self):
        self.next = self.initial

    def sleep(self):
        delay = self._random.uniform(self.next / 2, self.next)
        self.next = min(self.maximum, self.next * 2)
        time.sleep(delay)
        return delay


def retry_idempotent(fn, *, attempts=8, backoff=None):
    """Calls fn() again on retryable errors (UNAVAILABLE, DEADLINE_EXCEEDED,
    RESOURCE_EXHAUSTED). Only for idempotent calls: reads, or decisions that
    carry a request_id."""
    backoff = backoff or Backoff()
    for attempt in range(attempts):
        try:
            return fn()
        except AirError as e:
            if not e.retryable or attempt == attempts - 1:
                raise
            backoff.sleep()
