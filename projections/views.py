"""The console's read models as documents: one small JSON document per wallet, suspense
item, withdrawal and (day, currency), changed by operations folded from a page. Pure: no I/O.

A page yields, per document, the operations its events cause, in event order; the store
loads the documents a page touches, applies the operations (`apply_operations`) and writes
them back in the page's transaction, so a document changes exactly once per event.
Amounts inside documents are decimal strings of minor units: exact on both stores.
"""

from collections import defaultdict
from datetime import datetime

from ledger.core import events as e
from ledger.core.events import event_tag

WALLET = "wallet"
SUSPENSE = "suspense"
WITHDRAWAL = "withdrawal"
DAILY = "daily"
NOTE = "note"  # a wallet event that moves no money (limits, refusals): still on the statement
KINDS = (WALLET, SUSPENSE, WITHDRAWAL, DAILY, NOTE)
_ITEM_EVENTS = (e.SuspenseReceived, e.SuspenseResolved)  # an item's stream, not a wallet's

# ("set", {field: value}) replaces fields; ("add", {field: delta}) adds to integer fields;
# ("wager", delta) moves the active bonus's wagering progress.
Operation = tuple[str, object]
DocumentKey = tuple[str, str]  # (kind, key)
Operations = defaultdict[DocumentKey, list[Operation]]

_LIMIT_FIELDS = (
    "deposit_limit_24h",
    "deposit_limit_7d",
    "deposit_limit_30d",
    "loss_limit_24h",
    "loss_limit_7d",
    "loss_limit_30d",
)
_NO_BONUS = {
    "bonus_id": None,
    "bonus_amount": None,
    "wagering_required": None,
    "wagering_progress": None,
    "bonus_expires_at": None,
}


def fold_views(operations: Operations, event: e.WalletEvent, position: int) -> None:
    """Adds the document operations one wallet event causes."""
    _fold_daily(operations, event)
    if not event.postings and not isinstance(event, _ITEM_EVENTS):
        _note(operations, event, position)
    folder = _FOLDERS.get(type(event))
    if folder is not None:
        folder(operations, event)


def note_key(wallet_id: str, position: int) -> str:
    """Notes of one wallet sort by position under its id (a key range per wallet)."""
    return f"{wallet_id}:{position:020d}"


def _note(operations: Operations, event: e.WalletEvent, position: int) -> None:
    detail = getattr(event, "command_type", "") + " " + getattr(event, "outcome", "")
    fields = {
        "event": event_tag(type(event)),
        "idempotency_key": event.key,
        "recorded_at": _iso(event.recorded_at),
        "position": position,
        "currency": event.currency,
        "detail": detail.strip(),
    }
    operations[(NOTE, note_key(str(event.originator_id), position))].append(("set", fields))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _wallet_key(event: e.WalletEvent) -> DocumentKey:
    return (WALLET, str(event.originator_id))


def _opened(operations: Operations, event: e.WalletOpened) -> None:
    fields = {
        "player_id": event.player_id,
        "currency": event.currency,
        "opened_at": _iso(event.recorded_at),
        **_NO_BONUS,
    }
    operations[_wallet_key(event)].append(("set", fields))


def _limits(operations: Operations, event: e.LimitsChanged) -> None:
    pending = event.pending
    fields = {
        "limits": _limit_document(event.active),
        "pending_limits": _limit_document(pending) if pending is not None else None,
        "pending_effective_at": _iso(event.pending_effective_at),
    }
    operations[_wallet_key(event)].append(("set", fields))


def _limit_document(limit_set: e.LimitSet) -> dict[str, str | None]:
    document = {name: _text(getattr(limit_set, name)) for name in _LIMIT_FIELDS}
    document["self_excluded_until"] = _iso(limit_set.self_excluded_until)
    return document


def _text(amount: int | None) -> str | None:
    return str(amount) if amount is not None else None


def _bonus_granted(operations: Operations, event: e.BonusGranted) -> None:
    fields = {
        "bonus_id": event.key,
        "bonus_amount": str(event.amount),
        "wagering_required": str(event.wagering_required),
        "wagering_progress": "0",
        "bonus_expires_at": _iso(event.expires_at),
    }
    operations[_wallet_key(event)].append(("set", fields))


def _bonus_ended(operations: Operations, event: e.WalletEvent) -> None:
    operations[_wallet_key(event)].append(("set", dict(_NO_BONUS)))


def _bet(operations: Operations, event: e.BetPlaced) -> None:
    if event.bonus_id is not None and event.wagering_contribution:
        wager = (event.bonus_id, event.wagering_contribution)
        operations[_wallet_key(event)].append(("wager", wager))


def _bet_rolled_back(operations: Operations, event: e.BetRolledBack) -> None:
    # The contribution comes off the bet's bonus only, if it is still the active one; a
    # rollback stored before the event named the bet's bonus takes it off the active one.
    if event.wagering_contribution:
        wager = (event.bonus_id, -event.wagering_contribution)
        operations[_wallet_key(event)].append(("wager", wager))


def _suspense_received(operations: Operations, event: e.SuspenseReceived) -> None:
    fields = {
        "item_key": event.key,
        "currency": event.currency,
        "amount": str(event.amount),
        "rail": event.rail,
        "rail_id": event.rail_id,
        "reason": event.reason,
        "status": "held",
        "sort": _iso(event.recorded_at),
        "player_id": None,
    }
    operations[(SUSPENSE, str(event.originator_id))].append(("set", fields))


def _suspense_resolved(operations: Operations, event: e.SuspenseResolved) -> None:
    fields = {
        "status": event.resolution,
        "player_id": event.player_id,
        "resolved_at": _iso(event.recorded_at),
    }
    operations[(SUSPENSE, str(event.originator_id))].append(("set", fields))


def _withdrawal_key(event: e.WalletEvent, key: str) -> DocumentKey:
    return (WITHDRAWAL, f"{event.originator_id}:{key}")


def _withdrawal_requested(operations: Operations, event: e.WithdrawalRequested) -> None:
    player_id = next((_player(p.account) for p in event.postings if _player(p.account)), None)
    fields = {
        "withdrawal_key": event.key,
        "player_id": player_id,
        "currency": event.currency,
        "amount": str(event.amount),
        "rail": event.rail,
        "rail_id": event.rail_id,
        "status": "pending",
        "sort": _iso(event.recorded_at),
    }
    operations[_withdrawal_key(event, event.key)].append(("set", fields))


def _withdrawal_completed(operations: Operations, event: e.WithdrawalCompleted) -> None:
    fields = {"status": "completed", "settled_at": _iso(event.recorded_at)}
    operations[_withdrawal_key(event, event.withdrawal_key)].append(("set", fields))


def _withdrawal_released(operations: Operations, event: e.WithdrawalReleased) -> None:
    fields = {"status": event.reason, "settled_at": _iso(event.recorded_at)}
    operations[_withdrawal_key(event, event.withdrawal_key)].append(("set", fields))


def _player(account: str) -> str | None:
    parts = account.split(":")
    return parts[1] if parts[0] == "player" and len(parts) == 4 else None


def _fold_daily(operations: Operations, event: e.WalletEvent) -> None:
    """Gross gaming revenue (what the house games accounts gained), deposits (including
    attributed suspense) and completed withdrawals, per UTC day and currency."""
    deltas = {}
    ggr = sum(p.amount for p in event.postings if p.account.startswith("house:games:"))
    if ggr:
        deltas["ggr"] = ggr  # stakes credit the house games accounts, wins debit them
    if isinstance(event, e.Deposited | e.SuspenseAttributed):
        deltas["deposits"] = event.amount
    elif isinstance(event, e.WithdrawalCompleted):
        deltas["withdrawals"] = event.amount
    if deltas:
        day = event.recorded_at.date().isoformat()
        key = (DAILY, f"{event.currency}:{day}")
        base = {"currency": event.currency, "sort": day}
        operations[key].extend((("set", base), ("add", deltas)))


_FOLDERS = {
    e.WalletOpened: _opened,
    e.LimitsChanged: _limits,
    e.BonusGranted: _bonus_granted,
    e.BonusForfeited: _bonus_ended,
    e.BonusConverted: _bonus_ended,
    e.BetPlaced: _bet,
    e.BetRolledBack: _bet_rolled_back,
    e.SuspenseReceived: _suspense_received,
    e.SuspenseResolved: _suspense_resolved,
    e.WithdrawalRequested: _withdrawal_requested,
    e.WithdrawalCompleted: _withdrawal_completed,
    e.WithdrawalReleased: _withdrawal_released,
}


def apply_operations(document: dict | None, operations: list[Operation]) -> dict:
    """The document after its operations, in order; a new document starts empty."""
    result = dict(document or {})
    for name, argument in operations:
        if name == "set":
            result.update(argument)
        elif name == "add":
            for field, delta in argument.items():
                result[field] = str(int(result.get(field) or 0) + delta)
        else:
            _wager(result, *argument)
    return result


def _wager(document: dict, bonus_id: str | None, delta: int) -> None:
    if document.get("bonus_id") is None:
        return
    if bonus_id is not None and bonus_id != document["bonus_id"]:
        return
    document["wagering_progress"] = str(int(document["wagering_progress"]) + delta)
