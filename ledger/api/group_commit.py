"""Group commit: concurrent calls are collected for a short window and written in one store
transaction, so throughput is not one commit per command.

Rules:
- A call's commands stay together and in order; calls join a group in arrival order, so
  commands for one wallet apply in arrival order.
- The first call after an idle period waits `window_ms` for company; while a group is being
  written, new calls queue and form the next group at once (they already waited).
- A group holds at most `group_size_max` commands (one call larger than that goes alone).
- A store failure fails exactly the calls of that group, with the store's error; nothing of
  the group is half-written, because the group is one transaction.
- A group is decided on the event loop's thread; only its store round trips run on the
  executor (`Ledger.execute_validated_async`): handing the interpreter lock between the
  loop and a store thread deciding beside it cost the server a large share of its CPU
  (docs/decisions.md, "Group commit decides on the event loop's thread").
- Disabled, every call is written on its own, wholly on the executor: the benchmark's
  baseline.
The queue is bounded: past `queue_length_max` waiting commands, calls are refused.
"""

import asyncio
import functools
from collections.abc import Sequence
from concurrent.futures import Executor

from ledger.api.status import Overloaded
from ledger.core.commands import Command
from ledger.service.application import Ledger
from ledger.service.results import CommandResult

_Call = tuple[Sequence[Command], asyncio.Future]


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
        on_group=None,
    ) -> None:
        assert window_ms >= 0 and group_size_max > 0 and queue_length_max >= group_size_max
        self.ledger = ledger
        self.executor = executor
        self.enabled = enabled
        self.window_s = window_ms / 1000
        self.group_size_max = group_size_max
        self.queue_length_max = queue_length_max
        self.on_group = on_group or (lambda size: None)
        self._pending: list[_Call] = []
        self._pending_count = 0
        self._flusher: asyncio.Task | None = None

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
        self._pending.append((commands, future))
        self._pending_count += len(commands)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_all())
        return await future

    async def _flush_all(self) -> None:
        try:
            await asyncio.sleep(self.window_s)
            while self._pending:
                await self._write(self._take_group())
        finally:
            self._flusher = None

    def _take_group(self) -> list[_Call]:
        group, size = [], 0
        while self._pending and (
            not group or size + len(self._pending[0][0]) <= self.group_size_max
        ):
            call = self._pending.pop(0)
            group.append(call)
            size += len(call[0])
        self._pending_count -= size
        return group

    async def _write(self, group: list[_Call]) -> None:
        commands = [command for call_commands, _ in group for command in call_commands]
        self.on_group(len(commands))
        loop = asyncio.get_running_loop()
        run = functools.partial(loop.run_in_executor, self.executor)
        try:
            results = await self.ledger.execute_validated_async(commands, run)
        except Exception as error:  # the whole group failed: each of its calls learns why
            for _, future in group:
                if not future.done():
                    future.set_exception(error)
            return
        start = 0
        for call_commands, future in group:
            end = start + len(call_commands)
            if not future.done():
                future.set_result(results[start:end])
            start = end
