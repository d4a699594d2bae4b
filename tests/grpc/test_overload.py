"""Load shedding at the servicer: a full group-commit queue refuses a call before any of its
commands is converted or validated, so shedding costs the server almost nothing."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from ledger.api.auth import Authenticator, ClientConfig, token_sha256
from ledger.api.group_commit import GroupCommitter
from ledger.api.servicer import LedgerServicer
from ledger.api.telemetry import Telemetry
from ledger.application import Ledger
from ledger.v1 import ledger_pb2 as pb
from tests.builders import EUR, deposit

TOKEN = "token-for-the-overload-test"
WAIT_S = 30


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code = code


class CallContext:
    """What the servicer uses of a grpc.aio call context: its metadata and abort."""

    def invocation_metadata(self):
        return (("authorization", f"Bearer {TOKEN}"),)

    async def abort(self, code: grpc.StatusCode, details: str):
        raise Aborted(code, details)


def _servicer(ledger: Ledger, executor: ThreadPoolExecutor) -> LedgerServicer:
    committer = GroupCommitter(ledger, executor, enabled=True, window_ms=0, group_size_max=2,
                               queue_length_max=2)  # fmt: skip
    clients = [ClientConfig(name="admin", role="admin", token_sha256=token_sha256(TOKEN))]
    return LedgerServicer(ledger, committer, Authenticator(clients), Telemetry(), executor)


def _invalid_bet() -> pb.Command:
    return pb.Command(bet=pb.BetRequest(idempotency_key="b1", provider="hub88", player_id="p1",
                                        currency="EUR", amount="not a number", round_id="r1"))  # fmt: skip


def test_a_full_queue_refuses_a_batch_before_converting_it(tmp_path):
    """With the queue full, an invalid batch is RESOURCE_EXHAUSTED, not INVALID_ARGUMENT."""
    store_busy, executor = threading.Event(), ThreadPoolExecutor(1)
    with Ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        servicer = _servicer(ledger, executor)
        executor.submit(store_busy.wait, WAIT_S)  # the store thread is busy: calls queue

        async def run():
            queued = asyncio.ensure_future(
                servicer.committer.submit([deposit("d1", EUR), deposit("d2", EUR)])
            )
            await asyncio.sleep(0.05)  # the first group is handed to the busy store thread
            refill = asyncio.ensure_future(
                servicer.committer.submit([deposit("d3", EUR), deposit("d4", EUR)])
            )
            await asyncio.sleep(0)
            request = pb.SubmitBatchRequest(commands=[_invalid_bet()])
            with pytest.raises(Aborted) as refused:
                await servicer.SubmitBatch(request, CallContext())
            store_busy.set()
            return refused.value.code, await queued, await refill

        code, first, second = asyncio.run(run())
        executor.shutdown(wait=True)
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert [r.outcome.value for r in first + second] == ["OK"] * 4


def test_with_room_the_same_batch_is_refused_for_its_field(tmp_path):
    """The control: with the queue empty the invalid batch is refused naming its field."""
    executor = ThreadPoolExecutor(1)
    with Ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        servicer = _servicer(ledger, executor)

        async def run():
            with pytest.raises(Aborted) as refused:
                await servicer.SubmitBatch(
                    pb.SubmitBatchRequest(commands=[_invalid_bet()]), CallContext()
                )
            return refused.value

        error = asyncio.run(run())
        executor.shutdown(wait=True)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.args[1].startswith("commands[0].bet.amount")
