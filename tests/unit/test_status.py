"""The single mapping from engine errors to gRPC status codes."""

import grpc
import pytest
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ledger.api.auth import PermissionDenied, Unauthenticated
from ledger.api.status import (
    BoundExceeded,
    NotFound,
    Overloaded,
    Unavailable,
    cancelled_status,
    status_for,
)
from ledger.core import limits
from ledger.core.errors import ChainBroken, ConcurrencyExhausted, InvalidArgument, NotATestStore


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidArgument("amount", "must be positive"), grpc.StatusCode.INVALID_ARGUMENT),
        (Unauthenticated("no token"), grpc.StatusCode.UNAUTHENTICATED),
        (PermissionDenied("not yours"), grpc.StatusCode.PERMISSION_DENIED),
        (Overloaded("queue full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (BoundExceeded("batch too long"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Unavailable("store unreachable"), grpc.StatusCode.UNAVAILABLE),
        (NotFound("no such key"), grpc.StatusCode.NOT_FOUND),
        (NotATestStore("wall clock"), grpc.StatusCode.UNIMPLEMENTED),
        (ConcurrencyExhausted("gave up"), grpc.StatusCode.UNAVAILABLE),
        (OperationalError("connection refused"), grpc.StatusCode.UNAVAILABLE),
        (InterfaceError("closed"), grpc.StatusCode.UNAVAILABLE),
        (IntegrityError("duplicate key"), grpc.StatusCode.INTERNAL),
        (ChainBroken("previous_hash mismatch"), grpc.StatusCode.INTERNAL),
        (KeyError("secret-internal-detail"), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_error_maps_to_its_status(error, code):
    """Every error family has exactly one status code."""
    assert status_for(error).code is code


def test_invalid_argument_names_the_field():
    """The client sees the field and the reason."""
    assert (
        status_for(InvalidArgument("amount", "must be positive")).message
        == "amount: must be positive"
    )


@pytest.mark.parametrize(
    "error",
    [KeyError("secret"), ChainBroken("wallet 1 v3"), OperationalError("host=db1 password=x")],
)
def test_internal_and_store_errors_leak_nothing(error):
    """Bugs and store faults reach the client without their internal details."""
    message = status_for(error).message
    assert "secret" not in message and "v3" not in message and "password" not in message


@pytest.mark.parametrize(
    ("time_remaining", "code"),
    [
        (0.0, grpc.StatusCode.DEADLINE_EXCEEDED),
        (0.02, grpc.StatusCode.DEADLINE_EXCEEDED),  # the client's timer fired first
        (None, grpc.StatusCode.CANCELLED),
        (4.5, grpc.StatusCode.CANCELLED),
    ],
)
def test_a_cancelled_call_is_deadline_exceeded_only_when_its_deadline_passed(time_remaining, code):
    """gRPC cancels the handler for both; the deadline's remaining time tells them apart."""
    assert cancelled_status(time_remaining) is code


def _details(error: BaseException) -> status_pb2.Status:
    """The google.rpc.Status the trailer of error's refusal carries, decoded."""
    [(key, value)] = status_for(error).trailing_metadata()
    assert key == rpc_status.GRPC_DETAILS_METADATA_KEY
    return status_pb2.Status.FromString(value)


def test_invalid_argument_carries_a_bad_request_field_violation():
    """INVALID_ARGUMENT's details name the field path and the reason apart from the text."""
    status = _details(InvalidArgument("commands[3].bet.amount", "must be positive"))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == "commands[3].bet.amount: must be positive"
    [detail] = status.details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    [violation] = bad_request.field_violations
    assert (violation.field, violation.description) == (
        "commands[3].bet.amount",
        "must be positive",
    )


@pytest.mark.parametrize(
    ("error", "delay_ms"),
    [
        (Overloaded("queue full"), limits.overload_retry_delay_ms),
        (ConcurrencyExhausted("gave up"), limits.contention_retry_delay_ms),
        (Unavailable("store unreachable"), limits.store_retry_delay_ms),
        (OperationalError("connection refused"), limits.store_retry_delay_ms),
    ],
)
def test_retryable_refusals_carry_their_retry_delay(error, delay_ms):
    """Overload and unavailability tell the client how long to wait before resending."""
    [detail] = _details(error).details
    retry = error_details_pb2.RetryInfo()
    assert detail.Unpack(retry)
    assert retry.retry_delay.ToMilliseconds() == delay_ms


@pytest.mark.parametrize(
    "error",
    [BoundExceeded("batch too long"), PermissionDenied("not yours"), KeyError("bug")],
)
def test_refusals_a_resend_cannot_cure_carry_no_retry_info(error):
    """A fixed bound, a permission or a bug has no RetryInfo: resending never helps."""
    status = _details(error)
    assert status.message == status_for(error).message
    assert not status.details
