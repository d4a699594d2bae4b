"""The one place where engine errors become gRPC statuses.

Business outcomes never get here: they are values in the response. What does: malformed
input (INVALID_ARGUMENT, naming the field), authentication and permission failures, an
unavailable store or exhausted concurrency retries (UNAVAILABLE: the client may resend,
every command being idempotent), overload (RESOURCE_EXHAUSTED), a request over a fixed bound
(RESOURCE_EXHAUSTED too, but resending it unchanged never helps), and bugs (INTERNAL, with
nothing of the internals in the message; the details go to the log). A call the client
cancelled, or whose deadline passed, is recorded as CANCELLED or DEADLINE_EXCEEDED, the
status the client sees.

Every refusal carries a `google.rpc.Status` in the `grpc-status-details-bin` trailer, with the
same code and message as the plain status, so clients in any language can read its details
instead of parsing text: a `BadRequest` field violation for INVALID_ARGUMENT, and a
`RetryInfo` delay for the statuses a client should resend after waiting. A
RESOURCE_EXHAUSTED without RetryInfo is a bound of the request itself (`docs/contract.md`).
"""

from dataclasses import dataclass

import grpc
from eventsourcing.persistence import IntegrityError, PersistenceError
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ledger.api.auth import PermissionDenied, Unauthenticated
from ledger.core import limits
from ledger.core.errors import ConcurrencyExhausted, InvalidArgument, NotATestStore


class Overloaded(Exception):
    """The server cannot take the call now (the group-commit queue is full): back off."""


class BoundExceeded(Exception):
    """The request exceeds a fixed bound (commands per batch): resent unchanged, it fails again."""


class NotFound(Exception):
    """A query named something that does not exist."""


class Unavailable(Exception):
    """A service this server cannot offer right now (projections off, the store unreachable)."""


@dataclass(frozen=True)
class RpcStatus:
    """What a failed call ends with: the code, the client-safe message and its details."""

    code: grpc.StatusCode
    message: str
    details: tuple[Message, ...] = ()

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        """The `grpc-status-details-bin` trailer holding this status as a google.rpc.Status."""
        assert self.code is not grpc.StatusCode.OK
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        for detail in self.details:
            status.details.add().Pack(detail)
        return tuple(rpc_status.to_status(status).trailing_metadata)


def status_for(error: BaseException) -> RpcStatus:
    """The status, client-safe message and details for an error raised while serving a call."""
    if isinstance(error, InvalidArgument):
        return RpcStatus(grpc.StatusCode.INVALID_ARGUMENT, str(error), (_bad_request(error),))
    if isinstance(error, Unauthenticated):
        return RpcStatus(grpc.StatusCode.UNAUTHENTICATED, str(error))
    if isinstance(error, PermissionDenied):
        return RpcStatus(grpc.StatusCode.PERMISSION_DENIED, str(error))
    if isinstance(error, Overloaded):
        return _retryable(
            grpc.StatusCode.RESOURCE_EXHAUSTED, str(error), limits.overload_retry_delay_ms
        )
    if isinstance(error, BoundExceeded):
        return RpcStatus(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error))
    if isinstance(error, NotFound):
        return RpcStatus(grpc.StatusCode.NOT_FOUND, str(error))
    if isinstance(error, Unavailable):
        return _retryable(grpc.StatusCode.UNAVAILABLE, str(error), limits.store_retry_delay_ms)
    if isinstance(error, NotATestStore):  # a method this server does not offer, by design
        return RpcStatus(grpc.StatusCode.UNIMPLEMENTED, str(error))
    if isinstance(error, ConcurrencyExhausted):
        return _retryable(
            grpc.StatusCode.UNAVAILABLE,
            "the wallet is contended; resend the command",
            limits.contention_retry_delay_ms,
        )
    # A conflict that survived the retries is ConcurrencyExhausted above; a raw integrity
    # error here is a bug, like a broken chain or an undecodable event: INTERNAL.
    if isinstance(error, PersistenceError) and not isinstance(error, IntegrityError):
        return _retryable(
            grpc.StatusCode.UNAVAILABLE,
            "the store is unavailable; resend the command",
            limits.store_retry_delay_ms,
        )
    return RpcStatus(grpc.StatusCode.INTERNAL, "internal error")


def _bad_request(error: InvalidArgument) -> error_details_pb2.BadRequest:
    """The field path (`commands[3].bet.amount`) and the reason, as google.rpc.BadRequest."""
    violation = error_details_pb2.BadRequest.FieldViolation(
        field=error.field, description=error.reason
    )
    return error_details_pb2.BadRequest(field_violations=[violation])


def _retryable(code: grpc.StatusCode, message: str, delay_ms: int) -> RpcStatus:
    """A status the client should resend with the same key, once delay_ms has passed."""
    assert delay_ms > 0
    delay = Duration(seconds=delay_ms // 1000, nanos=delay_ms % 1000 * 1_000_000)
    return RpcStatus(code, message, (error_details_pb2.RetryInfo(retry_delay=delay),))


def cancelled_status(time_remaining: float | None) -> grpc.StatusCode:
    """The status of a call gRPC cancelled, from the time its deadline had left (None: none).

    The client's own timer fires at its deadline and cancels the call, which reaches the
    server before the server's copy of the deadline (counted from the call's arrival) runs
    out: a cancellation with less than the slack left is the deadline's."""
    slack_s = limits.deadline_slack_ms / 1000
    if time_remaining is not None and time_remaining <= slack_s:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED
