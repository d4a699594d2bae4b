"""The one place where engine errors become gRPC status codes.

Business outcomes never get here: they are values in the response. What does: malformed
input (INVALID_ARGUMENT, naming the field), authentication and permission failures, an
unavailable store or exhausted concurrency retries (UNAVAILABLE: the client may resend,
every command being idempotent), overload (RESOURCE_EXHAUSTED), and bugs (INTERNAL, with
nothing of the internals in the message; the details go to the log). A call the client
cancelled, or whose deadline passed, is recorded as CANCELLED or DEADLINE_EXCEEDED, the
status the client sees.
"""

import grpc
from eventsourcing.persistence import IntegrityError, PersistenceError

from ledger.api.auth import PermissionDenied, Unauthenticated
from ledger.core import limits
from ledger.core.errors import ConcurrencyExhausted, InvalidArgument, NotATestStore


class Overloaded(Exception):
    """A bound was exceeded (batch size, queue length): the caller should back off."""


class NotFound(Exception):
    """A query named something that does not exist."""


class Unavailable(Exception):
    """A service this server cannot offer right now (projections off, the store unreachable)."""


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-safe message for an error raised while serving a call."""
    if isinstance(error, InvalidArgument):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    if isinstance(error, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED, str(error)
    if isinstance(error, PermissionDenied):
        return grpc.StatusCode.PERMISSION_DENIED, str(error)
    if isinstance(error, Overloaded):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(error)
    if isinstance(error, NotFound):
        return grpc.StatusCode.NOT_FOUND, str(error)
    if isinstance(error, Unavailable):
        return grpc.StatusCode.UNAVAILABLE, str(error)
    if isinstance(error, NotATestStore):  # a method this server does not offer, by design
        return grpc.StatusCode.UNIMPLEMENTED, str(error)
    if isinstance(error, ConcurrencyExhausted):
        return grpc.StatusCode.UNAVAILABLE, "the wallet is contended; resend the command"
    # A conflict that survived the retries is ConcurrencyExhausted above; a raw integrity
    # error here is a bug, like a broken chain or an undecodable event: INTERNAL.
    if isinstance(error, PersistenceError) and not isinstance(error, IntegrityError):
        return grpc.StatusCode.UNAVAILABLE, "the store is unavailable; resend the command"
    return grpc.StatusCode.INTERNAL, "internal error"


def cancelled_status(time_remaining: float | None) -> grpc.StatusCode:
    """The status of a call gRPC cancelled, from the time its deadline had left (None: none).

    The client's own timer fires at its deadline and cancels the call, which reaches the
    server before the server's copy of the deadline (counted from the call's arrival) runs
    out: a cancellation with less than the slack left is the deadline's."""
    slack_s = limits.deadline_slack_ms / 1000
    if time_remaining is not None and time_remaining <= slack_s:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED
