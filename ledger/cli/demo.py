"""`ledger demo`: a seeded casino simulation driven through the real `Ledger`.

Rules of the simulation:

- Randomness lives here, in the shell, and nowhere else. Every draw comes from a
  `random.Random` derived from the seed, and the ledger is given a stepping clock and seeded
  ids, so one seed always writes the same store. The domain core never sees a random number.
- Each player is a script: a generator that yields its next command and is sent the result.
  The driver advances every player one step per tick and sends a tick's commands as one
  batch. A batch holds at most one command per player, hence one per wallet, so the commands
  in it are independent of each other.
- Scripts steer by `original_outcome` and `balances_after`, never by current balances. A
  rerun of the same seed against a store that already holds it (`--no-fresh`) therefore
  sends exactly the same commands again, and the engine answers every one as a replay.
- Amounts are integer minor units. They are written below as exact major-unit decimal
  strings and parsed with the engine's own `parse_amount`; no float ever touches money.
- Where a script knows what the engine must answer (a retry, a chargeback, an out-of-order
  rollback, an over-limit deposit) it checks the answer and reports a surprise as an anomaly.
"""

import contextlib
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from ledger.core import commands as c
from ledger.core import limits
from ledger.core.money import Currency, CurrencyRegistry, parse_amount
from ledger.core.outcomes import Outcome
from ledger.core.policy import Rules
from ledger.core.state import ZERO_BALANCES
from ledger.service.application import Ledger
from ledger.service.results import CommandResult

DEMO_START = datetime(2026, 1, 1, tzinfo=UTC)
# The ledger reads the clock once per batch, that is once per tick in which every active
# player makes one call: a few seconds between a player's calls is a brisk but real pace.
CLOCK_STEP = timedelta(seconds=3)

PLAYER_COUNT_MAX = 100_000
ROUND_COUNT_MAX = 10_000
SEED_MAX = 2**32 - 1
ANOMALY_REPORT_MAX = 20

CURRENCIES = ("EUR", "USD", "BTC", "ETH")
CURRENCY_WEIGHTS = (40, 25, 20, 15)  # share of players in percent
# The first players each show one scripted scenario, so even a tiny run shows them all.
SHOWCASE_PLAYER_COUNT = len(CURRENCIES)

RAILS = {
    "EUR": ("psp", ("stripe", "adyen")),
    "USD": ("psp", ("stripe", "worldpay")),
    "BTC": ("chain", ("bitcoin",)),
    "ETH": ("chain", ("ethereum",)),
}
PROVIDER_CATEGORIES = {
    "hub88": ("slots", "crash", "table"),
    "evolution": ("live",),
    "pragmatic": ("slots", "instant"),
}
PROVIDERS = tuple(PROVIDER_CATEGORIES)

# A won round pays stake × percent / 100. Half the rounds lose, so players get back about 94 %.
WIN_PERCENTS = (40, 80, 100, 150, 200, 250, 500)
# None leaves the withdrawal pending at the end of the run, its money held.
WITHDRAWAL_ENDINGS = (c.CompleteWithdrawal, c.CancelWithdrawal, c.FailWithdrawal, None)
WITHDRAWAL_ENDING_WEIGHTS = (60, 12, 13, 15)
BONUS_MULTIPLIERS = (1, 2, 3, 5, 10)  # the default policy caps the multiplier at 10
BONUS_LIFETIMES = (timedelta(minutes=2), timedelta(hours=1), timedelta(days=7))
WHALE_STAKE_FACTOR = 20

# Per currency: (deposit, whale deposit, stake), each (low, high, step) in major units.
# Hub88-style providers send fractions of a cent, so fiat stakes move in steps of 1/100000.
# Whale deposits of 25 ETH and more exceed 2**64 wei.
SIZES = {
    "EUR": (("20", "300", "1"), ("2000", "10000", "10"), ("0.1", "5", "0.00001")),
    "USD": (("20", "400", "1"), ("2500", "12000", "10"), ("0.1", "5", "0.00001")),
    "BTC": (("0.0005", "0.02", "0.0001"), ("0.5", "2", "0.001"), ("0.00001", "0.0005", "0.000001")),
    "ETH": (("0.02", "0.8", "0.001"), ("25", "40", "0.001"), ("0.0005", "0.02", "0.000001")),
}

Script = Generator[c.Command, CommandResult, None]
Step = Generator[c.Command, CommandResult, CommandResult]
Pending = list[tuple[Script, c.Command]]


@dataclass(frozen=True, slots=True)
class DemoConfig:
    players: int
    rounds: int  # game rounds per player
    seed: int

    def __post_init__(self) -> None:
        assert 0 < self.players <= PLAYER_COUNT_MAX, self.players
        assert 0 <= self.rounds <= ROUND_COUNT_MAX, self.rounds
        assert 0 <= self.seed <= SEED_MAX, self.seed


class DemoClock:
    """Starts at DEMO_START and moves CLOCK_STEP on every reading."""

    def __init__(self, start: datetime = DEMO_START, step: timedelta = CLOCK_STEP) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        reading = self.now
        self.now += self.step
        return reading


def seeded_ids(seed: int) -> Callable[[], UUID]:
    """Version-4 UUIDs from a seeded generator, so journal ids repeat with the seed."""
    rng = random.Random(f"{seed}:ids")
    return lambda: UUID(int=rng.getrandbits(128), version=4)


def open_ledger(database_url: str, seed: int, rules: Rules | None = None) -> Ledger:
    """The real ledger on database_url, with the demo's stepping clock and seeded ids."""
    return Ledger(database_url, rules=rules, clock=DemoClock(), new_id=seeded_ids(seed))


@dataclass(frozen=True, slots=True)
class AmountRange:
    """Minor-unit amounts low, low + step, ... up to high."""

    low: int
    high: int
    step: int

    def draw(self, rng: random.Random) -> int:
        return rng.randrange(self.low, self.high + 1, self.step)


@dataclass(frozen=True, slots=True)
class Sizes:
    deposit: AmountRange
    whale_deposit: AmountRange
    stake: AmountRange


def currency_sizes(registry: CurrencyRegistry) -> dict[str, Sizes]:
    """SIZES parsed exactly into minor units of each currency's registered scale."""
    return {
        code: Sizes(*(_amount_range(registry.get(code), bounds) for bounds in SIZES[code]))
        for code in CURRENCIES
    }


def _amount_range(currency: Currency, bounds: tuple[str, str, str]) -> AmountRange:
    low, high, step = (parse_amount(text, currency, field="demo size") for text in bounds)
    assert 0 < step <= low <= high, bounds
    return AmountRange(low, high, step)


def chance(rng: random.Random, percent: int) -> bool:
    """True percent times in a hundred; integer arithmetic, so no float is involved."""
    return rng.randrange(100) < percent


def weighted_choice(rng: random.Random, items: Sequence, weights: Sequence[int]):
    """One of items, each as likely as its integer weight."""
    assert len(items) == len(weights) > 0
    point = rng.randrange(sum(weights))
    for item, weight in zip(items, weights, strict=True):
        if point < weight:
            return item
        point -= weight
    raise AssertionError("unreachable: point < sum(weights)")


@dataclass(frozen=True, slots=True)
class Profile:
    """Who a player is in the simulation, fixed before their first command."""

    player_id: str
    currency: str
    rail: str
    rail_id: str
    is_whale: bool
    is_deposit_limited: bool
    has_bonus: bool
    charges_back: bool
    retries_deposit: bool
    strays_currency: bool
    pays_without_reference: bool  # a top-up lands in suspense; the back office attributes it


def draw_profile(index: int, seed: int, rng: random.Random) -> Profile:
    """A player's profile; players 0 to 3 are showcases of one currency and scenario each."""
    is_showcase = index < SHOWCASE_PLAYER_COUNT
    currency = (
        CURRENCIES[index] if is_showcase else weighted_choice(rng, CURRENCIES, CURRENCY_WEIGHTS)
    )
    rail, rail_ids = RAILS[currency]

    def role(percent: int, showcase_index: int) -> bool:
        return index == showcase_index if is_showcase else chance(rng, percent)

    charges_back = role(3, 0)
    is_deposit_limited = role(15, 1) and not charges_back
    return Profile(
        player_id=f"s{seed}-p{index:05d}",
        currency=currency,
        rail=rail,
        rail_id=rng.choice(rail_ids),
        is_whale=role(10, 3),
        is_deposit_limited=is_deposit_limited,
        has_bonus=role(30, 2),
        charges_back=charges_back,
        retries_deposit=chance(rng, 20) or is_showcase,
        strays_currency=role(3, 1),
        pays_without_reference=role(5, 0) and not is_deposit_limited,
    )


@dataclass
class Tally:
    """What the simulation sent and how the engine answered."""

    rounds_done: int = 0  # played, or given up for want of funds
    commands: int = 0
    outcomes: defaultdict[str, Counter[Outcome]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    anomaly_count: int = 0
    anomalies: list[str] = field(default_factory=list)  # the first ANOMALY_REPORT_MAX

    def count(self, command: c.Command, result: CommandResult) -> None:
        self.commands += 1
        self.outcomes[type(command).__name__][result.outcome] += 1

    def anomaly(self, command: c.Command, what: str) -> None:
        self.anomaly_count += 1
        if len(self.anomalies) < ANOMALY_REPORT_MAX:
            self.anomalies.append(f"{type(command).__name__} {command.idempotency_key}: {what}")


class PlayerScript:
    """One player's session: `run` yields commands and is sent each command's result."""

    def __init__(
        self,
        profile: Profile,
        sizes: dict[str, Sizes],
        rng: random.Random,
        rounds: int,
        tally: Tally,
    ) -> None:
        self.profile = profile
        self.sizes = sizes
        self.own_sizes = sizes[profile.currency]
        self.stake_factor = WHALE_STAKE_FACTOR if profile.is_whale else 1
        self.rng = rng
        self.rounds = rounds
        self.tally = tally
        self.sequence = 0
        self.balances = ZERO_BALANCES  # as the last answer for this wallet left them

    def run(self) -> Script:
        first_deposit = yield from self._open_account()
        if self.profile.charges_back:
            yield from self._lose_all_then_charge_back(first_deposit)
        if self.profile.has_bonus:
            yield from self._grant_bonus(first_deposit.amount)
        if self.profile.strays_currency:
            yield from self._stray_bet()
        if self.profile.pays_without_reference:
            yield from self._deposit_through_suspense()
        yield from self._play_rounds()
        yield from self._cash_out()

    # Sending and checking.

    def _send(self, command: c.Command, expected: Outcome | None = None) -> Step:
        result = yield command
        if expected is not None and result.original_outcome is not expected:
            self.tally.anomaly(command, f"expected {expected.value}, got {result.outcome.value}")
        if command.currency == self.profile.currency and command.player_id:
            self.balances = result.balances_after  # a suspense hold has no player
        return result

    def _retry(self, command: c.Command) -> Step:
        """Resends an applied command unchanged, as a client does after a timeout."""
        before = self.balances
        result = yield from self._send(command, Outcome.OK)
        if result.outcome is not Outcome.DUPLICATE or result.balances_after != before:
            self.tally.anomaly(command, "a retry must be a DUPLICATE with the original balances")
        return result

    # Building commands.

    def _key(self) -> str:
        """A fresh idempotency key; unique per player, and player ids are unique per seed."""
        self.sequence += 1
        return f"{self.profile.player_id}-{self.sequence}"

    def _fields(self, currency: str | None = None) -> dict:
        return {
            "idempotency_key": self._key(),
            "player_id": self.profile.player_id,
            "currency": currency or self.profile.currency,
        }

    def _deposit(self, amount: int) -> c.Deposit:
        rail, rail_id = self.profile.rail, self.profile.rail_id
        return c.Deposit(**self._fields(), amount=amount, rail=rail, rail_id=rail_id)

    def _bet(self, provider: str, category: str, amount: int) -> c.Bet:
        """A bet opening a round of its own, named after the bet's key."""
        fields = self._fields()
        round_id = f"round-{fields['idempotency_key']}"
        return c.Bet(
            **fields, provider=provider, amount=amount, round_id=round_id, game_category=category
        )

    def _win(self, bet: c.Bet, amount: int) -> c.Win:
        return c.Win(
            **self._fields(),
            provider=bet.provider,
            amount=amount,
            bet_key=bet.idempotency_key,
            round_closed=True,
        )

    def _rollback(self, bet: c.Bet) -> c.Rollback:
        return c.Rollback(**self._fields(), provider=bet.provider, target_key=bet.idempotency_key)

    def _deposit_size(self) -> int:
        sizes = self.own_sizes
        return (sizes.whale_deposit if self.profile.is_whale else sizes.deposit).draw(self.rng)

    def _stake(self) -> int:
        return self.own_sizes.stake.draw(self.rng) * self.stake_factor

    def _spendable(self) -> int:
        return max(self.balances.cash, 0) + max(self.balances.bonus, 0)

    # Cashier scenarios.

    def _open_account(self) -> Generator[c.Command, CommandResult, c.Deposit]:
        amount = self._deposit_size()
        if self.profile.is_deposit_limited:
            limit = amount + amount // 2
            limits_command = c.SetLimits(**self._fields(), deposit_limit_24h=limit)
            yield from self._send(limits_command, Outcome.OK)
        deposit = self._deposit(amount)
        yield from self._send(deposit, Outcome.OK)
        if self.profile.retries_deposit:
            yield from self._retry(deposit)
        if self.profile.is_deposit_limited:
            # A second deposit of the same size breaks the limit of one and a half deposits.
            yield from self._send(self._deposit(amount), Outcome.LIMIT_EXCEEDED)
        return deposit

    def _lose_all_then_charge_back(self, deposit: c.Deposit) -> Script:
        """The player stakes the whole deposit, loses it, then the payment is charged back."""
        all_in = self._bet("hub88", "slots", self.balances.cash)
        yield from self._send(all_in, Outcome.OK)
        yield from self._send(self._win(all_in, 0), Outcome.OK)
        reversal = c.ReverseDeposit(
            **self._fields(),
            amount=deposit.amount,
            rail=deposit.rail,
            rail_id=deposit.rail_id,
            deposit_key=deposit.idempotency_key,
        )
        yield from self._send(reversal, Outcome.OK)
        if self.balances.cash >= 0:
            self.tally.anomaly(reversal, "a chargeback of spent money must leave cash negative")
        stake = self.own_sizes.stake.low
        yield from self._send(self._bet("hub88", "slots", stake), Outcome.NEGATIVE_BALANCE)
        yield from self._send(self._withdrawal(stake), Outcome.NEGATIVE_BALANCE)
        # Collections recover the debt with the next deposit, and the player plays on.
        settlement = self._deposit(self._deposit_size() - self.balances.cash)
        yield from self._send(settlement, Outcome.OK)

    def _deposit_through_suspense(self) -> Script:
        """A payment arrives without the player's reference: the rail parks it in suspense,
        and the back office later attributes it to the player, a late deposit."""
        profile = self.profile
        held = c.HoldInSuspense(
            idempotency_key=self._key(),
            currency=profile.currency,
            amount=self._deposit_size(),
            rail=profile.rail,
            rail_id=profile.rail_id,
            reason="missing_reference",
        )
        yield from self._send(held, Outcome.OK)
        attribution = c.AttributeSuspense(**self._fields(), item_key=held.idempotency_key)
        yield from self._send(attribution, Outcome.OK)

    def _withdrawal(self, amount: int) -> c.RequestWithdrawal:
        profile = self.profile
        return c.RequestWithdrawal(
            **self._fields(), amount=amount, rail=profile.rail, rail_id=profile.rail_id
        )

    def _grant_bonus(self, deposit_amount: int) -> Script:
        """A welcome bonus of half the first deposit, some capped in conversion or bet size."""
        amount = deposit_amount // 2
        multiplier = self.rng.choice(BONUS_MULTIPLIERS)
        max_conversion = amount * 2 if chance(self.rng, 50) else None
        # A cap below the largest stakes, so capped players see some bets refused.
        bet_cap = self.own_sizes.stake.high * self.stake_factor * 3 // 4
        max_bet = bet_cap if chance(self.rng, 30) else None
        lifetime = self.rng.choice(BONUS_LIFETIMES)
        grant = c.GrantBonus(
            **self._fields(),
            amount=amount,
            wagering_multiplier=multiplier,
            max_conversion=max_conversion,
            max_bet=max_bet,
            expires_at=DEMO_START + lifetime,
        )
        yield from self._send(grant, Outcome.OK)

    def _stray_bet(self) -> Script:
        """A provider misroutes a bet to a currency in which the player has no wallet."""
        stray = CURRENCIES[(CURRENCIES.index(self.profile.currency) + 1) % len(CURRENCIES)]
        bet = c.Bet(
            **self._fields(stray),
            provider="pragmatic",
            amount=self.sizes[stray].stake.low,
            round_id=f"{self.profile.player_id}-stray",
        )
        yield from self._send(bet, Outcome.WRONG_CURRENCY)

    def _cash_out(self) -> Script:
        if self.balances.cash <= 0 or not chance(self.rng, 60):
            return
        request = self._withdrawal(max(self.balances.cash * self.rng.randint(30, 100) // 100, 1))
        yield from self._send(request, Outcome.OK)
        ending = weighted_choice(self.rng, WITHDRAWAL_ENDINGS, WITHDRAWAL_ENDING_WEIGHTS)
        if ending is None:
            return
        step = ending(**self._fields(), withdrawal_key=request.idempotency_key)
        yield from self._send(step, Outcome.OK)
        if chance(self.rng, 25):  # payment webhooks are delivered at least once
            yield from self._retry(step)

    # Game rounds.

    def _play_rounds(self) -> Script:
        for index in range(self.rounds):
            is_funded = yield from self._ensure_funds()
            if not is_funded:
                self.tally.rounds_done += self.rounds - index
                return
            yield from self._play_round()
            self.tally.rounds_done += 1

    def _ensure_funds(self) -> Generator[c.Command, CommandResult, bool]:
        """Tops the wallet up when it cannot cover the smallest stake; False if refused."""
        if self._spendable() >= self.own_sizes.stake.low * self.stake_factor:
            return True
        result = yield from self._send(self._deposit(self._deposit_size()))
        return result.original_outcome is Outcome.OK

    def _play_round(self) -> Script:
        provider = self.rng.choice(PROVIDERS)
        category = self.rng.choice(PROVIDER_CATEGORIES[provider])
        bet = self._bet(provider, category, min(self._stake(), self._spendable()))
        kind = self.rng.randrange(100)
        if kind < 4:
            yield from self._rollback_before_bet(bet)
        elif kind < 12:
            yield from self._cancelled_round(bet)
        elif kind < 16:
            yield from self._rollback_after_win(bet)
        else:
            yield from self._settled_round(bet)

    def _settled_round(self, bet: c.Bet) -> Script:
        result = yield from self._send(bet)
        if result.original_outcome is not Outcome.OK:
            return
        if chance(self.rng, 3):
            yield from self._retry(bet)
        payout = 0 if chance(self.rng, 50) else bet.amount * self.rng.choice(WIN_PERCENTS) // 100
        win = self._win(bet, payout)
        yield from self._send(win, Outcome.OK)
        if chance(self.rng, 3):
            yield from self._retry(win)

    def _cancelled_round(self, bet: c.Bet) -> Script:
        """The provider voids the round before it settles: the stake comes back."""
        result = yield from self._send(bet)
        if result.original_outcome is Outcome.OK:
            yield from self._send(self._rollback(bet), Outcome.OK)

    def _rollback_after_win(self, bet: c.Bet) -> Script:
        """A provider tries to void a round it already settled: the engine refuses."""
        result = yield from self._send(bet)
        if result.original_outcome is not Outcome.OK:
            return
        yield from self._send(self._win(bet, bet.amount), Outcome.OK)
        yield from self._send(self._rollback(bet), Outcome.ALREADY_SETTLED)

    def _rollback_before_bet(self, bet: c.Bet) -> Script:
        """The rollback overtakes its bet: it leaves a tombstone, and the bet moves nothing."""
        yield from self._send(self._rollback(bet), Outcome.OK)
        before = self.balances
        yield from self._send(bet, Outcome.OK)
        # A lazily applied bonus expiry may move bonus money here, but never cash or holds.
        if (self.balances.cash, self.balances.held) != (before.cash, before.held):
            self.tally.anomaly(bet, "a bet whose rollback came first must move no money")


ProgressCallback = Callable[[Tally], None]


def simulate(
    ledger: Ledger, config: DemoConfig, on_progress: ProgressCallback | None = None
) -> Tally:
    """Plays every player's script to its end through ledger; returns the tally."""
    tally = Tally()
    sizes = currency_sizes(ledger.rules.currencies)
    rng = random.Random(f"{config.seed}:players")
    pending: Pending = []
    for index in range(config.players):
        profile = draw_profile(index, config.seed, rng)
        player_rng = random.Random(rng.getrandbits(64))
        script = PlayerScript(profile, sizes, player_rng, config.rounds, tally).run()
        pending.append((script, next(script)))  # every script sends at least one deposit
    while pending:
        pending = _tick(ledger, pending, tally)
        if on_progress is not None:
            on_progress(tally)
    return tally


def _tick(ledger: Ledger, pending: Pending, tally: Tally) -> Pending:
    """Sends each pending command, one batch per batch_size_max, and advances its script."""
    commands = [command for _, command in pending]
    results: list[CommandResult] = []
    for start in range(0, len(commands), limits.batch_size_max):
        results.extend(ledger.execute_batch(commands[start : start + limits.batch_size_max]))
    advanced: Pending = []
    for (script, command), result in zip(pending, results, strict=True):
        tally.count(command, result)
        with contextlib.suppress(StopIteration):  # this player has finished
            advanced.append((script, script.send(result)))
    return advanced
