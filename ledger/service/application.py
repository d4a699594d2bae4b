"""The ledger application: prefetch → decide → append, through the event-log port.

A batch of commands (one command is a batch of one) is handled in one attempt:
prefetch every wallet and idempotency record it needs, decide each command in order
against the working states (so commands for the same wallet see each other), then append
every new wallet event and every idempotency record in ONE store transaction. Either the
whole batch is recorded or none of it.

Concurrency is optimistic. The event table's primary key (stream id, version) refuses a
second writer of the same wallet version or of the same idempotency key; the attempt is
then retried from fresh state, a bounded number of times. Inside one process, wallet locks
(`ledger.service.wallet_locks`) keep commands for the same wallet from racing each other
needlessly.

An attempt is written once, as steps (`_attempt_steps`): it yields each store round trip
and decides between them. `execute_validated` runs the round trips in the calling thread;
`execute_validated_async` awaits them on a runner (a thread pool) and decides on the event
loop's own thread, so a server's loop and its store thread do not pass the interpreter lock
back and forth while a group is decided.
"""

import asyncio
from collections.abc import Awaitable, Callable, Generator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from ledger.core import limits
from ledger.core.commands import Command
from ledger.core.errors import ConcurrencyExhausted, InvalidArgument, NotATestStore
from ledger.core.events import CommandRecorded, WalletEvent
from ledger.core.money import CurrencyRegistry
from ledger.core.partition import partition_of
from ledger.core.policy import Policy, Rules
from ledger.core.state import ZERO_BALANCES, Balances, WalletState
from ledger.core.validation import validate
from ledger.event_log import AppendConflict, EventLog
from ledger.service.batch import BatchAttempt
from ledger.service.clock import (
    ClockReading,
    StoreKind,
    TestClock,
    WallClock,
    advance_clock,
    newest_clock_state,
    open_clock,
)
from ledger.service.currency_scales import reconcile_currencies
from ledger.service.ids import random_uuid4
from ledger.service.results import CommandResult
from ledger.service.wallet_locks import WalletLocks
from ledger.service.wallets import (
    WalletCache,
    WalletLoader,
    command_stream_ids,
    key_record_id,
    wallet_id,
)
from ledger.store.database import startup_lock, store_environment
from ledger.store.open import open_event_log

# A store round trip an attempt asks for: the function and its arguments.
StoreCall = tuple[Callable[..., Any], tuple]
AttemptSteps = Generator[StoreCall, Any, list[CommandResult]]
# Runs one store round trip off the event loop: (function, *args) -> awaitable answer.
StoreRunner = Callable[..., Awaitable[Any]]
# What opening a Ledger does with the currency scales the store recorded
# (ledger.service.currency_scales).
CurrencyScales = Literal["record", "adopt", "check", "ignore"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """The service layer every entry point (CLI, gRPC, tests) goes through."""

    def __init__(
        self,
        database_url: str,
        *,
        rules: Rules | None = None,
        clock: WallClock = utc_now,
        new_id: Callable[[], UUID] = random_uuid4,
        cache_size: int = limits.wallet_cache_size_max,
        environment: dict[str, str] | None = None,
        currency_scales: CurrencyScales = "record",
        store_kind: StoreKind = "production",
    ) -> None:
        """Opens the store. With currency_scales "record" or "check", a configuration whose
        currency scales contradict the store's is refused (InvalidArgument); "record" also
        records the configured ones, "adopt" records them even on a store that holds events
        but has never recorded any (the operator checked them), "ignore" is for tools that
        never read an amount's scale (the audit, projections, checkpoints).

        Args:
            clock: the wall clock. On a test store the ledger's clock is a TestClock over it.
            store_kind: "production" refuses a test store, "test" creates one on an empty
                store or resumes one and refuses a production store (InvalidArgument, field
                `test_clock`), "either" is for tools and takes the store as it is.
        """
        self.rules = rules or Rules(CurrencyRegistry(), Policy())
        self.new_id = new_id
        store_env = {**store_environment(database_url), **(environment or {})}
        with startup_lock(store_env):
            self.log: EventLog = open_event_log(store_env)
            empty = not any(self._guarded(self.log.heads))
            # The clock first: a test store is marked while it is still empty.
            self.clock = self._guarded(open_clock, self.log, store_kind, clock)
            if currency_scales == "record" and empty:
                currency_scales = "adopt"  # the test mark aside, no amount is at any scale yet
            if currency_scales != "ignore":
                self._guarded(self._reconcile_currencies, currency_scales)
        self.test_clock = self.clock if isinstance(self.clock, TestClock) else None
        self.loader = WalletLoader(self.log)
        self.cache = WalletCache(cache_size)
        self._locks = WalletLocks()

    def _guarded(self, function: Callable[..., Any], *args: Any) -> Any:
        """function(*args) while opening; the store is closed if it raises."""
        try:
            return function(*args)
        except BaseException:
            self.log.close()
            raise

    def _reconcile_currencies(self, mode: CurrencyScales) -> None:
        reconcile_currencies(
            self.log,
            self.rules.currencies,
            self.clock(),
            record=mode in ("record", "adopt"),
            adopt=mode == "adopt",
        )

    def close(self) -> None:
        self.log.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def advance_clock(self, target: datetime | None) -> ClockReading:
        """Moves a test store's clock forward to target, or only reads it (None); a target
        at or before the ledger's time moves nothing. NotATestStore on a production store.

        Attempts that started before the advance may still be decided at the earlier time:
        advance between calls, not during them."""
        if self.test_clock is None:
            raise NotATestStore(
                "this store's clock is the wall clock: only a store created "
                "with `ledger serve --test-clock` may be advanced"
            )
        if target is not None and target.utcoffset() is None:
            raise InvalidArgument("advance_to", "must carry a time zone")
        return advance_clock(self.test_clock, self.log, target)

    def execute(self, command: Command) -> CommandResult:
        """Validates and applies one command; raises InvalidArgument for malformed input."""
        return self.execute_batch([command], field_prefix="")[0]

    def execute_batch(
        self, commands: Sequence[Command], *, field_prefix: str = "commands"
    ) -> list[CommandResult]:
        """Applies commands in order, each on its own merits, in one store transaction."""
        if not 0 < len(commands) <= limits.batch_size_max:
            raise InvalidArgument(
                field_prefix or "commands", f"must hold 1 to {limits.batch_size_max} commands"
            )
        for index, command in enumerate(commands):
            self._validate(command, f"{field_prefix}[{index}]." if field_prefix else "")
        return self.execute_validated(commands)

    def execute_validated(self, commands: Sequence[Command]) -> list[CommandResult]:
        """Like execute_batch, for commands the caller has already validated one by one.

        The gRPC layer validates each call before it joins a group commit (so one malformed
        call cannot fail its neighbours); validating the group again would be wasted work.
        """
        assert 0 < len(commands) <= limits.batch_size_max, len(commands)
        shards = self._by_partition(commands)
        if len(shards) > 1:
            answers = [self.execute_validated([commands[i] for i in s]) for s in shards]
            return _reassembled(shards, answers)
        wallets = {stream for c in commands for stream in command_stream_ids(c)}
        with self._locked(wallets):
            return self._execute_with_retries(commands, wallets)

    def _by_partition(self, commands: Sequence[Command]) -> list[list[int]]:
        """On a distributed log, the commands' indices split by the partition of their
        stream, each part in order (one transaction per shard, not a distributed one); else
        all of them. A command is applied on its own merits whatever shares its transaction,
        so a failed part leaves the parts before it applied: resending is safe (the keys)."""
        if not self.log.distributed:
            return [list(range(len(commands)))]
        partitions = self.log.partitions
        parts: dict[int, list[int]] = {}
        for index, command in enumerate(commands):
            home = partition_of(command_stream_ids(command)[0], partitions)
            parts.setdefault(home, []).append(index)
        return list(parts.values())

    def _validate(self, command: Command, prefix: str) -> None:
        if not isinstance(command, Command):
            raise InvalidArgument(prefix.rstrip(".") or "command", "is not a ledger command")
        try:
            validate(command, self.rules)
        except InvalidArgument as error:
            raise InvalidArgument(prefix + error.field, error.reason) from None

    async def execute_validated_async(
        self, commands: Sequence[Command], run: StoreRunner
    ) -> list[CommandResult]:
        """execute_validated on an event loop: the decisions run on the loop's thread and
        every store round trip is awaited on `run`. Meant for the one writer of a process
        (the server's group commit): the wallet locks are held across those awaits, and a
        suspense item is still read on the loop's thread. Several calls may be in flight at
        once if their streams are disjoint (RuntimeError if they are not: the caller keeps
        them apart, `ledger.api.group_commit`)."""
        assert 0 < len(commands) <= limits.batch_size_max, len(commands)
        shards = self._by_partition(commands)
        wallets = {stream for c in commands for stream in command_stream_ids(c)}
        with self._locks.held_by_loop(wallets):
            if len(shards) == 1:
                return await self._attempts_async(commands, run)
            # Each part holds other wallets (an attribution also touches its item, and the
            # retries settle a clash there): their transactions run side by side.
            parts = [[commands[i] for i in shard] for shard in shards]
            answers = await asyncio.gather(*(self._attempts_async(p, run) for p in parts))
            return _reassembled(shards, list(answers))

    async def _attempts_async(
        self, commands: Sequence[Command], run: StoreRunner
    ) -> list[CommandResult]:
        """Attempts until one is written or the retries run out (ConcurrencyExhausted)."""
        try:  # nearly always written at once: the retry machinery only once it is needed
            return await self._attempt_async(commands, run)
        except AppendConflict as conflict:
            first = conflict
        wallets = {stream for c in commands for stream in command_stream_ids(c)}
        retrying = AsyncRetrying(**self._retry_policy(wallets))
        attempt = _after_failure(first, self._attempt_async)
        try:
            return await retrying(attempt, commands, run)
        except AppendConflict as error:
            raise self._exhausted(wallets) from error

    def _execute_with_retries(self, commands, wallets: set[UUID]) -> list[CommandResult]:
        try:  # nearly always written at once: the retry machinery only once it is needed
            return self._attempt(commands)
        except AppendConflict as conflict:
            first = conflict
        retrying = Retrying(**self._retry_policy(wallets))
        try:
            return retrying(_after_failure(first, self._attempt), commands)
        except AppendConflict as error:
            raise self._exhausted(wallets) from error

    def _retry_policy(self, wallets: set[UUID]) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(limits.concurrency_retry_count_max),
            "wait": wait_random_exponential(
                multiplier=limits.concurrency_retry_wait_ms_min / 1000,
                max=limits.concurrency_retry_wait_ms_max / 1000,
            ),
            "retry": retry_if_exception_type(AppendConflict),
            "before_sleep": lambda _: self._evict(wallets),
            "reraise": True,
        }

    def _exhausted(self, wallets: set[UUID]) -> ConcurrencyExhausted:
        self._evict(wallets)
        return ConcurrencyExhausted(
            f"gave up after {limits.concurrency_retry_count_max} conflicting attempts"
        )

    def _attempt(self, commands: Sequence[Command]) -> list[CommandResult]:
        steps, answer = self._attempt_steps(commands), None
        while True:
            try:
                function, args = steps.send(answer)
            except StopIteration as done:
                return done.value
            answer = function(*args)

    async def _attempt_async(
        self, commands: Sequence[Command], run: StoreRunner
    ) -> list[CommandResult]:
        steps, answer = self._attempt_steps(commands), None
        while True:
            try:
                function, args = steps.send(answer)
            except StopIteration as done:
                return done.value
            answer = await run(function, *args)

    def _attempt_steps(self, commands: Sequence[Command]) -> AttemptSteps:
        """One attempt: yields each store round trip and is sent its answer."""
        if self.test_clock is not None:
            # Another process serving this test store may have advanced its clock: every
            # attempt reads the clock stream's head first, so all of them decide on one time.
            self.test_clock.adopt((yield newest_clock_state, (self.log,)))
        attempt = BatchAttempt(self.loader, self.cache, self.rules, self.clock(), self.new_id)
        record_ids, wanted = attempt.record_ids(commands)
        if wanted:
            near = [command_stream_ids(c)[0] for c in commands]
            attempt.adopt_records(wanted, (yield self.loader.key_records, (wanted, near)))
        to_read = attempt.wallets_to_read(commands)
        if to_read:
            attempt.adopt_wallets((yield self.loader.fold_all, (to_read,)))
        results = [
            attempt.apply(c, record_id) for c, record_id in zip(commands, record_ids, strict=True)
        ]
        if attempt.to_save:
            yield self.log.append, (attempt.to_save,)  # one transaction, all or nothing
        for state in attempt.changed_states():
            self.cache.put(state)
        return results

    def _evict(self, wallets: set[UUID]) -> None:
        for wallet in wallets:
            self.cache.mark_contended(wallet)

    def _locked(self, wallets: set[UUID]):
        return self._locks.held(wallets)

    # Queries.

    def wallet(self, player_id: str, currency: str) -> WalletState | None:
        """The wallet's current state, brought up to date with the store."""
        self.rules.currencies.get(currency)
        wallet = wallet_id(player_id, currency)
        state = self.loader.fold(wallet, self.cache.get(wallet))
        if state is not None:
            self.cache.put(state)
        return state

    def balances(self, player_id: str, currency: str) -> Balances:
        state = self.wallet(player_id, currency)
        return state.balances if state is not None else ZERO_BALANCES

    def transaction(self, scope: str, key: str) -> tuple[CommandRecorded, list[WalletEvent]] | None:
        """The idempotency record for (scope, key) and the wallet events it wrote."""
        record = self.loader.key_record(key_record_id(scope, key))
        if record is None:
            return None
        first, last = record.wallet_version_first, record.wallet_version_last
        if first > last:
            return record, []
        return record, self.wallet_events(
            record.wallet_id, after_version=first - 1, limit=last - first + 1
        )

    def wallet_events(
        self, wallet: UUID, *, after_version: int = 0, limit: int = limits.page_size_max
    ) -> list[WalletEvent]:
        """A page of a wallet's events: a player statement."""
        if not 0 < limit <= limits.page_size_max:
            raise InvalidArgument("limit", f"must be between 1 and {limits.page_size_max}")
        return [
            event for event, _ in self.log.read_stream(wallet, after=after_version, limit=limit)
        ]


def _after_failure(failure: Exception, attempt: Callable[..., Any]) -> Callable[..., Any]:
    """attempt, as the retry policy sees it after a first attempt made outside it failed:
    its first call raises that failure (counted, evicting and waiting as the policy says),
    the later ones attempt again. Sync or async, as attempt is."""
    pending = [failure]

    def replayed(*args: Any) -> Any:
        if pending:
            raise pending.pop()
        return attempt(*args)

    if not asyncio.iscoroutinefunction(attempt):
        return replayed

    async def replayed_async(*args: Any) -> Any:
        return await replayed(*args)

    return replayed_async


def _reassembled(parts: list[list[int]], answers: list[list[CommandResult]]) -> list[CommandResult]:
    """The parts' results put back in the order of the commands' indices."""
    placed: dict[int, CommandResult] = {}
    for indices, results in zip(parts, answers, strict=True):
        placed.update(zip(indices, results, strict=True))
    return [placed[index] for index in range(len(placed))]
