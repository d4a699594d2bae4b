"""Refusals carry a google.rpc.Status in their trailers besides the text, read back here
with grpcio-status from a real `ledger serve`, as any gRPC language's client would."""

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ledger.core import limits
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc
from tests.grpc.conftest import start_server, stop_server

pytestmark = pytest.mark.slow
TIMEOUT_S = 10


def _refusal(call) -> tuple[grpc.RpcError, status_pb2.Status]:
    """The error a call raises and the google.rpc.Status its trailer holds."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    status = rpc_status.from_call(caught.value)  # also checks code and message agree
    assert status is not None
    return caught.value, status


def _unpacked(status: status_pb2.Status, message_type):
    [detail] = status.details
    message = message_type()
    assert detail.Unpack(message), detail.type_url
    return message


def _metadata(server, name: str = "admin") -> tuple:
    return (("authorization", f"Bearer {server.tokens[name]}"),)


def _bet(key: str, amount: str) -> pb.Command:
    return pb.Command(
        bet=pb.BetRequest(
            idempotency_key=key,
            provider="hub88",
            player_id="d1",
            currency="EUR",
            amount=amount,
            round_id="r",
        )
    )


def test_invalid_argument_names_the_batch_field_in_a_bad_request(server, channel):
    """A malformed batch item is INVALID_ARGUMENT whose BadRequest names its field path."""
    stub = pb_grpc.LedgerServiceStub(channel)
    request = pb.SubmitBatchRequest(commands=[_bet("details-1", "1"), _bet("details-2", "1e3")])
    error, status = _refusal(
        lambda: stub.SubmitBatch(request, metadata=_metadata(server), timeout=TIMEOUT_S)
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    [violation] = _unpacked(status, error_details_pb2.BadRequest).field_violations
    assert violation.field == "commands[1].bet.amount"
    assert error.details() == f"{violation.field}: {violation.description}"


def test_a_refused_subscription_carries_its_field_violation(server, channel):
    """SubscribeEvents refuses through the same mapping: its BadRequest names after_position."""
    stub = pb_grpc.LedgerServiceStub(channel)
    request = pb.SubscribeEventsRequest(after_position=limits.event_position_max)
    stream = stub.SubscribeEvents(request, metadata=_metadata(server, "auditor"), timeout=TIMEOUT_S)
    error, status = _refusal(lambda: next(stream))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    [violation] = _unpacked(status, error_details_pb2.BadRequest).field_violations
    assert violation.field == "after_position"


def test_a_batch_over_its_bound_is_resource_exhausted_without_retry_info(server, channel):
    """A request over a fixed bound has no RetryInfo: resending it unchanged cannot help."""
    stub = pb_grpc.LedgerServiceStub(channel)
    commands = [_bet(f"bound-{n}", "1") for n in range(limits.batch_size_max + 1)]
    error, status = _refusal(
        lambda: stub.SubmitBatch(
            pb.SubmitBatchRequest(commands=commands), metadata=_metadata(server), timeout=TIMEOUT_S
        )
    )
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not status.details


def test_permission_denied_carries_a_status_without_details(server, channel):
    """Every refusal has the trailer, so a client reads all of them one way."""
    stub = pb_grpc.LedgerServiceStub(channel)
    request = pb.GetTrialBalanceRequest()
    error, status = _refusal(
        lambda: stub.GetTrialBalance(
            request, metadata=_metadata(server, "hub88"), timeout=TIMEOUT_S
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert status.message == error.details() and not status.details


def test_unavailable_carries_the_retry_delay(tmp_path):
    """A view read on a server keeping no views is UNAVAILABLE with RetryInfo's delay."""
    server = start_server(f"sqlite:///{tmp_path}/ledger.sqlite3", tmp_path, "--no-projections")
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = pb_grpc.LedgerServiceStub(channel)
            error, status = _refusal(
                lambda: stub.GetTrialBalance(
                    pb.GetTrialBalanceRequest(), metadata=_metadata(server), timeout=TIMEOUT_S
                )
            )
    finally:
        assert stop_server(server) == 0
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    retry = _unpacked(status, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToMilliseconds() == limits.store_retry_delay_ms
