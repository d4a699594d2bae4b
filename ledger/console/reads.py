"""What the console's pages show, read from the projections (never a fold of the log).

Every read is bounded: a page of rows, a window of days. Amounts leave here as exact decimal
strings of the currency's major unit; nothing becomes a float except the chart's geometry.
"""

from decimal import Decimal

from ledger.core import accounts, limits
from ledger.core.money import CurrencyRegistry, format_amount
from ledger.service.wallets import wallet_id
from projections.stores import ProjectionStore
from projections.views import DAILY, SUSPENSE, WITHDRAWAL

LIMIT_LABELS = (
    ("deposit_limit_24h", "Deposit 24 h"),
    ("deposit_limit_7d", "Deposit 7 d"),
    ("deposit_limit_30d", "Deposit 30 d"),
    ("loss_limit_24h", "Loss 24 h"),
    ("loss_limit_7d", "Loss 7 d"),
    ("loss_limit_30d", "Loss 30 d"),
)
STATEMENT_COLUMNS = (
    "position",
    "line",
    "event",
    "idempotency_key",
    "account",
    "amount",
    "provider",
    "round",
    "recorded_at",
)


class Reads:
    """The console's queries over one projection store, formatted for display."""

    def __init__(self, store: ProjectionStore, registry: CurrencyRegistry) -> None:
        self.store = store
        self.registry = registry

    def money(self, minor: int | str | None, currency: str) -> str:
        if minor is None:
            return "none"
        if currency not in self.registry:
            return f"{minor} (minor units)"
        return format_amount(int(minor), self.registry.get(currency))

    def players(self, prefix: str, after: str) -> tuple[list[str], str | None]:
        """A page of player ids starting with prefix, and the id to continue after."""
        rows = self.store.player_ids(prefix, after, limits.console_page_rows + 1)
        page = rows[: limits.console_page_rows]
        return page, (page[-1] if len(rows) > len(page) else None)

    def wallets(self, player_id: str) -> list[dict]:
        """Each of the player's wallets: balances, limits, pending increases and bonus."""
        documents = self.store.wallets_of(player_id)
        names = [
            name(player_id, doc["currency"])
            for doc in documents
            for name in (accounts.player_cash, accounts.player_bonus, accounts.player_held)
        ]
        balances = self.store.balances_of(names)
        return [self._wallet(player_id, doc, balances) for doc in documents]

    def _wallet(self, player_id: str, doc: dict, balances: dict[str, int]) -> dict:
        currency = doc["currency"]
        cash = balances.get(accounts.player_cash(player_id, currency), 0)
        bonus = balances.get(accounts.player_bonus(player_id, currency), 0)
        held = balances.get(accounts.player_held(player_id, currency), 0)
        return {
            "currency": currency,
            "cash": self.money(cash, currency),
            "bonus": self.money(bonus, currency),
            "held": self.money(held, currency),
            "limits": self._limits(doc.get("limits"), currency),
            "pending_limits": self._limits(doc.get("pending_limits"), currency),
            "pending_effective_at": doc.get("pending_effective_at"),
            "self_excluded_until": (doc.get("limits") or {}).get("self_excluded_until"),
            "bonus_record": self._bonus(doc, currency),
        }

    def _limits(self, limit_doc: dict | None, currency: str) -> list[tuple[str, str]] | None:
        if limit_doc is None:
            return None
        return [(label, self.money(limit_doc.get(name), currency)) for name, label in LIMIT_LABELS]

    def _bonus(self, doc: dict, currency: str) -> dict | None:
        if doc.get("bonus_id") is None:
            return None
        required, progress = int(doc["wagering_required"]), int(doc["wagering_progress"])
        percent = 100 if required == 0 else min(100, progress * 100 // required)
        return {
            "bonus_id": doc["bonus_id"],
            "amount": self.money(doc["bonus_amount"], currency),
            "wagering_required": self.money(required, currency),
            "wagering_progress": self.money(progress, currency),
            "percent": percent,
            "expires_at": doc.get("bonus_expires_at"),
        }

    def statement(self, player_id: str, currency: str, before: int, rows: int) -> list[dict]:
        """The player's journal lines in one currency before a position, newest first, with
        the wallet's events that moved no money (limits, refusals) among them."""
        found = self.store.statement_lines(player_id, currency, before, rows)
        lines = [self._line(line, currency) for line in found]
        after = lines[-1]["position"] if len(lines) == rows else 0
        wallet = str(wallet_id(player_id, currency))
        notes = [self._note(note) for note in self.store.notes(wallet, after, before, rows)]
        merged = sorted([*lines, *notes], key=lambda line: (-line["position"], line["line"]))
        return merged[:rows] if notes else lines

    def _note(self, note: dict) -> dict:
        return {
            "position": note["position"],
            "line": 0,
            "event": note["event"],
            "idempotency_key": note["idempotency_key"],
            "account": note["detail"],
            "amount": "",
            "provider": "",
            "round": "",
            "recorded_at": note["recorded_at"],
        }

    def _line(self, line: tuple, currency: str) -> dict:
        position, index, event, key, account, amount, provider, round_id, recorded = line
        return {
            "position": position,
            "line": index,
            "event": event,
            "idempotency_key": key,
            "account": account,
            "amount": self.money(int(Decimal(amount)), currency),
            "provider": provider or "",
            "round": round_id or "",
            "recorded_at": recorded if isinstance(recorded, str) else recorded.isoformat(),
        }

    def accounts_by_currency(self) -> list[dict]:
        """Per currency: the trial balance and every house, PSP, chain, bonus and suspense
        account."""
        trial = self.store.trial_balance()
        house: dict[str, list[tuple[str, str]]] = {}
        for account, currency, balance in self.store.house_balances():
            house.setdefault(currency, []).append((account, self.money(balance, currency)))
        return [
            {
                "currency": currency,
                "debits": self.money(debits, currency),
                "credits": self.money(credits, currency),
                "balanced": debits == credits,
                "accounts": house.get(currency, []),
            }
            for currency, (debits, credits) in sorted(trial.items())
        ]

    def suspense_queue(self) -> list[dict]:
        items = self.store.documents(
            SUSPENSE, "AND status = ?", ("held",), limit=limits.console_page_rows
        )
        return [{**item, "amount": self.money(item["amount"], item["currency"])} for item in items]

    def pending_withdrawals(self) -> list[dict]:
        rows = self.store.documents(
            WITHDRAWAL, "AND status = ?", ("pending",), limit=limits.console_page_rows
        )
        return [{**row, "amount": self.money(row["amount"], row["currency"])} for row in rows]

    def daily(self, currency: str) -> list[dict]:
        """The latest `console_chart_days_max` days with activity: GGR, deposits and
        withdrawals in minor units, oldest first."""
        rows = self.store.documents(
            DAILY,
            "AND currency = ?",
            (currency,),
            limit=limits.console_chart_days_max,
            newest_first=True,
        )[::-1]
        return [
            {
                "day": row["sort"],
                **{name: int(row.get(name) or 0) for name in ("ggr", "deposits", "withdrawals")},
            }
            for row in rows
        ]

    def currencies(self) -> list[str]:
        return sorted(self.store.trial_balance())
