"""The audit's bijection between idempotency records and the events their commands wrote.

Rules, from how the engine writes (`ledger.batch`): a command's wallet or suspense events
and then its `CommandRecorded` are appended in one transaction, in that order; the record
names the stream and the versions it wrote (first..last, both included, an empty range when
nothing was written); every event carries the command's key, time and journal id; a refusal
on an existing wallet writes one `CommandRefused` as its last event; an attribution's
`SuspenseAttributed` also resolves its item with the item's version 2.

So every wallet and suspense event must be claimed by exactly one record that follows it,
with the same key and time; a record's outcome must be what its chained events show (a
success, or the refusal they name); and a record that wrote nothing must be a refusal where
there was no stream to write to. An insider who deletes a record, forges an event without
one, or edits a refusal's outcome or a record's time, is caught here.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ledger.core.commands import HoldInSuspense, ReturnSuspense
from ledger.core.events import (
    CommandRecorded, CommandRefused, SuspenseAttributed, WalletEvent, event_tag,
)  # fmt: skip
from ledger.core.outcomes import Outcome
from ledger.wallets import suspense_item_id

# Reports a finding about the event at (position, stream, version).
Find = Callable[[int, UUID, int, str], None]
_ITEM_COMMANDS = frozenset(event_tag(t) for t in (HoldInSuspense, ReturnSuspense))


@dataclass(frozen=True, slots=True)
class _Written:
    """What the audit keeps of an event until its record claims it."""

    position: int
    key: str
    recorded_at: datetime
    journal_id: UUID
    refusal: tuple[str, str] | None  # (command type, outcome) of a CommandRefused
    item: tuple[UUID, int] | None  # the suspense item event an attribution resolves


def _written(position: int, event: WalletEvent) -> _Written:
    refusal = (event.command_type, event.outcome) if isinstance(event, CommandRefused) else None
    item = None
    if isinstance(event, SuspenseAttributed):
        item = (suspense_item_id(event.currency, event.item_key), 2)
    return _Written(position, event.key, event.recorded_at, event.journal_id, refusal, item)


class RecordClaims:
    """Events waiting for their record, and the checks made when it comes."""

    def __init__(self, find: Find) -> None:
        self.find = find
        self.unclaimed: dict[tuple[UUID, int], _Written] = {}

    def event(self, position: int, event: WalletEvent) -> None:
        self.unclaimed[(event.originator_id, event.originator_version)] = _written(position, event)

    def record(self, position: int, record: CommandRecorded) -> None:
        first, last = record.wallet_version_first, record.wallet_version_last
        if first == last + 1:
            self._wrote_nothing(position, record)
            return
        if not 1 <= first <= last:
            self._find(position, record, f"record names versions {first} to {last}")
            return
        span = range(first, last + 1)
        written = [self._claim(position, record, (record.wallet_id, v)) for v in span]
        claimed = [w for w in written if w is not None]
        for item in [w.item for w in claimed if w.item is not None]:
            self._claim(position, record, item)
        if len(claimed) == len(written):
            self._check_outcome(position, record, claimed)

    def finish(self) -> None:
        """Reports every event no record claimed, in log order."""
        in_log_order = sorted(self.unclaimed.items(), key=lambda item: item[1].position)
        for (stream, version), written in in_log_order:
            self.find(written.position, stream, version, "event belongs to no idempotency record")
        self.unclaimed.clear()

    def _claim(self, position: int, record: CommandRecorded, event: tuple[UUID, int]):
        written = self.unclaimed.pop(event, None)
        if written is None:
            self._find(position, record, f"record claims {event[0]} v{event[1]}, which is missing, "
                                         "later, or another record's")  # fmt: skip
            return None
        if written.key != record.key:
            self._find(position, record, f"record of key {record.key!r} claims an event of key "
                                         f"{written.key!r} (#{written.position})")  # fmt: skip
        if written.recorded_at != record.recorded_at:
            self._find(position, record, f"record's time {record.recorded_at.isoformat()} differs "
                                         f"from its event's (#{written.position})")  # fmt: skip
        return written

    def _check_outcome(self, position: int, record: CommandRecorded, claimed: list[_Written]):
        refusals = [w for w in claimed if w.refusal is not None]
        if not refusals:
            if record.outcome != Outcome.OK.value:
                self._find(position, record, f"record says {record.outcome}, its events say OK")
            elif any(w.journal_id != record.journal_id for w in claimed):
                self._find(position, record, "record's journal id differs from its events'")
            return
        if len(refusals) > 1 or refusals[-1] is not claimed[-1]:
            self._find(position, record, "a refusal that is not its command's last event")
        chained = refusals[-1].refusal
        assert chained is not None
        if (record.command_type, record.outcome) != chained:
            said = f"{record.command_type} {record.outcome}"
            self._find(position, record, f"record says {said}, its chained refusal "
                                         f"{chained[0]} {chained[1]}")  # fmt: skip
        if record.journal_id is not None:
            self._find(position, record, "a refusal's record names a journal")

    def _wrote_nothing(self, position: int, record: CommandRecorded) -> None:
        if record.outcome == Outcome.OK.value:
            self._find(position, record, "a success whose record names no events")
        elif record.command_type not in _ITEM_COMMANDS and record.wallet_version_last != 0:
            self._find(position, record, f"a refusal of wallet {record.wallet_id} at "
                                         f"v{record.wallet_version_last} without its chained "
                                         "CommandRefused")  # fmt: skip

    def _find(self, position: int, record: CommandRecorded, problem: str) -> None:
        self.find(position, record.originator_id, record.originator_version, problem)
