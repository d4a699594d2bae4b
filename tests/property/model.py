"""A small reference model of one provider's EUR wallets, written straight from the spec's
sentences with plain dicts and ints. It is deliberately naive: it shares no code with the
engine, so agreement between the two means something."""

from dataclasses import dataclass, field

OK, DUPLICATE, CONFLICT = "OK", "DUPLICATE", "CONFLICT"


@dataclass
class ModelWallet:
    cash: int = 0
    bonus: int = 0
    held: int = 0
    bets: dict = field(default_factory=dict)  # key -> {cash, bonus, round, status, bonus_id}
    wins: dict = field(default_factory=dict)  # key -> {cash, bonus, rolled, bonus_id}
    rounds: dict = field(default_factory=dict)  # round -> {closed, bonus_live}
    tombstones: set = field(default_factory=set)
    withdrawals: dict = field(default_factory=dict)  # key -> [amount, status]
    active_bonus: dict | None = None  # {id, required, progress, cap}
    reversed: bool = False  # a reversal happened: negative balances are allowed
    deposits: list = field(default_factory=list)  # (second, amount)
    unreversed: dict = field(default_factory=dict)  # deposit key -> amount not yet charged back
    limit: int | None = None  # deposit limit over 24 h in force
    pending_limit: tuple | None = None  # (value, effective second)
    excluded_until: int | None = None  # second


DAY_S = 24 * 3600


class Model:
    def __init__(self) -> None:
        self.wallets: dict[str, ModelWallet] = {}
        # The counterparty accounts, tracked leg by leg, not derived from the players'.
        self.games = 0  # house:games:hub88:EUR
        self.house_bonus = 0  # house:bonus:EUR
        self.psp = 0  # psp:stripe:EUR
        self.chain = 0  # chain:ethereum:EUR
        self.suspense = 0  # suspense:EUR
        self.items: dict[str, list] = {}  # suspense item key -> [amount, "held" or resolution]

    # Responsible gambling, in whole seconds of ledger time.

    def _limit_now(self, w: ModelWallet, now: int) -> int | None:
        if w.pending_limit is not None and now >= w.pending_limit[1]:
            w.limit, w.pending_limit = w.pending_limit[0], None
        return w.limit

    def _blocked(self, w: ModelWallet, now: int) -> bool:
        return w.excluded_until is not None and now < w.excluded_until

    def set_limits(self, player: str, limit: int | None, until: int | None, now: int) -> str:
        w = self.wallets.setdefault(player, ModelWallet())
        current = self._limit_now(w, now)
        running = w.excluded_until is not None and w.excluded_until > now
        if running and (until is None or until < w.excluded_until):
            return "INVALID_STATE"
        w.excluded_until = until
        if limit is not None and (current is None or limit < current):
            w.limit, w.pending_limit = limit, None
        elif limit != current:
            w.pending_limit = (limit, now + DAY_S)
        else:
            w.pending_limit = None
        return self._settled(w)

    def balances(self, player: str) -> tuple[int, int, int]:
        w = self.wallets.get(player)
        return (w.cash, w.bonus, w.held) if w else (0, 0, 0)

    # Cashier.

    def deposit(self, player: str, amount: int, now: int, key: str = "") -> str:
        w = self.wallets.setdefault(player, ModelWallet())
        if self._blocked(w, now):
            return "PLAYER_BLOCKED"
        limit = self._limit_now(w, now)
        recent = sum(a for t, a in w.deposits if now - DAY_S < t <= now)
        if limit is not None and recent + amount > limit:
            return "LIMIT_EXCEEDED"
        w.deposits.append((now, amount))
        w.unreversed[key] = amount
        w.cash += amount
        self.psp -= amount
        return self._settled(w)

    # Suspense: money on a rail that no player can be credited with yet.

    def hold(self, key: str, amount: int) -> str:
        self.items[key] = [amount, "held"]
        self.chain -= amount
        self.suspense += amount
        return OK

    def attribute(self, player: str, item: str, now: int, key: str = "") -> str:
        """A late deposit: refused like a deposit, and only while the item is held."""
        w = self.wallets.setdefault(player, ModelWallet())
        if self._blocked(w, now):
            return "PLAYER_BLOCKED"
        if item not in self.items or self.items[item][1] != "held":
            return "INVALID_STATE"
        amount = self.items[item][0]
        limit = self._limit_now(w, now)
        recent = sum(a for t, a in w.deposits if now - DAY_S < t <= now)
        if limit is not None and recent + amount > limit:
            return "LIMIT_EXCEEDED"
        self.items[item][1] = "attributed"
        w.deposits.append((now, amount))
        w.unreversed[key] = amount
        w.cash += amount
        self.suspense -= amount
        return self._settled(w)

    def give_back(self, item: str) -> str:
        if item not in self.items or self.items[item][1] != "held":
            return "INVALID_STATE"
        self.items[item][1] = "returned"
        self.suspense -= self.items[item][0]
        self.chain += self.items[item][0]
        return OK

    def reverse_deposit(self, player: str, key: str, amount: int) -> str:
        """A chargeback naming its deposit: at most what that deposit has left."""
        w = self.wallets.get(player)
        if w is None:
            return "WRONG_CURRENCY"
        if key not in w.unreversed or amount > w.unreversed[key]:
            return "INVALID_STATE"
        w.unreversed[key] -= amount
        return self.reverse(player, amount)

    def reverse(self, player: str, amount: int) -> str:
        w = self.wallets.get(player)
        if w is None:
            return "WRONG_CURRENCY"
        w.cash -= amount
        self.psp += amount
        w.reversed = True
        return self._settled(w)

    def withdraw(self, player: str, key: str, amount: int) -> str:
        w = self.wallets.get(player)
        if w is None:
            return "WRONG_CURRENCY"
        if w.cash < 0 or w.bonus < 0:
            return "NEGATIVE_BALANCE"
        if w.cash < amount:
            return "INSUFFICIENT_FUNDS"
        self._end_bonus(w)
        w.cash -= amount
        w.held += amount
        w.withdrawals[key] = [amount, "pending"]
        return self._settled(w)

    def finish_withdrawal(self, player: str, withdrawal: str, complete: bool) -> str:
        w = self.wallets.get(player)
        if w is None:
            return "WRONG_CURRENCY"
        if withdrawal not in w.withdrawals:
            return "WITHDRAWAL_NOT_FOUND"
        amount, status = w.withdrawals[withdrawal]
        if status != "pending":
            return "INVALID_STATE"
        w.held -= amount
        if complete:
            self.psp += amount
        else:
            w.cash += amount
        w.withdrawals[withdrawal][1] = "done"
        return self._settled(w)

    # Bonus.

    def grant(self, player, key, amount, multiplier, cap, now: int) -> str:
        w = self.wallets.setdefault(player, ModelWallet())
        if self._blocked(w, now):
            return "PLAYER_BLOCKED"
        if w.active_bonus is not None:
            return "INVALID_STATE"
        w.bonus += amount
        self.house_bonus -= amount
        w.active_bonus = {"id": key, "required": amount * multiplier, "progress": 0, "cap": cap}
        return self._settled(w)

    def forfeit(self, player: str) -> str:
        w = self.wallets.get(player)
        if w is None:
            return "WRONG_CURRENCY"
        if w.active_bonus is None:
            return "INVALID_STATE"
        self._end_bonus(w)
        return self._settled(w)

    def _end_bonus(self, w: ModelWallet) -> None:
        if w.active_bonus is not None:
            self._charge_deficit(w)
            self.house_bonus += w.bonus
            w.bonus = 0
            w.active_bonus = None

    def _charge_deficit(self, w: ModelWallet) -> None:
        """A bonus ends at zero: what it owes is taken from cash."""
        if w.bonus < 0:
            w.cash += w.bonus
            w.bonus = 0

    def _settled(self, w: ModelWallet) -> str:
        """After any success: convert a wagered bonus, or end a spent one, once rounds close."""
        b = w.active_bonus
        busy = any(
            not r["closed"] and (r["bonus_live"] > 0 or r["wager_live"] > 0)
            for r in w.rounds.values()
        )
        if b is None or busy:
            return OK
        if b["progress"] >= b["required"]:
            self._charge_deficit(w)
            converted = w.bonus if b["cap"] is None else min(w.bonus, b["cap"])
            w.cash += converted
            self.house_bonus += w.bonus - converted
            w.bonus = 0
            w.active_bonus = None
        elif w.bonus <= 0:
            self._end_bonus(w)
        return OK

    def _bonus_id(self, w: ModelWallet) -> str | None:
        return w.active_bonus["id"] if w.active_bonus else None

    # Games.

    def bet(self, player: str, key: str, amount: int, round_id: str, now: int) -> str:
        w = self.wallets.get(player)
        if w is None:
            return "WRONG_CURRENCY"
        if key in w.tombstones:
            w.bets[key] = {
                "cash": 0,
                "bonus": 0,
                "round": round_id,
                "status": "rolled",
                "bonus_id": None,
            }
            return self._settled(w)
        if self._blocked(w, now):
            return "PLAYER_BLOCKED"
        if w.cash < 0 or w.bonus < 0:
            return "NEGATIVE_BALANCE"
        if w.rounds.get(round_id, {}).get("closed"):
            return "ROUND_CLOSED"
        if max(w.cash, 0) + max(w.bonus, 0) < amount:
            return "INSUFFICIENT_FUNDS"
        from_cash = min(max(w.cash, 0), amount)
        w.cash -= from_cash
        w.bonus -= amount - from_cash
        self.games += amount
        round_ = w.rounds.setdefault(round_id, {"closed": False, "bonus_live": 0, "wager_live": 0})
        round_["bonus_live"] += amount - from_cash
        bonus_id = self._bonus_id(w)
        if w.active_bonus is not None:
            w.active_bonus["progress"] += amount  # slots count 100 %
            round_["wager_live"] += amount
        w.bets[key] = {
            "cash": from_cash,
            "bonus": amount - from_cash,
            "round": round_id,
            "status": "open",
            "bonus_id": bonus_id,
        }
        return self._settled(w)

    def win(self, player: str, key: str, bet_key: str, amount: int, closes: bool) -> str:
        w = self.wallets.get(player)
        if w is None:
            return "WRONG_CURRENCY"
        if key in w.tombstones:
            w.wins[key] = {"cash": 0, "bonus": 0, "rolled": True, "bonus_id": None, "house": 0}
            return self._settled(w)
        bet = w.bets.get(bet_key)
        if bet is None:
            return "ALREADY_ROLLED_BACK" if bet_key in w.tombstones else "BET_NOT_FOUND"
        if bet["status"] == "rolled":
            return "ALREADY_ROLLED_BACK"
        if w.rounds[bet["round"]]["closed"]:
            return "ALREADY_SETTLED"
        stake = bet["cash"] + bet["bonus"]
        bonus_share = amount * bet["bonus"] // stake if stake else 0
        to_bonus = bonus_share if bet["bonus_id"] == self._bonus_id(w) and bet["bonus_id"] else 0
        w.cash += amount - bonus_share
        w.bonus += to_bonus
        self.games -= amount
        self.house_bonus += bonus_share - to_bonus
        w.wins[key] = {
            "cash": amount - bonus_share,
            "bonus": to_bonus,
            "rolled": False,
            "bonus_id": bet["bonus_id"],
            "house": bonus_share - to_bonus,
        }
        bet["status"] = "settled"
        if closes:
            w.rounds[bet["round"]]["closed"] = True
        return self._settled(w)

    def rollback(self, player: str, target: str, owner: str | None = None) -> str:
        """owner: the player whose command holds the target key, if any command does."""
        if owner is not None and owner != player:
            return "CONFLICT"
        w = self.wallets.get(player)
        if w is None:
            return "WRONG_CURRENCY"
        if target in w.bets:
            return self._rollback_bet(w, w.bets[target])
        if target in w.wins:
            win = w.wins[target]
            if not win["rolled"]:
                w.cash -= win["cash"]
                if win["bonus_id"] and win["bonus_id"] == self._bonus_id(w):
                    w.bonus -= win["bonus"]
                else:
                    self.house_bonus -= win["bonus"]
                self.house_bonus -= win["house"]
                self.games += win["cash"] + win["bonus"] + win["house"]
                win["rolled"] = True
                w.reversed = True
            return self._settled(w)
        w.tombstones.add(target)
        return self._settled(w)

    def _rollback_bet(self, w: ModelWallet, bet: dict) -> str:
        if bet["status"] == "rolled":
            return self._settled(w)
        if bet["status"] == "settled" or w.rounds[bet["round"]]["closed"]:
            return "ALREADY_SETTLED"
        w.cash += bet["cash"]
        self.games -= bet["cash"] + bet["bonus"]
        round_ = w.rounds[bet["round"]]
        if bet["bonus_id"] and bet["bonus_id"] == self._bonus_id(w):
            w.bonus += bet["bonus"]
            w.active_bonus["progress"] -= bet["cash"] + bet["bonus"]
            round_["wager_live"] -= bet["cash"] + bet["bonus"]
        else:
            self.house_bonus += bet["bonus"]
            if bet["bonus_id"]:
                round_["wager_live"] -= bet["cash"] + bet["bonus"]
        round_["bonus_live"] -= bet["bonus"]
        bet["status"] = "rolled"
        return self._settled(w)
