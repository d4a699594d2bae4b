"""One attempt at a batch: prefetch, decide in order, collect what to append.

Nothing here writes. The attempt keeps working copies of the wallets and of the
idempotency records it creates, so a key repeated inside one batch is a replay of the
first, and a wallet's later command sees the earlier command's effect.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from ledger.core.chain import chain_digest
from ledger.core.commands import (
    ITEM_COMMANDS,
    AttributeSuspense,
    Command,
    HoldInSuspense,
    ReturnSuspense,
    Rollback,
    idempotency_scope,
)
from ledger.core.decide import decide
from ledger.core.draft import Context
from ledger.core.events import CommandRecorded, StoredEventBase, event_tag
from ledger.core.fingerprint import fingerprint
from ledger.core.outcomes import Outcome
from ledger.core.policy import Rules
from ledger.core.state import ZERO_BALANCES, Balances, SuspenseItem, WalletState
from ledger.core.suspense import decide_hold, decide_return, evolve_item
from ledger.service.results import CommandResult
from ledger.service.wallets import (
    WalletCache,
    WalletLoader,
    command_record_id,
    command_stream_ids,
    key_record_id,
    suspense_item_id,
    wallet_id,
)


class BatchAttempt:
    def __init__(
        self,
        loader: WalletLoader,
        cache: WalletCache,
        rules: Rules,
        now: datetime,
        new_id: Callable[[], UUID],
    ) -> None:
        self.loader = loader
        self.cache = cache
        self.rules = rules
        self.now = now
        self.new_id = new_id
        self.initial: dict[UUID, WalletState | None] = {}
        self.wallets: dict[UUID, WalletState | None] = {}
        self.records: dict[UUID, CommandRecorded | None] = {}
        self.items: dict[UUID, SuspenseItem | None] = {}
        self.to_save: list[StoredEventBase] = []

    def record_ids(self, commands: Sequence[Command]) -> tuple[list[UUID], list[UUID]]:
        """Each command's idempotency record id, for `apply` (deriving one is a SHA-1, so it
        is done once), and the ids whose records must be read (`adopt_records`): the
        commands' own, and those of the keys rollbacks target, whose wallets they name."""
        record_ids = [command_record_id(c) for c in commands]
        targets = [_target_record_id(c) for c in commands if isinstance(c, Rollback)]
        return record_ids, list({*record_ids, *targets} - self.records.keys())

    def adopt_records(self, wanted: list[UUID], found: dict[UUID, CommandRecorded]) -> None:
        """Takes the records read for the wanted ids; an id not found has none yet."""
        for record_id in wanted:
            self.records[record_id] = found.get(record_id)

    def wallets_to_read(self, commands: Sequence[Command]) -> dict[UUID, WalletState | None]:
        """Takes the batch's wallets the cache holds and can trust, and returns the others, to
        be brought up to date from the store before deciding (`adopt_wallets`), each with the
        state to fold forward from: None for one the cache does not hold, the cached state
        for one another process is contending (not to be trusted as it is)."""
        wallets = {
            wallet_id(c.player_id, c.currency) for c in commands if not isinstance(c, ITEM_COMMANDS)
        }
        to_read = {}
        for wallet in wallets - self.wallets.keys():
            state = self.cache.get(wallet)
            if state is None or self.cache.is_contended(wallet):
                to_read[wallet] = state
            else:
                self.initial[wallet] = self.wallets[wallet] = state
        return to_read

    def adopt_wallets(self, states: dict[UUID, WalletState | None]) -> None:
        for wallet, state in states.items():
            self.initial[wallet] = self.wallets[wallet] = state

    def apply(self, command: Command, record_id: UUID) -> CommandResult:
        """Decides one command whose idempotency record id is record_id; its wallet was
        taken beforehand (`wallets_to_read`, then `adopt_wallets` for those read)."""
        if isinstance(command, ITEM_COMMANDS):
            return self._apply_to_item(command, record_id)
        wallet = wallet_id(command.player_id, command.currency)
        state = self.wallets[wallet]  # taken by wallets_to_read and adopt_wallets
        record = self.records[record_id]  # read by record_ids and adopt_records
        if record is not None:
            return _replay(record, command, state)
        context = Context(
            now=self.now,
            journal_id=self.new_id(),
            wallet_id=wallet,
            rules=self.rules,
            suspense_item=self._attributed_item(command),
            target_wallet_id=self._target_wallet(command),
        )
        decision = decide(state, command, context)
        current = state
        if decision.events:  # a success, or a refusal (with any time-driven events before it)
            current = self.wallets[wallet] = decision.state
            self.to_save.extend(decision.events)
            self._append_item_events(context.suspense_item, decision.item_events)
        journal_id = context.journal_id if decision.outcome is Outcome.OK else None
        span = _written(wallet, state, decision.events)
        after = _balances(current)
        return self._recorded(command, record_id, decision.outcome, journal_id, span, after)

    def _apply_to_item(
        self, command: HoldInSuspense | ReturnSuspense, record_id: UUID
    ) -> CommandResult:
        """A command on a suspense item's own stream; it touches no player wallet."""
        (item_id,) = command_stream_ids(command)
        item = self._item(item_id)
        record = self.records[record_id]  # read by record_ids and adopt_records
        if record is not None:
            return _replay(record, command, None)
        context = Context(
            now=self.now, journal_id=self.new_id(), wallet_id=item_id, rules=self.rules
        )
        decide_item = decide_hold if isinstance(command, HoldInSuspense) else decide_return
        decision = decide_item(item, command, context)  # type: ignore[arg-type]
        if decision.events:
            self.items[item_id] = decision.item
            self.to_save.extend(decision.events)
        journal_id = context.journal_id if decision.outcome is Outcome.OK else None
        span = _written(item_id, item, decision.events)
        return self._recorded(command, record_id, decision.outcome, journal_id, span, ZERO_BALANCES)

    def _recorded(
        self,
        command: Command,
        record_id: UUID,
        outcome: Outcome,
        journal_id: UUID | None,
        stream: tuple[UUID, int, int],
        after: Balances,
    ) -> CommandResult:
        """Appends the command's idempotency record and answers with its outcome."""
        stream_id, first, last = stream
        record = CommandRecorded(
            originator_id=record_id,
            originator_version=1,
            recorded_at=self.now,
            scope=idempotency_scope(command),
            key=command.idempotency_key,
            command_type=event_tag(type(command)),
            fingerprint=fingerprint(command),
            outcome=outcome.value,
            journal_id=journal_id,
            wallet_id=stream_id,
            wallet_version_first=first,
            wallet_version_last=last,
            cash=after.cash,
            bonus=after.bonus,
            held=after.held,
            player_id=command.player_id,
            currency=command.currency,
        )
        self.records[record_id] = record
        self.to_save.append(record)
        return CommandResult(
            outcome=outcome,
            original_outcome=outcome,
            journal_id=journal_id,
            balances=after,
            balances_after=after,
            wallet_version=last,
        )

    def _target_wallet(self, command: Command) -> UUID | None:
        """For a rollback, the wallet of the command that holds its target key, if any; the
        record was read by record_ids and adopt_records, or written earlier in this batch."""
        if not isinstance(command, Rollback):
            return None
        target = self.records.get(_target_record_id(command))
        return target.wallet_id if target is not None else None

    def _attributed_item(self, command: Command) -> SuspenseItem | None:
        if not isinstance(command, AttributeSuspense):
            return None
        return self._item(suspense_item_id(command.currency, command.item_key))

    def _append_item_events(self, item: SuspenseItem | None, events) -> None:
        for event in events:
            item = evolve_item(item, event, chain_digest(event))
            self.items[event.originator_id] = item
            self.to_save.append(event)

    def changed_states(self) -> list[WalletState]:
        return [
            state
            for wallet, state in self.wallets.items()
            if state is not None and state is not self.initial[wallet]
        ]

    def _item(self, item_id: UUID) -> SuspenseItem | None:
        """Items are rare and read fresh from the store, never from the wallet cache."""
        if item_id not in self.items:
            self.items[item_id] = self.loader.fold_item(item_id)
        return self.items[item_id]


def _target_record_id(rollback: Rollback) -> UUID:
    """The record of the command a rollback targets: same provider scope, the target key."""
    return key_record_id(idempotency_scope(rollback), rollback.target_key)


def _written(stream: UUID, before: WalletState | SuspenseItem | None, events):
    """The (stream, first, last) versions a command wrote, both included: an empty range
    (first = last + 1, last the stream's current version) when it wrote nothing."""
    if not events:
        version = before.version if before is not None else 0
        return stream, version + 1, version
    assert events[-1].originator_version - events[0].originator_version == len(events) - 1
    return stream, events[0].originator_version, events[-1].originator_version


def _replay(record: CommandRecorded, command: Command, state: WalletState | None) -> CommandResult:
    current = _balances(state)
    version = state.version if state is not None else 0
    if record.fingerprint != fingerprint(command):
        return CommandResult(
            outcome=Outcome.CONFLICT,
            original_outcome=Outcome(record.outcome),
            journal_id=None,
            balances=current,
            balances_after=current,
            wallet_version=version,
        )
    original = Outcome(record.outcome)
    return CommandResult(
        outcome=Outcome.DUPLICATE if original is Outcome.OK else original,
        original_outcome=original,
        journal_id=record.journal_id,
        balances=current,
        balances_after=Balances(record.cash, record.bonus, record.held),
        wallet_version=version,
    )


def _balances(state: WalletState | None) -> Balances:
    return state.balances if state is not None else ZERO_BALANCES
