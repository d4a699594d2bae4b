"""Load shedding at the servicer: a full group-commit queue refuses a call before any of its
commands is converted or validated, so shedding costs the server almost nothing."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from ledger.api.auth import Authenticator, ClientConfig, token_sha256
from ledger.api.group_commit import GroupCommitter
from ledger.api.servicer import LedgerServicer
from ledger.api.telemetry import Telemetry
from ledger.core import limits
from ledger.service.application import Ledger
from ledger.v1 import ledger_pb2 as pb
from tests.builders import EUR, deposit

TOKEN = "token-for-the-overload-test"
WAIT_S = 30


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata=()) -> None:
        super().__init__(code, details)
        self.code = code
        self.trailing_metadata = trailing_metadata


class CallContext:
    """What the servicer uses of a grpc.aio call context: its metadata and abort."""

    def invocation_metadata(self):
        return (("authorization", f"Bearer {TOKEN}"),)

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata=()):
        raise Aborted(code, details, trailing_metadata)


def _servicer(ledger: Ledger, executor: ThreadPoolExecutor) -> LedgerServicer:
    committer = GroupCommitter(
        ledger, executor, enabled=True, window_ms=0, group_size_max=2, queue_length_max=2
    )
    clients = [ClientConfig(name="admin", role="admin", token_sha256=token_sha256(TOKEN))]
    return LedgerServicer(ledger, committer, Authenticator(clients), Telemetry(), executor)


def _invalid_bet_request() -> pb.BetRequest:
    return pb.BetRequest(
        idempotency_key="b1",
        provider="hub88",
        player_id="p1",
        currency="EUR",
        amount="not a number",
        round_id="r1",
    )


def _invalid_bet() -> pb.Command:
    return pb.Command(bet=_invalid_bet_request())


async def _refusal(call) -> Aborted:
    with pytest.raises(Aborted) as refused:
        await call
    return refused.value


async def _with_full_queue(servicer: LedgerServicer, store_busy: threading.Event, calls):
    """Runs calls while the store thread is busy and the queue full, then lets it go; returns
    the calls' refusals and the queued commands' results."""
    queued = asyncio.ensure_future(
        servicer.committer.submit([deposit("d1", EUR), deposit("d2", EUR)])
    )
    await asyncio.sleep(0.05)  # the first group is handed to the busy store thread
    refill = asyncio.ensure_future(
        servicer.committer.submit([deposit("d3", EUR), deposit("d4", EUR)])
    )
    await asyncio.sleep(0)
    try:
        refusals = [await _refusal(call) for call in calls]
    finally:
        store_busy.set()
    return refusals, await queued + await refill


@pytest.mark.parametrize("kind", ["batch", "unary"])
def test_a_full_queue_refuses_a_call_before_converting_it(tmp_path, kind):
    """With the queue full, an invalid call is RESOURCE_EXHAUSTED with a RetryInfo delay."""
    store_busy, executor = threading.Event(), ThreadPoolExecutor(1)
    with Ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        servicer = _servicer(ledger, executor)
        executor.submit(store_busy.wait, WAIT_S)  # the store thread is busy: calls queue
        if kind == "batch":
            call = servicer.SubmitBatch(
                pb.SubmitBatchRequest(commands=[_invalid_bet()]), CallContext()
            )
        else:
            call = servicer.Bet(_invalid_bet_request(), CallContext())
        refusals, results = asyncio.run(_with_full_queue(servicer, store_busy, [call]))
        executor.shutdown(wait=True)
    assert [refusal.code for refusal in refusals] == [grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert [result.outcome.value for result in results] == ["OK"] * 4
    assert _retry_delay_ms(refusals[0]) == limits.overload_retry_delay_ms


def _retry_delay_ms(refusal: Aborted) -> int:
    """The RetryInfo delay in a refusal's google.rpc.Status trailer."""
    [(_, value)] = refusal.trailing_metadata
    [detail] = status_pb2.Status.FromString(value).details
    retry = error_details_pb2.RetryInfo()
    assert detail.Unpack(retry)
    return retry.retry_delay.ToMilliseconds()


def test_with_room_the_same_batch_is_refused_for_its_field(tmp_path):
    """The control: with the queue empty the invalid batch is refused naming its field."""
    executor = ThreadPoolExecutor(1)
    with Ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        servicer = _servicer(ledger, executor)
        request = pb.SubmitBatchRequest(commands=[_invalid_bet()])
        error = asyncio.run(_refusal(servicer.SubmitBatch(request, CallContext())))
        executor.shutdown(wait=True)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.args[1].startswith("commands[0].bet.amount")
