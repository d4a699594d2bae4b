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


# An event awaiting its record: its log position and the event itself.
Waiting = tuple[int, WalletEvent]


class RecordClaims:
    """Events waiting for their record, and the checks made when it comes."""

    def __init__(self, find: Find) -> None:
        self.find = find
        # Keyed by (stream id as an int, version): an int hashes in C, a UUID in Python.
        self.unclaimed: dict[tuple[int, int], Waiting] = {}

    def event(self, position: int, event: WalletEvent) -> None:
        self.unclaimed[(event.originator_id.int, event.originator_version)] = (position, event)

    def record(self, position: int, record: CommandRecorded) -> None:
        first, last = record.wallet_version_first, record.wallet_version_last
        if first == last + 1:
            self._wrote_nothing(position, record)
            return
        if not 1 <= first <= last:
            self._find(position, record, f"record names versions {first} to {last}")
            return
        span = range(first, last + 1)
        claimed = [self._claim(position, record, record.wallet_id, v) for v in span]
        found = [event for event in claimed if event is not None]
        for event in found:
            if isinstance(event, SuspenseAttributed):  # it resolves its item, version 2
                item = suspense_item_id(event.currency, event.item_key)
                self._claim(position, record, item, 2)
        if len(found) == len(claimed):
            self._check_outcome(position, record, found)

    def finish(self) -> None:
        """Reports every event no record claimed, in log order."""
        for at, event in sorted(self.unclaimed.values(), key=lambda waiting: waiting[0]):
            self.find(at, event.originator_id, event.originator_version,
                      "event belongs to no idempotency record")  # fmt: skip
        self.unclaimed.clear()

    def _claim(self, position: int, record: CommandRecorded, stream: UUID, version: int):
        """The event at (stream, version), taken from the waiting ones and checked against
        the record; None (and a finding) if it is not waiting."""
        waiting = self.unclaimed.pop((stream.int, version), None)
        if waiting is None:
            self._find(position, record, f"record claims {stream} v{version}, which is missing, "
                                         "later, or another record's")  # fmt: skip
            return None
        at, event = waiting
        if event.key != record.key:
            self._find(position, record, f"record of key {record.key!r} claims an event of key "
                                         f"{event.key!r} (#{at})")  # fmt: skip
        if event.recorded_at != record.recorded_at:
            self._find(position, record, f"record's time {record.recorded_at.isoformat()} differs "
                                         f"from its event's (#{at})")  # fmt: skip
        return event

    def _check_outcome(self, position: int, record: CommandRecorded, events: list[WalletEvent]):
        refusals = [event for event in events if isinstance(event, CommandRefused)]
        if not refusals:
            if record.outcome != Outcome.OK.value:
                self._find(position, record, f"record says {record.outcome}, its events say OK")
            elif any(event.journal_id != record.journal_id for event in events):
                self._find(position, record, "record's journal id differs from its events'")
            return
        if len(refusals) > 1 or refusals[-1] is not events[-1]:
            self._find(position, record, "a refusal that is not its command's last event")
        chained = (refusals[-1].command_type, refusals[-1].outcome)
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
