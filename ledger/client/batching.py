"""Auto-batching for the client: concurrent one-command calls to one server go out together as
SubmitBatch frames, the way TigerBeetle's clients batch, while each caller keeps the
one-command API and gets exactly its own answer, error and retry.

A lane (one per client, so one per server) queues the calls; a sender takes up to
`commands_max` of them into a frame as soon as one of `frames_in_flight_max` frame slots is
free, after lingering up to `linger_s` for more calls while another frame is in flight (with
nothing in flight a call goes at once: an idle client adds no latency). Order per player: a
call whose player has a command in a frame still in flight waits for that frame, so a
player's commands are applied in the order they were made (within one frame, SubmitBatch
applies them in order).

A frame refused with a transient status (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, or
RESOURCE_EXHAUSTED with RetryInfo) is resent whole, with the same keys, after the same
backoff a unary call gets; its callers' attempts are counted as theirs. Any other refusal
(a bad field, a role not allowed one of the commands...) is about one command or another, not
the frame, so the frame is split: each of its commands is sent again as the unary call it
stands for, and its caller gets exactly what that call gets. Resending is safe either way:
every command carries its idempotency key, and a refused frame wrote nothing. A failed frame
fails only its own callers; the lane goes on with the next.
"""

import asyncio
import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from ledger.client import results
from ledger.client.errors import LedgerCallError, Overloaded, status_code, translated
from ledger.core import limits
from ledger.v1 import ledger_pb2 as pb

# Statuses after which a frame is not split but each caller gets the error: the call itself
# was refused, whichever commands it held.
_WHOLE_FRAME_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED})


@dataclass(frozen=True)
class BatchOptions:
    """How a client coalesces calls: frame size, linger and frames in flight."""

    commands_max: int = limits.autobatch_commands_max
    linger_s: float = limits.autobatch_linger_ms / 1000
    frames_in_flight_max: int = limits.autobatch_frames_in_flight_max
    queue_length_max: int = limits.autobatch_queue_length_max

    def __post_init__(self) -> None:
        if not 0 < self.commands_max <= limits.batch_size_max:
            raise ValueError(f"commands_max: must be 1 to {limits.batch_size_max}")
        if self.linger_s < 0:
            raise ValueError("linger_s: must not be negative")
        if self.frames_in_flight_max < 1 or self.queue_length_max < 1:
            raise ValueError("frames_in_flight_max, queue_length_max: must be at least 1")


@dataclass(slots=True, eq=False)
class Pending:
    """One caller's command waiting for its frame, and where its answer goes."""

    method: str
    command: pb.Command
    player: str
    future: asyncio.Future | concurrent.futures.Future = field(repr=False)

    def unary_request(self):
        return getattr(self.command, self.command.WhichOneof("command"))


class FrameQueue:
    """The calls a lane holds, in arrival order, and the players with a frame in flight.
    Not thread-safe: each lane guards it."""

    def __init__(self, queue_length_max: int) -> None:
        self.waiting: deque[Pending] = deque()
        self.in_flight: dict[str, int] = {}  # player -> their commands in frames in flight
        self.queue_length_max = queue_length_max

    def add(self, pending: Pending) -> None:
        if len(self.waiting) >= self.queue_length_max:
            raise Overloaded(
                "RESOURCE_EXHAUSTED", "the client's batching queue is full", retry_delay_s=None
            )
        self.waiting.append(pending)

    def take(self, commands_max: int) -> list[Pending]:
        """Up to commands_max calls, oldest first, skipping players with a frame in flight
        (and dropping calls their callers gave up on)."""
        frame: list[Pending] = []
        kept: deque[Pending] = deque()
        while self.waiting and len(frame) < commands_max:
            pending = self.waiting.popleft()
            if pending.future.done():
                continue
            (kept if pending.player in self.in_flight else frame).append(pending)
        kept.extend(self.waiting)
        self.waiting = kept
        for pending in frame:
            self.in_flight[pending.player] = self.in_flight.get(pending.player, 0) + 1
        return frame

    def release(self, frame: list[Pending]) -> None:
        for pending in frame:
            count = self.in_flight[pending.player] - 1
            if count:
                self.in_flight[pending.player] = count
            else:
                del self.in_flight[pending.player]


def frame_request(frame: list[Pending]) -> pb.SubmitBatchRequest:
    return pb.SubmitBatchRequest(commands=[pending.command for pending in frame])


def settle_replies(frame: list[Pending], reply: pb.SubmitBatchResponse) -> None:
    """Each caller's own reply, in the frame's order."""
    for pending, message in zip(frame, reply.results, strict=True):
        if not pending.future.done():
            pending.future.set_result(results.reply_from(message))


def settle_error(frame: list[Pending], error: LedgerCallError) -> None:
    for pending in frame:
        if not pending.future.done():
            pending.future.set_exception(error)


def is_split(error: grpc.RpcError, is_transient: Callable[[grpc.RpcError], bool]) -> bool:
    """Whether a frame refused for good is split into unary calls (else every caller gets
    the refusal): not when the call itself was refused, or resends ran out."""
    return status_code(error) not in _WHOLE_FRAME_CODES and not is_transient(error)


@dataclass
class LaneCall:
    """What a lane needs from its client: the frame call, its metadata and timeout, the
    attempts per call and how the client resends after an error."""

    submit_batch: Callable
    metadata: tuple
    timeout_s: float
    retry_count_max: int
    resend_delay_s: Callable[[grpc.RpcError, int, int], float | None]
    is_transient: Callable[[grpc.RpcError], bool]
    unary: Callable  # (method, request) -> Reply, or an awaitable of one


class AsyncLane:
    """An asyncio client's lane: callers await their own future; one sender task."""

    def __init__(self, call: LaneCall, options: BatchOptions) -> None:
        self.call, self.options = call, options
        self.queue = FrameQueue(options.queue_length_max)
        self.frames_in_flight = 0
        self.wake = asyncio.Event()
        self.sender: asyncio.Task | None = None
        self.frames: set[asyncio.Task] = set()
        self.full: asyncio.Future | None = None  # resolved when a lingering frame fills up

    async def submit(self, method: str, command: pb.Command, player: str):
        future = asyncio.get_running_loop().create_future()
        self.queue.add(Pending(method, command, player, future))
        self.wake.set()
        if self.full is not None and len(self.queue.waiting) >= self.options.commands_max:
            _resolve(self.full)
        if self.sender is None:
            self.sender = asyncio.create_task(self._send_frames())
        return await future

    async def _send_frames(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.frames_in_flight >= self.options.frames_in_flight_max:
                continue
            await self._linger()
            frame = self.queue.take(self.options.commands_max)
            if not frame:
                continue
            self.frames_in_flight += 1
            task = asyncio.create_task(self._deliver(frame))
            self.frames.add(task)
            task.add_done_callback(self.frames.discard)
            if self.queue.waiting:
                self.wake.set()

    async def _linger(self) -> None:
        """Lets every caller already woken queue its call; then, with a frame in flight (its
        answers are coming back, so more calls will), waits up to linger_s for a full frame."""
        await asyncio.sleep(0)
        options = self.options
        if not (
            self.frames_in_flight
            and options.linger_s > 0
            and len(self.queue.waiting) < options.commands_max
        ):
            return
        loop = asyncio.get_running_loop()
        self.full = loop.create_future()
        timer = loop.call_later(options.linger_s, _resolve, self.full)
        try:
            await self.full
        finally:
            timer.cancel()
            self.full = None

    async def _deliver(self, frame: list[Pending]) -> None:
        try:
            await self._deliver_frame(frame)
        except Exception as error:  # a bug here must still answer the callers, not hang them
            settle_error(frame, LedgerCallError("UNKNOWN", repr(error)))
            raise
        finally:
            self.queue.release(frame)
            self.frames_in_flight -= 1
            self.wake.set()

    async def _deliver_frame(self, frame: list[Pending]) -> None:
        call, attempt = self.call, 1
        while True:
            try:
                reply = await call.submit_batch(
                    frame_request(frame), metadata=call.metadata, timeout=call.timeout_s
                )
            except grpc.RpcError as error:
                delay_s = call.resend_delay_s(error, attempt, call.retry_count_max)
                if delay_s is not None:
                    await asyncio.sleep(delay_s)
                    attempt += 1
                    continue
                if not is_split(error, call.is_transient):
                    return settle_error(frame, translated(error, attempt))
                return await self._split(frame)
            return settle_replies(frame, reply)

    async def _split(self, frame: list[Pending]) -> None:
        for pending in frame:
            try:
                reply = await self.call.unary(pending.method, pending.unary_request())
            except LedgerCallError as error:
                settle_error([pending], error)
            else:
                if not pending.future.done():
                    pending.future.set_result(reply)

    async def close(self) -> None:
        """Stops the sender once the frames in flight are answered."""
        if self.frames:
            await asyncio.gather(*self.frames, return_exceptions=True)
        if self.sender is not None:
            self.sender.cancel()
            await asyncio.gather(self.sender, return_exceptions=True)


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class ThreadLane:
    """A blocking client's lane: callers (threads) block on their own future; one sender
    thread hands frames to a pool of frames_in_flight_max threads."""

    def __init__(self, call: LaneCall, options: BatchOptions) -> None:
        self.call, self.options = call, options
        self.queue = FrameQueue(options.queue_length_max)
        self.frames_in_flight = 0
        self.changed = threading.Condition()
        self.closed = False
        self.pool = concurrent.futures.ThreadPoolExecutor(
            options.frames_in_flight_max, thread_name_prefix="ledger-frame"
        )
        self.sender = threading.Thread(target=self._send_frames, name="ledger-lane", daemon=True)
        self.sender.start()

    def submit(self, method: str, command: pb.Command, player: str):
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self.changed:
            if self.closed:
                raise RuntimeError("the client is closed")
            self.queue.add(Pending(method, command, player, future))
            self.changed.notify_all()
        return future.result()

    def _send_frames(self) -> None:
        while True:
            with self.changed:
                frame = self._next_frame()
                if frame is None:
                    return
                self.frames_in_flight += 1
            self.pool.submit(self._deliver, frame)

    def _next_frame(self) -> list[Pending] | None:
        """Waits (holding the condition) for a frame slot and calls; None once closed."""
        options = self.options
        while True:
            if self.closed:
                return None
            if self.queue.waiting and self.frames_in_flight < options.frames_in_flight_max:
                self._linger()
                frame = self.queue.take(options.commands_max)
                if frame:
                    return frame
            self.changed.wait()

    def _linger(self) -> None:
        deadline = time.monotonic() + self.options.linger_s
        while (
            self.frames_in_flight
            and len(self.queue.waiting) < self.options.commands_max
            and not self.closed
        ):
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                return
            self.changed.wait(left_s)

    def _deliver(self, frame: list[Pending]) -> None:
        try:
            self._deliver_frame(frame)
        except Exception as error:  # a bug here must still answer the callers, not hang them
            settle_error(frame, LedgerCallError("UNKNOWN", repr(error)))
            raise
        finally:
            with self.changed:
                self.queue.release(frame)
                self.frames_in_flight -= 1
                self.changed.notify_all()

    def _deliver_frame(self, frame: list[Pending]) -> None:
        call, attempt = self.call, 1
        while True:
            try:
                reply = call.submit_batch(
                    frame_request(frame), metadata=call.metadata, timeout=call.timeout_s
                )
            except grpc.RpcError as error:
                delay_s = call.resend_delay_s(error, attempt, call.retry_count_max)
                if delay_s is not None:
                    time.sleep(delay_s)
                    attempt += 1
                    continue
                if not is_split(error, call.is_transient):
                    return settle_error(frame, translated(error, attempt))
                return self._split(frame)
            return settle_replies(frame, reply)

    def _split(self, frame: list[Pending]) -> None:
        for pending in frame:
            try:
                reply = self.call.unary(pending.method, pending.unary_request())
            except LedgerCallError as error:
                settle_error([pending], error)
            else:
                if not pending.future.done():
                    pending.future.set_result(reply)

    def close(self) -> None:
        """Answers the calls already queued, then stops the sender and the frame threads."""
        with self.changed:
            while self.queue.waiting or self.frames_in_flight:
                self.changed.wait()
            self.closed = True
            self.changed.notify_all()
        self.sender.join()
        self.pool.shutdown(wait=True)
