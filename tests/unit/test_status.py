"""The single mapping from engine errors to gRPC status codes."""

import grpc
import pytest
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from ledger.api.auth import PermissionDenied, Unauthenticated
from ledger.api.status import NotFound, Overloaded, cancelled_status, status_for
from ledger.core.errors import ChainBroken, ConcurrencyExhausted, InvalidArgument, NotATestStore


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidArgument("amount", "must be positive"), grpc.StatusCode.INVALID_ARGUMENT),
        (Unauthenticated("no token"), grpc.StatusCode.UNAUTHENTICATED),
        (PermissionDenied("not yours"), grpc.StatusCode.PERMISSION_DENIED),
        (Overloaded("queue full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
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
    assert status_for(error)[0] is code


def test_invalid_argument_names_the_field():
    """The client sees the field and the reason."""
    assert (
        status_for(InvalidArgument("amount", "must be positive"))[1] == "amount: must be positive"
    )


@pytest.mark.parametrize(
    "error",
    [KeyError("secret"), ChainBroken("wallet 1 v3"), OperationalError("host=db1 password=x")],
)
def test_internal_and_store_errors_leak_nothing(error):
    """Bugs and store faults reach the client without their internal details."""
    message = status_for(error)[1]
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
