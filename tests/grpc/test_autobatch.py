"""The auto-batching client: concurrent one-command calls leave as SubmitBatch frames, each
caller gets exactly its own answer, error and retry, a player's commands keep their order, and
a failed frame fails only its own callers. Against a real `ledger serve`, and against a small
in-process engine that records the frames and refuses them on demand."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from ledger.client import (
    AsyncLedgerClient,
    BatchOptions,
    InvalidRequest,
    LedgerClient,
    Overloaded,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from ledger.client.batching import FrameQueue, Pending
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc
from tests.grpc.conftest import log_lines

pytestmark = pytest.mark.slow
LOG_TIMEOUT_S = 10.0


def _deposit(client, key: str, player: str, amount: str = "5"):
    return client.deposit(
        idempotency_key=key,
        player_id=player,
        currency="EUR",
        amount=amount,
        rail="psp",
        rail_id="stripe",
    )


async def _deposits_at_once(client, keys: list[str], player_of, amount_of=lambda key: "5"):
    """Every deposit started before any is awaited; each outcome or exception, in order."""
    calls = [_deposit(client, key, player_of(key), amount_of(key)) for key in keys]
    return await asyncio.gather(*calls, return_exceptions=True)


def _async_client(server, name: str = "payments", auto_batch=True) -> AsyncLedgerClient:
    return AsyncLedgerClient(server.target, server.tokens[name], auto_batch=auto_batch)


def _frames_logged(server, expected_commands: int) -> list[dict]:
    """The server's log lines of SubmitBatch calls until they hold expected_commands."""
    deadline = time.monotonic() + LOG_TIMEOUT_S
    while True:
        frames = [
            line
            for line in log_lines(server)
            if line.get("event") == "call" and line.get("method") == "SubmitBatch"
        ]
        if sum(int(line["outcome"].split()[0]) for line in frames) >= expected_commands:
            return frames
        assert time.monotonic() < deadline, "the frames never reached the log"
        time.sleep(0.05)


def test_concurrent_async_calls_leave_as_submit_batch_frames(server):
    """32 concurrent deposits reach the server as fewer SubmitBatch frames, each caller
    getting its own reply with its own journal."""
    before = len(_frames_logged(server, 0))

    async def run():
        async with _async_client(server) as client:
            return await _deposits_at_once(
                client, [f"ab-a{n}" for n in range(32)], lambda key: f"ab-a-{key}"
            )

    replies = asyncio.run(run())
    assert [reply.outcome for reply in replies] == ["OK"] * 32
    assert len({reply.journal_id for reply in replies}) == 32
    assert all(reply.balances.cash == "5" for reply in replies)
    frames = _frames_logged(server, 32)[before:]
    assert 1 <= len(frames) < 32


def test_concurrent_threads_of_a_blocking_client_share_frames(server):
    """A blocking client's calls from 16 threads go out batched; each thread gets its own."""
    with server.client("payments", auto_batch=True) as client, ThreadPoolExecutor(16) as pool:
        start = threading.Barrier(16)

        def one(n: int):
            start.wait()
            return _deposit(client, f"ab-t{n}", f"ab-t-player{n}", amount=str(n + 1))

        replies = list(pool.map(one, range(16)))
    assert [reply.balances.cash for reply in replies] == [str(n + 1) for n in range(16)]
    assert len({reply.journal_id for reply in replies}) == 16


def test_a_players_commands_apply_in_the_order_they_were_made(server):
    """Twenty deposits for one player, all started at once, are applied in the order they
    were made (consecutive wallet versions, growing balances), even with several frames in
    flight."""

    async def run():
        options = BatchOptions(commands_max=3, frames_in_flight_max=4)
        async with _async_client(server, auto_batch=options) as client:
            return await _deposits_at_once(
                client, [f"ab-o{n}" for n in range(20)], lambda key: "ab-ordered"
            )

    replies = asyncio.run(run())
    versions = [reply.wallet_version for reply in replies]
    assert versions == list(range(versions[0], versions[0] + 20))
    assert [reply.balances.cash for reply in replies] == [str(5 * n) for n in range(1, 21)]


def test_a_bad_command_fails_only_its_own_caller_with_its_own_field(server):
    """One malformed amount among concurrent calls: that caller gets InvalidRequest naming
    `amount` as a unary call would; every other caller gets its reply."""

    async def run():
        async with _async_client(server) as client:
            return await _deposits_at_once(
                client,
                [f"ab-e{n}" for n in range(8)],
                lambda key: f"ab-e-{key}",
                amount_of=lambda key: "1e3" if key == "ab-e3" else "5",
            )

    replies = asyncio.run(run())
    error = replies[3]
    assert isinstance(error, InvalidRequest) and error.field == "amount"
    assert [r.outcome for n, r in enumerate(replies) if n != 3] == ["OK"] * 7


def test_a_command_the_role_may_not_send_is_refused_to_its_caller_alone(server):
    """A game provider's bet for another provider is PERMISSION_DENIED for that caller;
    the bets beside it in the frame are applied."""
    _deposit(server.client("payments"), "ab-p-fund", "ab-p-player", amount="100")

    async def bet(client, n: int):
        provider = "other" if n == 2 else "hub88"
        return await client.bet(
            idempotency_key=f"ab-p{n}",
            provider=provider,
            player_id="ab-p-player",
            currency="EUR",
            amount="1",
            round_id=f"ab-p-round{n}",
        )

    async def run():
        async with _async_client(server, "hub88") as client:
            return await asyncio.gather(*(bet(client, n) for n in range(6)), return_exceptions=True)

    replies = asyncio.run(run())
    assert isinstance(replies[2], PermissionDenied)
    assert [r.outcome for n, r in enumerate(replies) if n != 2] == ["OK"] * 5


def test_a_resent_command_is_a_duplicate_with_the_original_journal(server):
    """Sending a frame's commands again is safe: each is DUPLICATE of its first answer."""

    async def run():
        async with _async_client(server) as client:
            keys = [f"ab-d{n}" for n in range(6)]
            first = await _deposits_at_once(client, keys, lambda key: f"ab-d-{key}")
            again = await _deposits_at_once(client, keys, lambda key: f"ab-d-{key}")
            return first, again

    first, again = asyncio.run(run())
    assert [reply.outcome for reply in again] == ["DUPLICATE"] * 6
    assert [r.journal_id for r in again] == [r.journal_id for r in first]


def test_a_bad_token_fails_every_caller_without_splitting(server):
    """UNAUTHENTICATED refuses the call, not a command: each caller gets it once."""

    async def run():
        async with AsyncLedgerClient(server.target, "wrong", auto_batch=True) as client:
            return await _deposits_at_once(client, ["ab-u1", "ab-u2"], lambda key: "ab-u")

    replies = asyncio.run(run())
    assert all(isinstance(r, Unauthenticated) and r.attempts == 1 for r in replies)


class Frames(pb_grpc.LedgerServiceServicer):
    """A stand-in engine that records each SubmitBatch frame's keys and refuses the first
    `refusal_count` frames with a status; every command is answered OK with its key."""

    def __init__(
        self,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        refusal_count: int = 0,
        delay_s: float = 0.0,
    ) -> None:
        self.code, self.refusal_count, self.delay_s = code, refusal_count, delay_s
        self.frames: list[list[str]] = []
        self.lock = threading.Lock()

    def SubmitBatch(self, request, context):
        keys = [getattr(c, c.WhichOneof("command")).idempotency_key for c in request.commands]
        with self.lock:
            self.frames.append(keys)
            refused = len(self.frames) <= self.refusal_count
        time.sleep(self.delay_s)
        if refused:
            context.abort(self.code, "refused on purpose")
        return pb.SubmitBatchResponse(
            results=[pb.CommandResponse(outcome=pb.OUTCOME_OK, journal_id=key) for key in keys]
        )


def test_frames_hold_at_most_commands_max(fake_engine):
    """Ten concurrent calls with commands_max=4 leave in frames of at most four."""
    engine = Frames(delay_s=0.05)

    async def run():
        options = BatchOptions(commands_max=4)
        async with AsyncLedgerClient(fake_engine(engine), "t", auto_batch=options) as client:
            return await _deposits_at_once(
                client, [f"k{n}" for n in range(10)], lambda key: f"player-{key}"
            )

    replies = asyncio.run(run())
    assert [reply.journal_id for reply in replies] == [f"k{n}" for n in range(10)]
    assert max(len(frame) for frame in engine.frames) <= 4
    assert sorted(key for frame in engine.frames for key in frame) == sorted(
        f"k{n}" for n in range(10)
    )


def test_a_transient_refusal_resends_the_frame_with_the_same_keys(fake_engine):
    """UNAVAILABLE twice, then answered: the same keys are sent three times and every
    caller gets its own reply once."""
    engine = Frames(refusal_count=2)
    with LedgerClient(fake_engine(engine), "t", auto_batch=True) as client:
        reply = _deposit(client, "only", "player-1")
    assert reply.journal_id == "only"
    assert engine.frames == [["only"], ["only"], ["only"]]


def test_a_frame_that_stays_unavailable_fails_only_its_own_callers(fake_engine):
    """Each caller of a frame refused past its attempts gets Unavailable with its attempt
    count; a call made afterwards, in a new frame, is answered."""
    engine = Frames(refusal_count=3)

    async def run():
        async with AsyncLedgerClient(
            fake_engine(engine), "t", auto_batch=True, retry_count_max=3
        ) as client:
            failed = await _deposits_at_once(client, ["a", "b"], lambda key: f"player-{key}")
            later = await _deposit(client, "c", "player-c")
            return failed, later

    failed, later = asyncio.run(run())
    assert all(isinstance(error, Unavailable) and error.attempts == 3 for error in failed)
    assert later.journal_id == "c"


def test_a_lone_call_is_sent_at_once_whatever_the_linger(fake_engine):
    """With nothing in flight a call does not wait for company: linger only applies while
    another frame's answers are on their way."""
    engine = Frames()
    options = BatchOptions(linger_s=5.0)
    with LedgerClient(fake_engine(engine), "t", auto_batch=options) as client:
        started = time.monotonic()
        _deposit(client, "lone", "player-1")
        assert time.monotonic() - started < 2.0


def test_linger_is_bounded_while_a_frame_is_in_flight(fake_engine):
    """A call made while a slow frame is in flight leaves within about the linger, in a
    frame of its own, without waiting for the slow one's answer."""
    engine = Frames(delay_s=1.5)
    options = BatchOptions(linger_s=0.05, frames_in_flight_max=2)

    async def run():
        async with AsyncLedgerClient(fake_engine(engine), "t", auto_batch=options) as client:
            slow = asyncio.create_task(_deposit(client, "first", "player-1"))
            await asyncio.sleep(0.2)
            second = asyncio.create_task(_deposit(client, "second", "player-2"))
            await asyncio.sleep(0.5)
            frames_before_slow_answer = list(engine.frames)
            await asyncio.gather(slow, second)
            return frames_before_slow_answer

    assert asyncio.run(run()) == [["first"], ["second"]]


def test_batch_options_name_the_field_they_refuse():
    """Out-of-range options are refused with the option's name."""
    with pytest.raises(ValueError, match="commands_max"):
        BatchOptions(commands_max=0)
    with pytest.raises(ValueError, match="linger_s"):
        BatchOptions(linger_s=-1)


def _pending(player: str, key: str) -> Pending:
    command = pb.Command(deposit=pb.DepositRequest(idempotency_key=key, player_id=player))
    return Pending("Deposit", command, player, asyncio.Future(loop=asyncio.new_event_loop()))


def test_a_frame_skips_players_in_flight_and_keeps_the_rest_in_order():
    """take() leaves a player with a frame in flight queued, in order, until release()."""
    queue = FrameQueue(queue_length_max=10)
    first = [_pending("p1", "a"), _pending("p2", "b")]
    for pending in first:
        queue.add(pending)
    assert queue.take(10) == first
    later = [_pending("p1", "c"), _pending("p3", "d"), _pending("p1", "e")]
    for pending in later:
        queue.add(pending)
    assert queue.take(10) == [later[1]]
    queue.release(first)
    assert queue.take(10) == [later[0], later[2]]


def test_a_full_queue_is_overloaded_at_once():
    """Past queue_length_max the call is refused as Overloaded without a delay."""
    queue = FrameQueue(queue_length_max=1)
    queue.add(_pending("p1", "a"))
    with pytest.raises(Overloaded) as caught:
        queue.add(_pending("p1", "b"))
    assert caught.value.retry_delay_s is None
