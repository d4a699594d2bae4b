"""Suspense: money that reached a rail but belongs to no known player (docs/contract.md, Accounts).

Each suspense item is a stream of its own, never a wallet: `SuspenseReceived` (rail ->
`suspense:{ccy}`) at version 1, then exactly one `SuspenseResolved` at version 2. An item
is resolved by returning it to its rail, or by attributing it to a player, which is a late
deposit into the player's wallet written in the same transaction as the item's version 2.
So `suspense:{ccy}` stays a projection that no command locks, and the event table's primary
key lets an item be resolved once, whatever the resolving commands' idempotency keys.
"""

import msgspec
from msgspec.structs import replace

from ledger.core import accounts as a
from ledger.core import commands as c
from ledger.core import events as e
from ledger.core.chain import chain_digest, genesis_hash
from ledger.core.decide_limits import deposit_exceeds_limit, is_self_excluded
from ledger.core.draft import Context, Draft, posting
from ledger.core.errors import ChainBroken
from ledger.core.outcomes import Outcome
from ledger.core.state import ITEM_ATTRIBUTED, ITEM_HELD, ITEM_RETURNED, SuspenseItem


class ItemDecision(msgspec.Struct, frozen=True):
    """The outcome of a command on a suspense item's own stream and what it appends."""

    outcome: Outcome
    events: tuple[e.WalletEvent, ...]
    item: SuspenseItem | None


def evolve_item(item: SuspenseItem | None, event: e.WalletEvent, event_digest: str):
    """The item after `event`, whose canonical digest is `event_digest`; checks the chain."""
    expected = (
        (1, genesis_hash(event.originator_id))
        if item is None
        else (item.version + 1, item.head_hash)
    )
    if (event.originator_version, event.previous_hash) != expected:
        raise ChainBroken(
            f"suspense item {event.originator_id}: chain broken at v{event.originator_version}"
        )
    if isinstance(event, e.SuspenseReceived) and item is None:
        return SuspenseItem(
            item_id=event.originator_id,
            key=event.key,
            currency=event.currency,
            amount=event.amount,
            rail=event.rail,
            rail_id=event.rail_id,
            version=1,
            head_hash=event_digest,
        )
    if isinstance(event, e.SuspenseResolved) and item is not None and item.status == ITEM_HELD:
        return replace(item, status=event.resolution, version=2, head_hash=event_digest)
    raise ChainBroken(f"suspense item {event.originator_id}: unexpected {type(event).__name__}")


def decide_hold(item: SuspenseItem | None, command: c.HoldInSuspense, context: Context):
    """Opens the item named by the command's key. Its record makes a resend a replay, so
    an existing item here means the key was reused under another scope's record: refused."""
    if item is not None:
        return ItemDecision(Outcome.INVALID_STATE, (), item)
    event = _item_event(
        e.SuspenseReceived,
        None,
        command,
        context,
        (
            posting(
                a.rail_account(command.rail, command.rail_id, command.currency), -command.amount
            ),
            posting(a.suspense(command.currency), command.amount),
        ),
        amount=command.amount,
        rail=command.rail,
        rail_id=command.rail_id,
        reason=command.reason,
    )
    return ItemDecision(Outcome.OK, (event,), evolve_item(None, event, _digest(event)))


def decide_return(item: SuspenseItem | None, command: c.ReturnSuspense, context: Context):
    """Pays a held item back to the rail it came from."""
    if item is None or item.status != ITEM_HELD:
        return ItemDecision(Outcome.INVALID_STATE, (), item)
    event = _item_event(
        e.SuspenseResolved,
        item,
        command,
        context,
        (
            posting(a.suspense(command.currency), -item.amount),
            posting(a.rail_account(item.rail, item.rail_id, command.currency), item.amount),
        ),
        resolution=ITEM_RETURNED,
        amount=item.amount,
    )
    return ItemDecision(Outcome.OK, (event,), evolve_item(item, event, _digest(event)))


def decide_attribute(draft: Draft, command: c.AttributeSuspense) -> Outcome:
    """A late deposit: refused like a Deposit for a self-excluded player or over a deposit
    limit (the item stays held, to be returned); an unknown or resolved item is
    INVALID_STATE. On success the item's resolution joins the draft as an item event."""
    state, now, item = draft.wallet, draft.context.now, draft.context.suspense_item
    if is_self_excluded(state, now):
        return Outcome.PLAYER_BLOCKED
    if item is None or item.status != ITEM_HELD:
        return Outcome.INVALID_STATE
    if deposit_exceeds_limit(state, now, item.amount):
        return Outcome.LIMIT_EXCEEDED
    draft.emit(
        e.SuspenseAttributed,
        (
            posting(a.suspense(command.currency), -item.amount),
            posting(a.player_cash(command.player_id, command.currency), item.amount),
        ),
        item_key=item.key,
        amount=item.amount,
        rail=item.rail,
        rail_id=item.rail_id,
    )
    draft.item_events.append(
        _item_event(
            e.SuspenseResolved,
            item,
            command,
            draft.context,
            (),
            resolution=ITEM_ATTRIBUTED,
            amount=item.amount,
            player_id=command.player_id,
        )
    )
    return Outcome.OK


def _item_event(
    event_type,
    item: SuspenseItem | None,
    command: c.Command,
    context: Context,
    postings: tuple[e.Posting, ...],
    **fields,
) -> e.WalletEvent:
    assert sum(p.amount for p in postings) == 0, postings
    item_id = context.wallet_id if item is None else item.item_id
    return event_type(
        originator_id=item_id,
        originator_version=1 if item is None else item.version + 1,
        recorded_at=context.now,
        previous_hash=genesis_hash(item_id) if item is None else item.head_hash,
        journal_id=context.journal_id,
        key=command.idempotency_key,
        currency=command.currency,
        postings=postings,
        occurred_at=command.occurred_at,
        **fields,
    )


def _digest(event: e.WalletEvent) -> str:
    return chain_digest(event)
