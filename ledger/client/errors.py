"""The errors `ledger.client` raises, one class per kind of failure a caller handles
differently, translated from gRPC once (`translated`), with the gRPC error chained as the
cause. Business outcomes are never errors: they are the `outcome` of a reply.

- `InvalidRequest`: INVALID_ARGUMENT, with the field path and reason from the server's
  `google.rpc.BadRequest`. Resending the same request is refused again.
- `Unauthenticated`, `PermissionDenied`, `NotFound`: never worth resending unchanged.
- `Unavailable`: no answer still after the client's resends (UNAVAILABLE, DEADLINE_EXCEEDED,
  CANCELLED). The command may or may not be stored; resending it later with the same
  idempotency key is safe and tells which.
- `Overloaded`: RESOURCE_EXHAUSTED. With `retry_delay_s` set, the server shed load and the
  client resent until its attempts ran out; with None, the request is over a fixed bound (too
  many commands in a batch, too large a message) or over the server's concurrent-call cap.
- `InternalError`: INTERNAL, UNKNOWN or DATA_LOSS: a bug, whose details are in the server's log.
- `LedgerCallError` itself for any other status (UNIMPLEMENTED from an older server, ...).

This module knows gRPC and google.rpc, nothing of the ledger's messages.
"""

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


class LedgerCallError(Exception):
    """A call the engine did not answer with an outcome.

    Args:
        status: the gRPC status code's name, e.g. "PERMISSION_DENIED".
        message: the server's message (or gRPC's, for a transport failure).
        attempts: how many times the client sent the call.
    """

    def __init__(self, status: str, message: str, *, attempts: int = 1) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.attempts = attempts


class InvalidRequest(LedgerCallError):
    """The request is malformed: `field` is its path (`commands[1].bet.amount`), `reason` why."""

    def __init__(
        self, status: str, message: str, *, field: str, reason: str, attempts: int = 1
    ) -> None:
        super().__init__(status, message, attempts=attempts)
        self.field = field
        self.reason = reason


class Unauthenticated(LedgerCallError):
    """The token is missing or not one the server knows."""


class PermissionDenied(LedgerCallError):
    """The token's role (or its provider binding) does not allow this call."""


class NotFound(LedgerCallError):
    """A query named something the engine does not hold (GetTransaction's key)."""


class Unavailable(LedgerCallError):
    """No answer after every attempt: resend later with the same idempotency key."""


class Overloaded(LedgerCallError):
    """RESOURCE_EXHAUSTED: `retry_delay_s` is the server's RetryInfo, None for a fixed bound."""

    def __init__(
        self, status: str, message: str, *, retry_delay_s: float | None, attempts: int = 1
    ) -> None:
        super().__init__(status, message, attempts=attempts)
        self.retry_delay_s = retry_delay_s


class InternalError(LedgerCallError):
    """The server failed on a bug; its log has the details, the client gets none."""


_CLASS_FOR_CODE: dict[grpc.StatusCode, type[LedgerCallError]] = {
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.CANCELLED: Unavailable,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
}


def status_code(error: grpc.RpcError) -> grpc.StatusCode:
    """The error's status code; UNKNOWN for an RpcError that is not a finished call."""
    code = getattr(error, "code", None)
    return code() if callable(code) else grpc.StatusCode.UNKNOWN


def translated(error: grpc.RpcError, attempts: int) -> LedgerCallError:
    """The client's own error for a failed call, its last attempt having raised error."""
    code = status_code(error)
    details = getattr(error, "details", None)
    message = (details() if callable(details) else None) or str(error)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        field, reason = _violation(error, message)
        return InvalidRequest(code.name, message, field=field, reason=reason, attempts=attempts)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        delay = retry_delay_s(error)
        return Overloaded(code.name, message, retry_delay_s=delay, attempts=attempts)
    return _CLASS_FOR_CODE.get(code, LedgerCallError)(code.name, message, attempts=attempts)


def retry_delay_s(error: grpc.RpcError) -> float | None:
    """The RetryInfo delay the server attached to a refusal, in seconds; None without one."""
    for detail in _details(error):
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(retry):
            return retry.retry_delay.ToNanoseconds() / 1e9
    return None


def _violation(error: grpc.RpcError, message: str) -> tuple[str, str]:
    """(field, reason) from the BadRequest detail, else from the text `field: reason`."""
    for detail in _details(error):
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request) and bad_request.field_violations:
            violation = bad_request.field_violations[0]
            return violation.field, violation.description
    field, separator, reason = message.partition(": ")
    return (field, reason) if separator else ("", message)


def _details(error: grpc.RpcError) -> list:
    """The google.rpc.Status details (packed Any messages) of the error's trailer, if any."""
    trailing = getattr(error, "trailing_metadata", None)
    for key, value in (trailing() if callable(trailing) else None) or ():
        if key != rpc_status.GRPC_DETAILS_METADATA_KEY:
            continue
        try:
            return list(status_pb2.Status.FromString(value).details)
        except DecodeError:  # not from a ledger server: the text is all there is
            return []
    return []
