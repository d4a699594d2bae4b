"""Folding a page of stored events into the view changes it causes. Pure: no I/O.

A page's changes are written together with the new tracking position in one transaction,
so a crash anywhere leaves either the whole page applied or none of it.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from ledger.core.events import CommandRecorded, StoredEventBase, WalletEvent, event_tag
from projections.views import Operations, fold_views


@dataclass(frozen=True, slots=True)
class PostingRow:
    """One journal line: a posting with everything a statement or an auditor needs."""

    position: int  # the event's position in its partition
    index: int  # the posting's place in its event
    journal_id: UUID
    wallet_id: UUID
    wallet_version: int
    event_type: str
    idempotency_key: str
    account: str
    currency: str
    amount: int  # minor units
    player_id: str | None
    recorded_at: datetime
    occurred_at: datetime | None
    provider: str | None = None  # of a game event
    round_id: str | None = None  # of a bet or win
    partition: int = 0  # the log partition the event is stored in


@dataclass(frozen=True, slots=True)
class KeyUse:
    """An idempotency record as a follower sees it: the wallet that used the key, and where
    the record is stored. The same record id stored twice is one key sent for two wallets."""

    record_id: UUID
    wallet_id: UUID
    scope: str
    key: str
    partition: int
    position: int


@dataclass
class PageChanges:
    """What one page of a log partition's events changes in the read models."""

    last_position: int
    partition: int = 0
    balance_deltas: defaultdict[tuple[str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )  # (account, currency) -> change
    debits: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    credits: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    postings: list[PostingRow] = field(default_factory=list)
    documents: Operations = field(default_factory=lambda: defaultdict(list))
    key_uses: list[KeyUse] = field(default_factory=list)  # when the follower tracks keys


def fold_page(
    page: list[tuple[int, StoredEventBase]],
    first_position: int,
    partition: int = 0,
    *,
    track_keys: bool = False,
) -> PageChanges:
    """The view changes of (position, event) pairs of one partition, in position order;
    with track_keys, every idempotency record's key use too (for a store that cannot refuse
    a key reused across partitions itself)."""
    changes = PageChanges(last_position=first_position - 1, partition=partition)
    for position, event in page:
        assert position > changes.last_position, (position, changes.last_position)
        changes.last_position = position
        if isinstance(event, WalletEvent):
            _fold_event(changes, position, event)
        elif track_keys and isinstance(event, CommandRecorded):
            changes.key_uses.append(
                KeyUse(
                    event.originator_id,
                    event.wallet_id,
                    event.scope,
                    event.key,
                    partition,
                    position,
                )
            )
    return changes


def _fold_event(changes: PageChanges, position: int, event: WalletEvent) -> None:
    tag = event_tag(type(event))
    fold_views(changes.documents, event, position)
    provider, round_id = getattr(event, "provider", None), getattr(event, "round_id", None)
    for index, posting in enumerate(event.postings):
        changes.balance_deltas[(posting.account, event.currency)] += posting.amount
        if posting.amount < 0:
            changes.debits[event.currency] -= posting.amount
        else:
            changes.credits[event.currency] += posting.amount
        changes.postings.append(
            PostingRow(
                position=position,
                index=index,
                journal_id=event.journal_id,
                wallet_id=event.originator_id,
                wallet_version=event.originator_version,
                event_type=tag,
                idempotency_key=event.key,
                account=posting.account,
                currency=event.currency,
                amount=posting.amount,
                player_id=player_of(posting.account),
                recorded_at=event.recorded_at,
                occurred_at=event.occurred_at,
                provider=provider,
                round_id=round_id,
                partition=changes.partition,
            )
        )


def player_of(account: str) -> str | None:
    """The player id of a `player:{id}:{kind}:{ccy}` account, None for other accounts."""
    parts = account.split(":")
    return parts[1] if parts[0] == "player" and len(parts) == 4 else None
