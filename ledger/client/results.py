"""What `ledger.client` returns: frozen dataclasses of plain values, never protobuf messages.

Amounts stay exact decimal strings in major units, as on the wire ("10.5", "-0.00012345"):
a caller that needs arithmetic parses them with `parse_amount` at the currency's scale, or
with `decimal.Decimal`, never with float. Outcomes are their names ("OK", "DUPLICATE", ...),
timestamps timezone-aware UTC datetimes. The converters from the wire live here too, so the
client module only sends and resends.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from ledger.v1 import ledger_pb2 as pb


@dataclass(frozen=True)
class Balances:
    """A wallet's balances: withdrawable cash, restricted bonus, cash held for withdrawals."""

    cash: str
    bonus: str
    held: str


@dataclass(frozen=True)
class Reply:
    """A command's answer: `outcome` is the business outcome's name ("OK", "DUPLICATE", ...)."""

    outcome: str
    original_outcome: str
    journal_id: str  # for DUPLICATE the original's; "" for a refusal
    balances: Balances  # now
    balances_after: Balances  # right after the original command
    wallet_version: int


class WalletBalance(NamedTuple):
    """GetBalance's answer; a tuple too, so `balances, version = ...` unpacks it."""

    balances: Balances
    wallet_version: int  # 0: the wallet does not exist yet


@dataclass(frozen=True)
class Posting:
    account: str
    amount: str  # signed: the change of the account's balance


@dataclass(frozen=True)
class Entry:
    """One stored wallet event with its postings, as on a statement."""

    wallet_version: int
    event_type: str
    journal_id: str
    idempotency_key: str
    recorded_at: datetime
    occurred_at: datetime | None
    postings: tuple[Posting, ...]
    refused_outcome: str | None  # for a CommandRefused entry, the outcome it was refused with


@dataclass(frozen=True)
class Transaction:
    """What the engine recorded under an idempotency key: the outcome and its events."""

    command_type: str
    outcome: str
    journal_id: str
    player_id: str
    currency: str
    balances_after: Balances
    recorded_at: datetime
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class TransactionPage:
    entries: tuple[Entry, ...]
    next_page_token: str  # "" on the last page


@dataclass(frozen=True)
class AccountBalance:
    account: str
    currency: str
    balance: str
    as_of_position: int  # the read models hold every event up to this log position


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    debits: str  # the sum of all negative postings, as a positive amount
    credits: str  # the sum of all positive postings
    balanced: bool


@dataclass(frozen=True)
class TrialBalance:
    currencies: tuple[CurrencyTotals, ...]
    as_of_position: int


@dataclass(frozen=True)
class StoredEvent:
    """One event exactly as stored: `digest` is the hex SHA-256 of `payload`."""

    position: int
    stream_id: str
    version: int
    event_type: str
    payload: bytes
    digest: str
    partition: int = 0


def outcome_name(value: int) -> str:
    return pb.Outcome.Name(value).removeprefix("OUTCOME_")


def _datetime(stamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def balances_from(message: pb.Balances) -> Balances:
    return Balances(cash=message.cash, bonus=message.bonus, held=message.held)


def reply_from(message: pb.CommandResponse) -> Reply:
    return Reply(
        outcome=outcome_name(message.outcome),
        original_outcome=outcome_name(message.original_outcome),
        journal_id=message.journal_id,
        balances=balances_from(message.balances),
        balances_after=balances_from(message.balances_after),
        wallet_version=message.wallet_version,
    )


def replies_from(message: pb.SubmitBatchResponse) -> list[Reply]:
    return [reply_from(result) for result in message.results]


def wallet_balance_from(message: pb.GetBalanceResponse) -> WalletBalance:
    return WalletBalance(balances_from(message.balances), message.wallet_version)


def entry_from(message: pb.Entry) -> Entry:
    refused = message.refused_outcome
    return Entry(
        wallet_version=message.wallet_version,
        event_type=message.event_type,
        journal_id=message.journal_id,
        idempotency_key=message.idempotency_key,
        recorded_at=_datetime(message.recorded_at),
        occurred_at=_datetime(message.occurred_at) if message.HasField("occurred_at") else None,
        postings=tuple(Posting(p.account, p.amount) for p in message.postings),
        refused_outcome=outcome_name(refused) if refused != pb.OUTCOME_UNSPECIFIED else None,
    )


def transaction_from(message: pb.GetTransactionResponse) -> Transaction:
    return Transaction(
        command_type=message.command_type,
        outcome=outcome_name(message.outcome),
        journal_id=message.journal_id,
        player_id=message.player_id,
        currency=message.currency,
        balances_after=balances_from(message.balances_after),
        recorded_at=_datetime(message.recorded_at),
        entries=tuple(entry_from(entry) for entry in message.entries),
    )


def transaction_page_from(message: pb.ListTransactionsResponse) -> TransactionPage:
    entries = tuple(entry_from(entry) for entry in message.entries)
    return TransactionPage(entries=entries, next_page_token=message.next_page_token)


def account_balance_from(message: pb.GetAccountBalanceResponse) -> AccountBalance:
    return AccountBalance(
        account=message.account,
        currency=message.currency,
        balance=message.balance,
        as_of_position=message.as_of_position,
    )


def trial_balance_from(message: pb.GetTrialBalanceResponse) -> TrialBalance:
    currencies = tuple(
        CurrencyTotals(currency=t.currency, debits=t.debits, credits=t.credits, balanced=t.balanced)
        for t in message.currencies
    )
    return TrialBalance(currencies=currencies, as_of_position=message.as_of_position)


def log_heads_from(message: pb.GetLogHeadsResponse) -> list[int]:
    return list(message.heads)


def stored_event_from(message: pb.StoredEventMessage) -> StoredEvent:
    return StoredEvent(
        position=message.position,
        stream_id=message.stream_id,
        version=message.version,
        event_type=message.event_type,
        payload=message.payload,
        digest=message.digest,
        partition=message.partition,
    )


@dataclass(frozen=True)
class ClockReply:
    """An AdvanceClock answer: the ledger's time after the call, and whether it moved it."""

    ledger_time: datetime
    advanced: bool


def clock_reply_from(message: pb.AdvanceClockResponse) -> ClockReply:
    return ClockReply(
        ledger_time=message.ledger_time.ToDatetime(tzinfo=UTC), advanced=message.advanced
    )
