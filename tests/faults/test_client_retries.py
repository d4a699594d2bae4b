"""The client library resends a call a draining server answered with CANCELLED, as it does
UNAVAILABLE: the command may have been stored or not, and its key makes the resend safe.

A tiny real gRPC server in this process stands in for the engine, so the status on the wire
is the one a draining `ledger serve` sends, and nothing of the client is mocked."""

import asyncio

import grpc
import pytest

from ledger.client import AsyncLedgerClient, LedgerClient, Unavailable
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc


class CancelsFirst(pb_grpc.LedgerServiceServicer):
    """Answers the first `cancelled_count` deposits CANCELLED, then OK; keeps every key."""

    def __init__(self, cancelled_count: int) -> None:
        self.cancelled_count = cancelled_count
        self.keys: list[str] = []

    def Deposit(self, request, context):
        self.keys.append(request.idempotency_key)
        if len(self.keys) <= self.cancelled_count:
            context.abort(grpc.StatusCode.CANCELLED, "the server is draining")
        return pb.CommandResponse(outcome=pb.OUTCOME_OK, journal_id="journal-1")


def _deposit(client):
    return client.deposit(
        idempotency_key="d-1",
        player_id="p1",
        currency="EUR",
        amount="1",
        rail="psp",
        rail_id="stripe",
    )


def _deposit_with(client_class, target: str, retry_count_max: int = 5):
    """One deposit through the blocking or the asyncio client."""
    if client_class is LedgerClient:
        with LedgerClient(target, "token", retry_count_max=retry_count_max) as client:
            return _deposit(client)

    async def run():
        async with AsyncLedgerClient(target, "token", retry_count_max=retry_count_max) as client:
            return await _deposit(client)

    return asyncio.run(run())


@pytest.mark.parametrize("client_class", [LedgerClient, AsyncLedgerClient])
def test_cancelled_is_resent_with_the_same_key(fake_engine, client_class):
    """A call answered CANCELLED is resent, same key and body, until the server answers."""
    servicer = CancelsFirst(cancelled_count=2)
    reply = _deposit_with(client_class, fake_engine(servicer))
    assert (reply.outcome, reply.journal_id) == ("OK", "journal-1")
    assert servicer.keys == ["d-1", "d-1", "d-1"]


@pytest.mark.parametrize("client_class", [LedgerClient, AsyncLedgerClient])
def test_cancelled_is_resent_only_up_to_the_retry_bound(fake_engine, client_class):
    """A server that keeps cancelling gets retry_count_max attempts, then Unavailable is raised."""
    servicer = CancelsFirst(cancelled_count=100)
    with pytest.raises(Unavailable) as caught:
        _deposit_with(client_class, fake_engine(servicer), retry_count_max=3)
    assert (caught.value.status, caught.value.attempts) == ("CANCELLED", 3)
    assert servicer.keys == ["d-1"] * 3
