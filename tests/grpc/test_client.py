"""The Python client's own surface: every failure is one of its typed errors with the gRPC
error chained, resends follow the server's RetryInfo, and every answer is a plain frozen
dataclass, never a protobuf message. Against a real `ledger serve`, and against a tiny
in-process gRPC server where a status must be provoked on demand."""

import asyncio
import dataclasses
import itertools
import time

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ledger.client import (
    AccountBalance,
    AsyncLedgerClient,
    Batch,
    InternalError,
    InvalidRequest,
    LedgerClient,
    NotFound,
    Overloaded,
    PermissionDenied,
    StoredEvent,
    Transaction,
    TransactionPage,
    TrialBalance,
    Unauthenticated,
    WalletBalance,
)
from ledger.core import limits
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow
RETRY_DELAY_S = 0.3


def _deposit(client, key: str, amount: str = "5", player: str = "typed-p1"):
    return client.deposit(
        idempotency_key=key,
        player_id=player,
        currency="EUR",
        amount=amount,
        rail="psp",
        rail_id="stripe",
    )


def _assert_plain(value) -> None:
    """No protobuf message anywhere inside a result, however deeply nested."""
    assert not isinstance(value, Message), type(value)
    if dataclasses.is_dataclass(value):
        assert type(value).__dataclass_params__.frozen, type(value)
        for field in dataclasses.fields(value):
            _assert_plain(getattr(value, field.name))
    elif isinstance(value, tuple | list):
        for item in value:
            _assert_plain(item)


def test_a_malformed_request_is_invalid_request_with_its_field(server):
    """INVALID_ARGUMENT becomes InvalidRequest with the BadRequest's field, sent once."""
    with pytest.raises(InvalidRequest) as caught:
        _deposit(server.client("payments"), "typed-bad", amount="1e3")
    error = caught.value
    assert (error.field, error.status, error.attempts) == ("amount", "INVALID_ARGUMENT", 1)
    assert error.message == f"amount: {error.reason}"
    assert isinstance(error.__cause__, grpc.RpcError)


def test_each_refusal_status_raises_its_own_class(server):
    """UNAUTHENTICATED, PERMISSION_DENIED and NOT_FOUND each have a class of their own."""
    with pytest.raises(Unauthenticated):
        LedgerClient(server.target, "not-a-token").get_trial_balance()
    with pytest.raises(PermissionDenied):
        server.client("hub88").get_trial_balance()
    with pytest.raises(NotFound):
        server.client().get_transaction(idempotency_key="typed-never-sent")


def test_a_batch_over_its_bound_is_overloaded_without_a_delay_and_not_resent(server):
    """RESOURCE_EXHAUSTED without RetryInfo is a fixed bound: raised at once, no delay."""
    batch = Batch()
    for n in range(limits.batch_size_max + 1):
        batch.forfeit_bonus(idempotency_key=f"typed-f{n}", player_id="typed-p2", currency="EUR")
    with pytest.raises(Overloaded) as caught:
        server.client().submit_batch(batch)
    assert (caught.value.retry_delay_s, caught.value.attempts) == (None, 1)


def test_every_query_answers_plain_typed_results(server):
    """Balances, transactions, statements, views and events are frozen dataclasses."""
    client, auditor = server.client(), server.client("auditor")
    batch = Batch()
    assert (
        batch.deposit(
            idempotency_key="typed-d1",
            player_id="typed-p3",
            currency="EUR",
            amount="2.5",
            rail="psp",
            rail_id="stripe",
        )
        == 0
    )
    [reply] = client.submit_batch(batch)
    answers = {
        WalletBalance: client.get_balance(player_id="typed-p3", currency="EUR"),
        Transaction: client.get_transaction(idempotency_key="typed-d1"),
        TransactionPage: client.list_transactions(player_id="typed-p3", currency="EUR"),
        AccountBalance: auditor.get_account_balance(account="player:typed-p3:cash:EUR"),
        TrialBalance: auditor.get_trial_balance(),
    }
    for kind, answer in answers.items():
        assert isinstance(answer, kind)
        _assert_plain(answer)
    balances, version = answers[WalletBalance]
    assert (reply.outcome, balances.cash, version) == ("OK", "2.5", 2)
    assert answers[Transaction].recorded_at.tzinfo is not None
    written = next(p for p, head in enumerate(auditor.get_log_heads()) if head)
    with auditor.subscribe_events(after_position=0, partition=written) as events:
        first = next(events)
    assert isinstance(first, StoredEvent) and isinstance(first.payload, bytes)


def test_the_async_client_raises_and_answers_the_same_types(server):
    """AsyncLedgerClient shares the errors, the results and a typed event stream."""

    async def run():
        async with AsyncLedgerClient(server.target, server.tokens["auditor"]) as auditor:
            with pytest.raises(InvalidRequest) as caught:
                await auditor.get_account_balance(account="nonsense")
            trial = await auditor.get_trial_balance()
            heads = await auditor.get_log_heads()
            written = next(p for p, head in enumerate(heads) if head)
            async for event in auditor.subscribe_events(after_position=0, partition=written):
                return caught.value.field, trial, event

    field, trial, event = asyncio.run(run())
    assert (field, type(trial), type(event)) == ("account", TrialBalance, StoredEvent)


class Refuses(pb_grpc.LedgerServiceServicer):
    """Answers the first `refusal_count` deposits with a status and optional RetryInfo."""

    def __init__(self, code: grpc.StatusCode, refusal_count: int, delay_s: float | None):
        self.code, self.refusal_count, self.delay_s = code, refusal_count, delay_s
        self.arrivals: list[float] = []

    def Deposit(self, request, context):
        self.arrivals.append(time.monotonic())
        if len(self.arrivals) <= self.refusal_count:
            status = status_pb2.Status(code=self.code.value[0], message="refused on purpose")
            if self.delay_s is not None:
                delay = Duration()
                delay.FromNanoseconds(int(self.delay_s * 1e9))
                status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
            context.abort_with_status(rpc_status.to_status(status))
        return pb.CommandResponse(outcome=pb.OUTCOME_OK, journal_id="journal-1")


@pytest.mark.parametrize("code", [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE])
def test_a_refusal_with_retry_info_is_resent_no_sooner_than_its_delay(fake_engine, code):
    """Shed load and unavailability are resent with the same key after RetryInfo's delay."""
    servicer = Refuses(code, refusal_count=2, delay_s=RETRY_DELAY_S)
    with LedgerClient(fake_engine(servicer), "token") as client:
        assert _deposit(client, "typed-r1").outcome == "OK"
    gaps = [later - earlier for earlier, later in itertools.pairwise(servicer.arrivals)]
    assert len(gaps) == 2 and min(gaps) >= RETRY_DELAY_S


def test_overload_that_outlasts_the_attempts_is_overloaded_with_its_delay(fake_engine):
    """After retry_count_max attempts the shed call raises Overloaded carrying the delay."""
    servicer = Refuses(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal_count=9, delay_s=0.01)
    with (
        LedgerClient(fake_engine(servicer), "token", retry_count_max=3) as client,
        pytest.raises(Overloaded) as caught,
    ):
        _deposit(client, "typed-r2")
    assert (caught.value.attempts, caught.value.retry_delay_s) == (3, 0.01)
    assert len(servicer.arrivals) == 3


def test_an_internal_error_is_raised_at_once(fake_engine):
    """INTERNAL is a bug: InternalError, never resent."""
    servicer = Refuses(grpc.StatusCode.INTERNAL, refusal_count=9, delay_s=None)
    with LedgerClient(fake_engine(servicer), "token") as client, pytest.raises(InternalError):
        _deposit(client, "typed-r3")
    assert len(servicer.arrivals) == 1
