"""An independent fold of the whole event store: account totals per currency, and checks.

It reads every stored event from the notification log, a page at a time, and sums the
postings of every wallet event per account. It shares nothing with the application's
wallet fold except the stored bytes, which is what makes its checks worth having:

- every journal (the postings of one event) sums to zero;
- every posting names an account of the event's own currency;
- the accounts of each currency sum to exactly zero (the trial balance);
- each wallet's cash, bonus and held, summed from postings, equal the balances the ledger
  folds from the wallet's stream.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from ledger.core import accounts
from ledger.core.errors import ChainBroken
from ledger.core.events import StoredEventBase, WalletEvent, WalletOpened
from ledger.core.state import Balances
from ledger.event_log import log_events, new_records
from ledger.service.application import Ledger

PLAYER_ACCOUNT_KINDS = ("cash", "bonus", "held")
PROBLEM_REPORT_MAX = 50


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    """One currency's trial balance: players' accounts by kind, every other account by name."""

    currency: str
    players: dict[str, int]  # "cash", "bonus", "held" summed over all players
    accounts: dict[str, int]  # house, psp, chain and suspense accounts

    @property
    def total(self) -> int:
        return sum(self.players.values()) + sum(self.accounts.values())


@dataclass(frozen=True, slots=True)
class LedgerSummary:
    event_count: int
    wallet_count: int
    currencies: tuple[CurrencyTotals, ...]
    problem_count: int
    problems: tuple[str, ...]  # the first PROBLEM_REPORT_MAX

    @property
    def is_sound(self) -> bool:
        """Every currency sums to zero and no check found a problem."""
        return self.problem_count == 0 and all(t.total == 0 for t in self.currencies)


def stored_events(ledger: Ledger) -> Iterator[StoredEventBase]:
    """Every event in the store, in the log's merged order, read in bounded pages."""
    for _, event in log_events(ledger.log):
        yield event


class PostingFold:
    """Account balances summed from postings, the wallets seen, and what did not add up."""

    def __init__(self) -> None:
        self.balances: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )  # currency → account → balance
        self.wallets: set[tuple[str, str]] = set()  # (player id, currency)
        self.event_count = 0
        self.problems: list[str] = []

    def add(self, event: StoredEventBase) -> None:
        self.event_count += 1
        if not isinstance(event, WalletEvent):
            return  # idempotency records carry no postings
        if isinstance(event, WalletOpened):
            self.wallets.add((event.player_id, event.currency))
        self._check_journal(event)
        accounts_of_currency = self.balances[event.currency]
        for posting in event.postings:
            accounts_of_currency[posting.account] += posting.amount

    def _check_journal(self, event: WalletEvent) -> None:
        name = f"{type(event).__name__} {event.originator_id} v{event.originator_version}"
        if sum(posting.amount for posting in event.postings) != 0:
            self.problems.append(f"{name}: its postings do not sum to zero")
        suffix = f":{event.currency}"
        if not all(posting.account.endswith(suffix) for posting in event.postings):
            self.problems.append(f"{name}: a posting names an account of another currency")

    def totals(self, currency: str) -> CurrencyTotals:
        players = dict.fromkeys(PLAYER_ACCOUNT_KINDS, 0)
        others: dict[str, int] = {}
        for account, balance in sorted(self.balances[currency].items()):
            if account.startswith("player:"):
                players[account.split(":")[2]] += balance
            else:
                others[account] = balance
        return CurrencyTotals(currency=currency, players=players, accounts=others)

    def wallet_balances(self, player_id: str, currency: str) -> Balances:
        """A wallet's balances as its player accounts' posting sums."""
        balances = self.balances[currency]
        return Balances(
            cash=balances.get(accounts.player_cash(player_id, currency), 0),
            bonus=balances.get(accounts.player_bonus(player_id, currency), 0),
            held=balances.get(accounts.player_held(player_id, currency), 0),
        )


def summarize(ledger: Ledger) -> LedgerSummary:
    """Folds the whole store and checks it against itself and against the ledger's wallets."""
    return RunningSummary().update(ledger)


class RunningSummary:
    """`summarize`, kept current: each update folds only the events stored since the last
    one, so checking a growing store after every step costs what the step wrote."""

    def __init__(self) -> None:
        self.fold = PostingFold()
        self.positions: list[int] | None = None  # each partition's, once the log is known

    def update(self, ledger: Ledger) -> LedgerSummary:
        log = ledger.log
        if self.positions is None:
            self.positions = [0] * log.partitions
        for record in new_records(log, self.positions):
            self.fold.add(log.decode(record, log.plaintext(record)))
            self.positions[record.partition] = record.position
        return _summary(ledger, self.fold)


def _summary(ledger: Ledger, fold: PostingFold) -> LedgerSummary:
    problems = [*fold.problems, *_wallet_mismatches(ledger, fold)]
    registered = (currency.code for currency in ledger.rules.currencies)
    codes = [code for code in registered if code in fold.balances]
    return LedgerSummary(
        event_count=fold.event_count,
        wallet_count=len(fold.wallets),
        currencies=tuple(fold.totals(code) for code in codes),
        problem_count=len(problems),
        problems=tuple(problems[:PROBLEM_REPORT_MAX]),
    )


def _wallet_mismatches(ledger: Ledger, fold: PostingFold) -> Iterator[str]:
    for player_id, currency in sorted(fold.wallets):
        folded = fold.wallet_balances(player_id, currency)
        try:
            state = ledger.wallet(player_id, currency)
        except ChainBroken as error:
            yield f"wallet {player_id} {currency}: {error}"
            continue
        stored = state.balances if state is not None else None
        if stored != folded:
            yield f"wallet {player_id} {currency}: postings sum to {folded}, ledger has {stored}"
