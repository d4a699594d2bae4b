"""Export of the whole journal as a plain-text double-entry journal for hledger and ledger-cli.

An auditor should be able to check our books with a tool nobody here wrote. The export is
that bridge, and these are its rules:

- One transaction per wallet event that carries postings, in notification order. Events
  without postings (a wallet opened, limits changed, a voided bet) and idempotency records
  move no money and are left out. The date is `recorded_at` in UTC; the exact time, the
  journal id, the wallet (stream) id and its version ride along as tags, so every
  transaction leads back to one stored event.
- Amounts are written exactly, in major units with the currency's scale, through integer
  arithmetic only (`format_amount`). Each commodity is declared once, with a format of its
  full scale, so hledger never rounds what it displays and reads `1.234 EUR` as one euro
  and change rather than a thousands-grouped 1234.
- Signs are the engine's, never inverted: a posting is the change of an account's balance,
  a player's balance is what the casino owes the player, and so house, PSP and chain
  accounts carry the opposite signs. An auditor compares hledger's balances with the
  engine's figure for figure. Nothing is checked or corrected on the way: a journal that
  does not balance is written as stored, so that hledger, not we, refuses it.
- Account names are already colon-separated hierarchies, which is hledger's account
  separator too. Any character outside a conservative set is percent-encoded; the mapping
  is injective, so two accounts can never merge into one.
- Every account and commodity is declared before the first transaction, which makes the
  file pass `hledger check accounts commodities` and `ledger --pedantic`. The store is read
  once: transactions are spooled to a temporary file while the accounts are collected,
  then the declarations and the spooled transactions are written out. Memory holds the
  account names, never the transactions.
"""

import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import TextIO
from urllib.parse import quote

from ledger.core import limits
from ledger.core.events import WalletEvent, event_tag
from ledger.core.money import Currency, format_amount
from ledger.event_log import log_events
from ledger.service.application import Ledger

# Characters kept as they are in account names; anything else is percent-encoded.
_ACCOUNT_SAFE = re.compile(r"[A-Za-z0-9_.:\-]+")
_ACCOUNT_SAFE_CHARACTERS = "_.:-"
# A description ends at ';' (a comment) and splits into payee and note at '|'.
_DESCRIPTION_UNSAFE = re.compile(r"[%;|\s]")
_SPOOL_BUFFER_BYTES = 1 << 20

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class CurrencyExport:
    """What was written in one currency: debits are the positive postings, credits the rest."""

    currency: str
    transactions: int
    postings: int
    debits_minor: int
    credits_minor: int  # zero or negative

    @property
    def net_minor(self) -> int:
        """Zero when every journal written in this currency balances."""
        return self.debits_minor + self.credits_minor


@dataclass(frozen=True, slots=True)
class ExportStats:
    """What one export read and wrote."""

    events_read: int
    transactions: int
    postings: int
    accounts: int
    currencies: tuple[CurrencyExport, ...]  # in the currency registry's order


class _CurrencyTally:
    """The running counts of one currency; folded into a CurrencyExport at the end."""

    __slots__ = ("credits", "currency", "debits", "postings", "symbol", "transactions")

    def __init__(self, currency: Currency) -> None:
        self.currency = currency
        self.symbol = commodity_symbol(currency.code)
        self.transactions = 0
        self.postings = 0
        self.debits = 0
        self.credits = 0

    def count(self, event: WalletEvent) -> None:
        self.transactions += 1
        self.postings += len(event.postings)
        for posting in event.postings:
            if posting.amount > 0:
                self.debits += posting.amount
            else:
                self.credits += posting.amount

    def result(self) -> CurrencyExport:
        return CurrencyExport(
            currency=self.currency.code,
            transactions=self.transactions,
            postings=self.postings,
            debits_minor=self.debits,
            credits_minor=self.credits,
        )


def write_ledger_journal(
    ledger: Ledger, out: TextIO, *, on_progress: ProgressCallback | None = None
) -> ExportStats:
    """Writes every wallet event with postings to out as an hledger/ledger-cli journal.

    Args:
        ledger: the ledger whose store is read, in notification order, a page at a time.
        out: where the journal goes; it is written only after the whole store has been read.
        on_progress: called with the number of events read so far, once per page.
    """
    tallies: dict[str, _CurrencyTally] = {}
    accounts: set[str] = set()
    events_read = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n") as spool:
        for _, event in log_events(ledger.log):
            events_read += 1
            if isinstance(event, WalletEvent) and event.postings:
                tally = tallies.get(event.currency) or _new_tally(ledger, event, tallies)
                tally.count(event)
                accounts.update(posting.account for posting in event.postings)
                spool.write(transaction_text(event, tally.currency, tally.symbol))
            if on_progress is not None and events_read % limits.log_page_size == 0:
                on_progress(events_read)
        if on_progress is not None:
            on_progress(events_read)
        currencies = [tallies[c.code] for c in ledger.rules.currencies if c.code in tallies]
        out.write(header_text(events_read, [tally.currency for tally in currencies], accounts))
        spool.seek(0)
        shutil.copyfileobj(spool, out, _SPOOL_BUFFER_BYTES)
    results = tuple(tally.result() for tally in currencies)
    return ExportStats(
        events_read=events_read,
        transactions=sum(result.transactions for result in results),
        postings=sum(result.postings for result in results),
        accounts=len(accounts),
        currencies=results,
    )


def _new_tally(
    ledger: Ledger, event: WalletEvent, tallies: dict[str, _CurrencyTally]
) -> _CurrencyTally:
    # An unknown code raises InvalidArgument naming the currency: the store was written
    # under a configuration this one does not match, and no scale can be guessed.
    currency = ledger.rules.currencies.get(event.currency, field="currency")
    tally = tallies[event.currency] = _CurrencyTally(currency)
    return tally


def header_text(events_read: int, currencies: Iterable[Currency], accounts: set[str]) -> str:
    """The opening comment, then one commodity directive per currency and one per account."""
    lines = [
        "; Casino ledger journal export: one transaction per wallet event with postings,",
        "; in notification order. Dates are UTC. Amounts are the change of each account's",
        "; balance as the engine records it; a player's balance is what the casino owes.",
        f"; Events read: {events_read}.",
        "",
    ]
    for currency in currencies:
        lines.extend(commodity_directive(currency))
    lines.extend(f"account {ledger_account(account)}" for account in sorted(accounts))
    lines.append("")
    return "\n".join(lines) + "\n"


def commodity_directive(currency: Currency) -> list[str]:
    """A commodity declared with a format of its full scale, in the form both tools read.

    The one-line form `commodity 1.00 EUR` is hledger's alone; the `format` subdirective
    is understood by hledger and ledger-cli alike.
    """
    symbol = commodity_symbol(currency.code)
    number = "1." + "0" * currency.scale if currency.scale else "1"
    return [f"commodity {symbol}", f"    format {number} {symbol}", ""]


def commodity_symbol(code: str) -> str:
    """The currency code, double-quoted when it holds digits, as both tools require."""
    return code if code.isalpha() else f'"{code}"'


def ledger_account(account: str) -> str:
    """The engine's account name as a journal account name, percent-encoded where unsafe."""
    if _ACCOUNT_SAFE.fullmatch(account):
        return account
    return quote(account, safe=_ACCOUNT_SAFE_CHARACTERS)


def transaction_text(event: WalletEvent, currency: Currency, symbol: str) -> str:
    """One event as a journal transaction: a header line and one line per posting."""
    assert event.recorded_at.tzinfo is not None, "the ledger records aware UTC times"
    recorded_at = event.recorded_at.astimezone(UTC)
    description = f"{event_tag(type(event))} {_description_safe(event.key)}"
    tags = (
        f"journal_id:{event.journal_id}, wallet:{event.originator_id}, "
        f"version:{event.originator_version}, time:{recorded_at:%H:%M:%S.%f}Z"
    )
    lines = [f"{recorded_at:%Y-%m-%d} * {description}", f"    ; {tags}"]
    for posting in event.postings:
        amount = format_amount(posting.amount, currency)
        lines.append(f"    {ledger_account(posting.account)}  {amount} {symbol}")
    lines.append("")
    return "\n".join(lines) + "\n"


def _description_safe(key: str) -> str:
    # Keys are printable ASCII without spaces, but ';' would start a comment and '|' split
    # the description, so those (and '%' itself, to stay reversible) are percent-encoded.
    if _DESCRIPTION_UNSAFE.search(key) is None:
        return key
    return _DESCRIPTION_UNSAFE.sub(lambda match: f"%{ord(match.group()):02X}", key)
