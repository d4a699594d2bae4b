"""The audit's bijection between idempotency records and the events their commands wrote.

Rules, from how the engine writes (`ledger.service.batch`): a command's wallet or suspense events
and then its `CommandRecorded` are appended in one transaction, in that order; the record
names the stream and the versions it wrote (first..last, both included, an empty range when
nothing was written); every event carries the command's key, time and journal id; a refusal
on an existing wallet writes one `CommandRefused` as its last event; an attribution's
`SuspenseAttributed` also resolves its item with the item's version 2.

So every wallet and suspense event must be claimed by exactly one record that follows it
(in a partitioned log, an attribution's item may sit in another partition than its record,
and partitions have no order between them: that one claim may come before its event),
with the same key, time and provider scope; a record's outcome must be what its chained
events show (a success, or the refusal they name, after nothing but a bonus expiry that came
due); a record that wrote nothing must be a refusal where there was no stream to write to;
and a record must sit where the engine looks for it (the stream its scope and key derive,
naming the wallet its player and currency derive). An insider who deletes a record, moves it
where the engine cannot find it, forges an event without one, or edits a refusal's outcome
or a record's time, is caught here.
"""

from collections.abc import Callable
from uuid import UUID

from ledger.core.commands import GameCommand, HoldInSuspense, ReturnSuspense
from ledger.core.events import (
    BonusDeficitCharged,
    BonusForfeited,
    CommandRecorded,
    CommandRefused,
    SuspenseAttributed,
    WalletEvent,
    event_tag,
)
from ledger.core.outcomes import Outcome
from ledger.service.wallets import key_record_int, suspense_item_id, wallet_id

# Reports a finding about the event at (position, stream, version).
Find = Callable[[int, UUID, int, str], None]
_ITEM_COMMANDS = frozenset(event_tag(t) for t in (HoldInSuspense, ReturnSuspense))
_GAME_COMMANDS = frozenset(event_tag(t) for t in GameCommand.__subclasses__())


def identity_problems(record: CommandRecorded) -> list[str]:
    """Where a record stands wrong: not in the stream its scope and key derive (the engine
    would never find it, and a resend would be applied again), a scope its command cannot
    have, or a wallet its player and currency do not derive."""
    problems = []
    if record.originator_id.int != key_record_int(record.scope, record.key):
        problems.append("record is not stored in the stream of its scope and key")
    is_game = record.command_type in _GAME_COMMANDS
    scope_fits = record.scope.startswith("provider:") if is_game else record.scope == "client"
    if not scope_fits:
        problems.append(f"a {record.command_type} record in scope {record.scope!r}")
    if record.command_type == event_tag(HoldInSuspense):
        if record.wallet_id != suspense_item_id(record.currency, record.key):
            problems.append("a suspense hold's record names another item's stream")
    elif record.command_type not in _ITEM_COMMANDS and record.wallet_id != wallet_id(
        record.player_id, record.currency
    ):
        problems.append(
            f"record's wallet is not the wallet of player {record.player_id!r} "
            f"in {record.currency!r}"
        )
    return problems


# An event awaiting its record: its log position and the event itself.
Waiting = tuple[int, WalletEvent]


class RecordClaims:
    """Events waiting for their record, and the checks made when it comes."""

    def __init__(self, find: Find, *, partitioned: bool = False) -> None:
        self.find = find
        self.partitioned = partitioned
        # Keyed by (stream id as an int, version): an int hashes in C, a UUID in Python.
        self.unclaimed: dict[tuple[int, int], Waiting] = {}
        # A partitioned log's item claims made before their event was read: the record.
        self.early: dict[tuple[int, int], tuple[int, CommandRecorded]] = {}

    def event(self, position: int, event: WalletEvent) -> None:
        key = (event.originator_id.int, event.originator_version)
        self.unclaimed[key] = (position, event)
        early = self.early.pop(key, None)
        if early is not None:
            self._claim(*early, event.originator_id, event.originator_version)

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
                self._claim_item(position, record, event)
        if len(found) == len(claimed):
            self._check_outcome(position, record, found)

    def _claim_item(self, position: int, record: CommandRecorded, event: SuspenseAttributed):
        item = suspense_item_id(event.currency, event.item_key)
        if self.partitioned and (item.int, 2) not in self.unclaimed:
            self.early[(item.int, 2)] = (position, record)  # claimed when it is read
            return
        self._claim(position, record, item, 2)

    def finish(self) -> None:
        """Reports every event no record claimed, in log order, and every early claim
        whose event never came."""
        for (stream, version), (position, record) in self.early.items():
            self._find(
                position, record, f"record claims {UUID(int=stream)} v{version}, which is missing"
            )
        self.early.clear()
        for at, event in sorted(self.unclaimed.values(), key=lambda waiting: waiting[0]):
            self.find(
                at,
                event.originator_id,
                event.originator_version,
                "event belongs to no idempotency record",
            )
        self.unclaimed.clear()

    def _claim(self, position: int, record: CommandRecorded, stream: UUID, version: int):
        """The event at (stream, version), taken from the waiting ones and checked against
        the record; None (and a finding) if it is not waiting."""
        waiting = self.unclaimed.pop((stream.int, version), None)
        if waiting is None:
            self._find(
                position,
                record,
                f"record claims {stream} v{version}, which is missing, later, or another record's",
            )
            return None
        at, event = waiting
        provider = getattr(event, "provider", None)
        if provider is not None and record.scope != f"provider:{provider}":
            self._find(
                position,
                record,
                f"record in scope {record.scope!r} claims an event of "
                f"provider {provider!r} (#{at})",
            )
        if event.key != record.key:
            self._find(
                position,
                record,
                f"record of key {record.key!r} claims an event of key {event.key!r} (#{at})",
            )
        if event.recorded_at != record.recorded_at:
            self._find(
                position,
                record,
                f"record's time {record.recorded_at.isoformat()} differs from its event's (#{at})",
            )
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
        if not all(map(_came_due, events[:-1])):
            self._find(position, record, "a refusal after events that are not a bonus expiry")
        chained = (refusals[-1].command_type, refusals[-1].outcome)
        if (record.command_type, record.outcome) != chained:
            said = f"{record.command_type} {record.outcome}"
            self._find(
                position,
                record,
                f"record says {said}, its chained refusal {chained[0]} {chained[1]}",
            )
        if record.journal_id is not None:
            self._find(position, record, "a refusal's record names a journal")

    def _wrote_nothing(self, position: int, record: CommandRecorded) -> None:
        """A record whose command wrote nothing: a refusal, on a stream that did not exist
        when it was decided (a wallet; or a suspense item, which never takes refusals)."""
        if record.outcome == Outcome.OK.value:
            self._find(position, record, "a success whose record names no events")
        elif record.command_type not in _ITEM_COMMANDS and record.wallet_version_last != 0:
            self._find(
                position,
                record,
                f"a refusal of wallet {record.wallet_id} at "
                f"v{record.wallet_version_last} without its chained "
                "CommandRefused",
            )

    def _find(self, position: int, record: CommandRecorded, problem: str) -> None:
        self.find(position, record.originator_id, record.originator_version, problem)


def _came_due(event: WalletEvent) -> bool:
    """What a refused command may write before its refusal: a bonus expiry that came due
    (its forfeit, and the deficit charged to cash first), nothing of the command's own."""
    if isinstance(event, BonusForfeited):
        return event.reason == "expired"
    return isinstance(event, BonusDeficitCharged)
