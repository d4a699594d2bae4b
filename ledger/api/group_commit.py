"""Group commit: concurrent calls are collected for a short window and written in one store
transaction, so throughput is not one commit per command.

Rules:
- A call's commands stay together and in order. Calls that share a stream (a wallet, a
  suspense item) or an idempotency key (its own, or the one a rollback targets) are written
  in arrival order: a call waits while any group in flight holds one of them, and no later
  call sharing one with a waiting call overtakes it. So commands for one wallet apply in
  arrival order, and a key's first arrival is the one that counts.
- Up to `groups_in_flight_max` groups are written at once, their streams and keys disjoint:
  one group's store round trips and commit overlap the deciding of the next. On a log of one
  partition (SQLite, the single PostgreSQL log) every append takes the whole store's lock,
  so one group is in flight there.
- The first call after an idle period waits `window_ms` for company, unless it carries a
  group's worth itself (`window_skip_commands_min`: an auto-batching client's frame, a
  SubmitBatch), which waiting would only delay. When a group ends,
  the waiting calls that may go form the next at once (they already waited). Beside groups
  still in flight, a group starts early only once at least `overlap_commands_min` commands
  may go: each group costs the loop a fixed share of work (its store hand-offs, its
  transaction), and groups of a few unary calls each cost more CPU than the overlap won
  (benchmarks/README.md, issue 15).
- A group holds at most `group_size_max` commands (one call larger than that goes alone).
- A store failure fails exactly the calls of that group, with the store's error; nothing of
  the group is half-written, because the group is one transaction. Other groups in flight
  are unaffected.
- A group is decided on the event loop's thread; only its store round trips run on the
  executor (`Ledger.execute_validated_async`): handing the interpreter lock between the
  loop and a store thread deciding beside it cost the server a large share of its CPU
  (docs/decisions.md, "Group commit decides on the event loop's thread").
- Disabled, every call is written on its own, wholly on the executor: the benchmark's
  baseline.
The queue is bounded: past `queue_length_max` waiting commands, calls are refused.
"""

import asyncio
import contextvars
import functools
from collections.abc import Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from ledger.api.status import Overloaded
from ledger.core import limits
from ledger.core.commands import Command, Rollback, idempotency_scope
from ledger.service.application import Ledger
from ledger.service.results import CommandResult
from ledger.service.wallets import command_stream_ids


@dataclass(slots=True)
class _Call:
    commands: Sequence[Command]
    future: asyncio.Future
    touches: frozenset[Hashable]  # `call_touches`: what orders it against other calls


def call_touches(commands: Sequence[Command]) -> frozenset[Hashable]:
    """What a call reads or writes that another call could too: its streams (as ints, which
    hash in C) and its idempotency keys, a rollback's target key included (its record names
    the wallet the rollback must match). Calls whose sets meet are written in arrival order."""
    touches: set[Hashable] = set()
    for command in commands:
        touches.update(stream.int for stream in command_stream_ids(command))
        scope = idempotency_scope(command)
        touches.add((scope, command.idempotency_key))
        if isinstance(command, Rollback):
            touches.add((scope, command.target_key))
    return frozenset(touches)


class GroupCommitter:
    def __init__(
        self,
        ledger: Ledger,
        executor: Executor,
        *,
        enabled: bool,
        window_ms: float,
        group_size_max: int,
        queue_length_max: int,
        groups_in_flight_max: int = 1,
        overlap_commands_min: int = limits.group_commit_overlap_commands_min,
        window_skip_commands_min: int = limits.group_commit_window_skip_commands_min,
        on_group=None,
    ) -> None:
        assert window_ms >= 0 and group_size_max > 0 and queue_length_max >= group_size_max
        assert groups_in_flight_max >= 1 and overlap_commands_min >= 1
        assert window_skip_commands_min >= 1
        self.ledger = ledger
        self.executor = executor
        self.enabled = enabled
        self.window_s = window_ms / 1000
        self.window_skip_commands_min = window_skip_commands_min
        self.group_size_max = group_size_max
        self.queue_length_max = queue_length_max
        # A log of one partition serialises every append: a second group would only wait.
        self.groups_in_flight_max = groups_in_flight_max if ledger.log.partitions > 1 else 1
        self.overlap_commands_min = min(overlap_commands_min, group_size_max)
        self.on_group = on_group or (lambda size: None)
        self._pending: list[_Call] = []
        self._pending_count = 0
        self._busy: set[Hashable] = set()  # what the groups in flight touch
        self._writers: set[asyncio.Task] = set()
        self._ended = False  # a group ended since groups were last started
        self._wake: asyncio.Event | None = None  # set when a slot frees or a call arrives
        self._dispatcher: asyncio.Task | None = None

    def check_room(self, count: int) -> None:
        """Refuses (Overloaded) a call of count commands that the queue could not take now.

        The servicer asks before converting a call's commands, so a server shedding load does
        not first parse and validate what it will refuse; nothing awaits between this check
        and `submit` on the event loop, so the answer still holds when the call is queued."""
        if self.enabled and self._pending_count + count > self.queue_length_max:
            raise Overloaded(f"more than {self.queue_length_max} commands are waiting")

    async def submit(self, commands: Sequence[Command]) -> list[CommandResult]:
        """Writes commands (each already validated) and returns their results in order."""
        loop = asyncio.get_running_loop()
        if not self.enabled:
            self.on_group(len(commands))
            return await loop.run_in_executor(
                self.executor, self.ledger.execute_validated, commands
            )
        self.check_room(len(commands))
        future: asyncio.Future = loop.create_future()
        self._pending.append(_Call(commands, future, call_touches(commands)))
        self._pending_count += len(commands)
        if self._dispatcher is None:
            wake = self._wake = asyncio.Event()  # one per run: an Event keeps its first loop
            # A context of its own: the groups serve many calls, so they must not carry the
            # request id (and trace) of whichever call happened to start the dispatcher.
            window_s = 0 if len(commands) >= self.window_skip_commands_min else self.window_s
            self._dispatcher = asyncio.create_task(
                self._dispatch(wake, window_s), context=contextvars.Context()
            )
        elif (
            len(self._writers) < self.groups_in_flight_max
            and self._pending_count >= self.overlap_commands_min
        ):
            self._wake.set()  # perhaps enough for a group beside those in flight
        return await future

    async def drain(self) -> None:
        """Returns once every queued call is answered and no group is in flight."""
        if self._dispatcher is not None:
            await asyncio.shield(self._dispatcher)

    async def _dispatch(self, wake: asyncio.Event, window_s: float) -> None:
        """After window_s, starts groups while slots are free, and waits for a slot or a
        call between."""
        try:
            await asyncio.sleep(window_s)
            while self._pending or self._writers:
                wake.clear()
                self._start_groups()
                await wake.wait()
        finally:
            self._dispatcher = None

    def _start_groups(self) -> None:
        # After an idle window or a group's end, whatever may go goes (as with one group in
        # flight); any further group only if it is worth its cost.
        size_min = 1 if self._ended or not self._writers else self.overlap_commands_min
        self._ended = False
        while self._pending and len(self._writers) < self.groups_in_flight_max:
            group = self._take_group(size_min)
            if not group:
                return  # what may go now is too little, or nothing: wait for a group to end
            size_min = self.overlap_commands_min
            touches = frozenset().union(*(call.touches for call in group))
            self._busy |= touches
            writer = asyncio.create_task(self._write(group))
            self._writers.add(writer)
            writer.add_done_callback(functools.partial(self._written, touches))

    def _take_group(self, size_min: int) -> list[_Call]:
        """Takes, in arrival order, the waiting calls that may go now and fit one group, if
        they hold at least size_min commands; else takes nothing.

        A call that must wait (it touches what a group in flight holds, or it does not fit)
        blocks what it touches for every later call, so none overtakes it."""
        group, size, blocked, left = [], 0, set(), []
        for index, call in enumerate(self._pending):
            if size >= self.group_size_max:
                left.extend(self._pending[index:])
                break
            fits = not group or size + len(call.commands) <= self.group_size_max
            if fits and call.touches.isdisjoint(self._busy) and call.touches.isdisjoint(blocked):
                group.append(call)
                size += len(call.commands)
            else:
                left.append(call)
                blocked |= call.touches
        if size < size_min:
            return []
        self._pending = left
        self._pending_count -= size
        return group

    def _written(self, touches: frozenset[Hashable], writer: asyncio.Task) -> None:
        self._busy -= touches
        self._writers.discard(writer)
        self._ended = True
        if self._wake is not None:
            self._wake.set()

    async def _write(self, group: list[_Call]) -> None:
        commands = [command for call in group for command in call.commands]
        self.on_group(len(commands))
        loop = asyncio.get_running_loop()
        run = functools.partial(loop.run_in_executor, self.executor)
        try:
            results = await self.ledger.execute_validated_async(commands, run)
        except Exception as error:  # the whole group failed: each of its calls learns why
            for call in group:
                if not call.future.done():
                    call.future.set_exception(error)
            return
        start = 0
        for call in group:
            end = start + len(call.commands)
            if not call.future.done():
                call.future.set_result(results[start:end])
            start = end
