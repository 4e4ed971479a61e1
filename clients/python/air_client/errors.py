"""Server errors as values: code, ErrorInfo reason and field violations.

aird puts a google.rpc.Status in the `grpc-status-details-bin` trailer of every
error. Its details hold a google.rpc.ErrorInfo (stable UPPER_SNAKE `reason`,
domain "air.dev", metadata such as "state") and, for bad fields, a
google.rpc.BadRequest.
"""
import grpc

from air_client import stubs

_DETAILS_KEY = "grpc-status-details-bin"
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED})


class AirError(Exception):
    """A failed call. `code` is a grpc.StatusCode; `reason` is "" only if the
    server sent no ErrorInfo (for example when the connection failed)."""

    def __init__(self, code, message, reason="", domain="", metadata=None,
                 field_violations=()):
        super().__init__(f"{code.name} {reason or '-'}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.field_violations = list(field_violations)  # [(field, description)]

    @property
    def retryable(self):
        return self.code in RETRYABLE

    def is_(self, code, reason=None):
        """True for `code` and, if given, `reason`: a generated air.v1.ErrorReason
        constant (stubs.load().error_reason_pb2.ACTION_NOT_PENDING) or its name."""
        if reason is None:
            return self.code == code
        if not isinstance(reason, str):
            reason = stubs.load().error_reason_pb2.ErrorReason.Name(reason)
        return self.code == code and self.reason == reason

    @classmethod
    def from_rpc_error(cls, error):
        """Builds an AirError from a grpc.RpcError (a failed call or stream)."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = error.details() if hasattr(error, "details") else str(error)
        reason, domain, metadata, violations = "", "", {}, []
        trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
        for key, value in trailers or ():
            if key != _DETAILS_KEY:
                continue
            pb = stubs.load()
            status = pb.status_pb2.Status.FromString(value)
            for any_msg in status.details:
                info = pb.error_details_pb2.ErrorInfo()
                bad = pb.error_details_pb2.BadRequest()
                if any_msg.Unpack(info):
                    reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
                elif any_msg.Unpack(bad):
                    violations += [(v.field, v.description) for v in bad.field_violations]
        return cls(code, message or "", reason, domain, metadata, violations)
