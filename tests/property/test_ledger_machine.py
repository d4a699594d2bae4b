"""Stateful property test: hypothesis drives the real application, on SQLite and on
PostgreSQL, against the small model in `model.py` (suspense items included). After every
step it checks that postings sum to zero per currency, every balance equals the fold of its
postings and the model's, held is never negative and cash and bonus only after a reversal;
replays change nothing; and a reopened store folds to the same balances."""

import uuid
from datetime import timedelta

import msgspec
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.cli.summary import RunningSummary
from ledger.core.outcomes import Outcome
from ledger.core.partition import PARTITION_COUNT, partition_of
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from ledger.store.database import with_layout
from tests import builders as b
from tests.conftest import SteppingClock, drop_pg_schema, new_pg_schema
from tests.property.model import Model

PLAYERS = ("alice", "bob")
# Arbitrary minor units (up to 5 EUR), so pro-rata splits really have remainders to round.
amounts = st.integers(min_value=1, max_value=5_000_000)
rounds = st.sampled_from(("r1", "r2", "r3"))
LOW_CASH = 3_000_000


def _same_partition(one: str, other: str) -> bool:
    """Whether two players' EUR wallets share a partition of the log."""
    return partition_of(wallet_id(one, "EUR"), PARTITION_COUNT) == partition_of(
        wallet_id(other, "EUR"), PARTITION_COUNT
    )


class LedgerMachine(RuleBasedStateMachine):
    """The machine; a subclass per backend says where each run's store is."""

    # A distributed log (Citus) accepts a key reused for a player in another partition and
    # flags it afterwards (tests/citus): there, a conflicting resend keeps its player.
    reused_keys_are_refused = True

    bets = Bundle("bets")
    wins = Bundle("wins")
    withdrawals = Bundle("withdrawals")
    items = Bundle("suspense_items")

    def __init__(self) -> None:
        super().__init__()
        self.url = self.new_database_url()
        self.clock = SteppingClock()
        self.ledger = Ledger(self.url, clock=self.clock)
        self.summary = RunningSummary()  # the store's fold, kept current step by step
        self.model = Model()
        self.history: list[tuple[object, Outcome]] = []
        self.serial = 0

    def new_database_url(self) -> str:
        raise NotImplementedError("a subclass per backend says where the store is")

    def teardown(self) -> None:
        self.ledger.close()
        if self.url.startswith("postgresql"):
            drop_pg_schema(self.url)

    @property
    def now(self) -> int:
        """The ledger time, in whole seconds, at which the next command will be decided."""
        return int((self.clock.now + self.clock.step).timestamp())

    def _key(self, player: str, kind: str) -> str:
        self.serial += 1
        return f"{player}-{kind}-{self.serial}"

    def _run(self, command, expected: str, player: str):
        result = self.ledger.execute(command)
        assert result.outcome.value == expected, (command, result.outcome, expected)
        assert tuple(result.balances.__struct_fields__) == ("cash", "bonus", "held")
        balances = (result.balances.cash, result.balances.bonus, result.balances.held)
        assert balances == self.model.balances(player), (command, balances)
        self.history.append((command, result.outcome))
        return result

    @initialize()
    def open_wallets(self) -> None:
        """Alice plays on cash; bob on a little cash and a bonus, so stakes mix the two."""
        self._run(
            b.deposit("seed-a", 20_000_000, player="alice"),
            self.model.deposit("alice", 20_000_000, self.now, "seed-a"),
            "alice",
        )
        self._run(
            b.deposit("seed-b", 1_000_003, player="bob"),
            self.model.deposit("bob", 1_000_003, self.now, "seed-b"),
            "bob",
        )
        self._run(
            b.grant("seed-g", 9_000_007, multiplier=3, player="bob"),
            self.model.grant("bob", "seed-g", 9_000_007, 3, None, self.now),
            "bob",
        )

    @rule(player=st.sampled_from(PLAYERS), amount=amounts)
    def deposit(self, player, amount):
        # Deposits only top up low wallets: rich wallets never stake bonus money.
        if self.model.balances(player)[0] >= LOW_CASH:
            return
        key = self._key(player, "d")
        self._run(
            b.deposit(key, amount, player=player),
            self.model.deposit(player, amount, self.now, key),
            player,
        )

    @rule(player=st.sampled_from(PLAYERS), amount=amounts)
    def chargeback(self, player, amount):
        self._run(
            b.reverse(self._key(player, "cb"), amount, player=player),
            self.model.reverse(player, amount),
            player,
        )

    @rule(target=items, amount=amounts)
    def hold_in_suspense(self, amount):
        key = self._key("chain", "item")
        self._run(b.hold(key, amount), self.model.hold(key, amount), "")
        return key

    @rule(item=items, player=st.sampled_from(PLAYERS))
    def attribute_suspense(self, item, player):
        """Attributions only top up low wallets, like deposits."""
        if self.model.balances(player)[0] >= LOW_CASH:
            return
        key = self._key(player, "fix")
        self._run(
            b.attribute(key, item, player=player),
            self.model.attribute(player, item, self.now, key),
            player,
        )

    @rule(item=items)
    def return_suspense(self, item):
        self._run(b.give_back(self._key("chain", "ret"), item), self.model.give_back(item), "")

    @rule(player=st.sampled_from(PLAYERS), data=st.data())
    def charge_back_a_deposit(self, player, data):
        """A chargeback naming a deposit (or one never made) takes back at most its amount;
        amounts cluster at the boundary: all that is left, one unit more, half of it."""
        wallet = self.model.wallets.get(player)
        known = sorted(wallet.unreversed) if wallet else []
        key = data.draw(st.sampled_from([*known, "never-deposited"]))
        left = wallet.unreversed[key] if key in known else 0
        edges = st.sampled_from([max(left, 1), left + 1, max(left // 2, 1)])
        amount = data.draw(edges | amounts)
        self._run(
            b.reverse(self._key(player, "cbk"), amount, player=player, deposit=key),
            self.model.reverse_deposit(player, key, amount),
            player,
        )

    @rule(
        target=bets,
        player=st.sampled_from(PLAYERS),
        amount=amounts,
        round_id=rounds,
        late=st.booleans(),
    )
    def bet(self, player, amount, round_id, late):
        # A "late" bet reuses a key a rollback may already have named (out of order).
        key = f"{player}-late-{round_id}" if late else self._key(player, "b")
        if late and any(getattr(c, "idempotency_key", None) == key for c, _ in self.history):
            key = self._key(player, "b")
        expected = self.model.bet(player, key, amount, round_id, self.now)
        self._run(b.bet(key, amount, round_id=round_id, player=player), expected, player)
        return (player, key)

    @rule(target=bets, player=st.sampled_from(PLAYERS), extra=amounts, round_id=rounds)
    def bet_beyond_cash(self, player, extra, round_id):
        """A stake larger than the cash balance, so it spends bonus money too."""
        amount = max(self.model.balances(player)[0], 0) + extra
        key = self._key(player, "bb")
        expected = self.model.bet(player, key, amount, round_id, self.now)
        self._run(b.bet(key, amount, round_id=round_id, player=player), expected, player)
        return (player, key)

    @rule(target=wins, bet=bets, amount=st.integers(0, 10_000_000), closes=st.booleans())
    def win(self, bet, amount, closes):
        player, bet_key = bet
        key = self._key(player, "w")
        expected = self.model.win(player, key, bet_key, amount, closes)
        self._run(b.win(key, bet_key, amount, closed=closes, player=player), expected, player)
        return (player, key)

    @rule(bet=bets)
    def roll_back_bet(self, bet):
        self._roll_back(*bet)

    @rule(win=wins)
    def roll_back_win(self, win):
        self._roll_back(*win)

    @rule(bet=bets, player=st.sampled_from(PLAYERS))
    def roll_back_another_players_bet(self, bet, player):
        """A rollback naming another player's bet key is CONFLICT: no tombstone, no refund.
        A distributed log looks the key up in the player's partition only: from another
        partition it is a rollback of a bet never seen (flagged afterwards, tests/citus)."""
        owner, key = bet
        if owner != player:
            seen = self.reused_keys_are_refused or _same_partition(owner, player)
            expected = self.model.rollback(player, key, owner=owner if seen else None)
            self._run(b.rollback(self._key(player, "rbx"), key, player=player), expected, player)

    @rule(player=st.sampled_from(PLAYERS), round_id=rounds)
    def roll_back_before_the_bet(self, player, round_id):
        self._roll_back(player, f"{player}-late-{round_id}")

    def _roll_back(self, player, target):
        expected = self.model.rollback(player, target)
        self._run(b.rollback(self._key(player, "rb"), target, player=player), expected, player)

    @rule(target=withdrawals, player=st.sampled_from(PLAYERS), amount=amounts)
    def withdraw(self, player, amount):
        key = self._key(player, "wd")
        self._run(
            b.withdraw(key, amount, player=player), self.model.withdraw(player, key, amount), player
        )
        return (player, key)

    @rule(withdrawal=withdrawals, complete=st.booleans())
    def finish_withdrawal(self, withdrawal, complete):
        player, key = withdrawal
        build = b.complete if complete else b.cancel
        expected = self.model.finish_withdrawal(player, key, complete)
        self._run(build(self._key(player, "wf"), key, player=player), expected, player)

    @rule(
        player=st.sampled_from(PLAYERS),
        amount=amounts,
        multiplier=st.sampled_from((0, 1, 3)),
        cap=st.none() | amounts,
    )
    def grant_bonus(self, player, amount, multiplier, cap):
        key = self._key(player, "g")
        expected = self.model.grant(player, key, amount, multiplier, cap, self.now)
        command = b.grant(key, amount, multiplier=multiplier, max_conversion=cap, player=player)
        self._run(command, expected, player)

    @rule(player=st.sampled_from(PLAYERS))
    def forfeit_bonus(self, player):
        self._run(
            b.forfeit(self._key(player, "f"), player=player), self.model.forfeit(player), player
        )

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def replay(self, data):
        """An identical resend changes nothing and answers as the original did."""
        command, first = data.draw(st.sampled_from(self.history))
        if first in (Outcome.DUPLICATE, Outcome.CONFLICT):
            return
        expected = "DUPLICATE" if first is Outcome.OK else first.value
        self._run(command, expected, command.player_id)
        self.history.pop()

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def conflicting_resend(self, data):
        """The same key with a different request is a conflict and changes nothing (for
        another player, only where the store refuses a key reused across partitions)."""
        command, _ = data.draw(st.sampled_from(self.history))
        if not command.player_id:  # a suspense hold or return: another amount or item
            field = "amount" if hasattr(command, "amount") else "item_key"
            changed = {field: getattr(command, field) + (1 if field == "amount" else "-x")}
            self._run(msgspec.structs.replace(command, **changed), "CONFLICT", "")
        elif not self.reused_keys_are_refused:  # the same player, another amount
            if hasattr(command, "amount"):
                changed_amount = msgspec.structs.replace(command, amount=command.amount + 1)
                self._run(changed_amount, "CONFLICT", command.player_id)
        else:
            other = "bob" if command.player_id == "alice" else "alice"
            self._run(msgspec.structs.replace(command, player_id=other), "CONFLICT", other)
        self.history.pop()

    @rule(
        player=st.sampled_from(PLAYERS),
        limit=st.none() | amounts,
        exclude_hours=st.sampled_from((None, None, 1, 30)),
    )
    def set_limits(self, player, limit, exclude_hours):
        until = self.clock.now + timedelta(hours=exclude_hours) if exclude_hours else None
        expected = self.model.set_limits(
            player, limit, int(until.timestamp()) if until else None, self.now
        )
        command = b.set_limits(
            self._key(player, "l"),
            player=player,
            deposit_limit_24h=limit,
            self_excluded_until=until,
        )
        self._run(command, expected, player)

    @rule(hours=st.sampled_from((1, 12, 25)))
    def time_passes(self, hours):
        """Limits' cooling-off and exclusions run out as ledger time moves on."""
        self.clock.advance(timedelta(hours=hours))

    @rule()
    def reopen(self):
        """A restarted engine folds the stored streams to the same balances."""
        self.ledger.close()
        self.ledger = Ledger(self.url, clock=self.clock)
        for player in PLAYERS:
            balances = self.ledger.balances(player, "EUR")
            assert (balances.cash, balances.bonus, balances.held) == self.model.balances(player)

    @invariant()
    def books_balance_and_balances_are_posting_folds(self):
        summary = self.summary.update(self.ledger)
        assert summary.problems == (), summary.problems
        assert all(totals.total == 0 for totals in summary.currencies)

    @invariant()
    def cold_fold_equals_the_running_state(self):
        """Replaying each stream from the store, ignoring every cache, gives the same state."""
        for player in PLAYERS:
            wallet = wallet_id(player, "EUR")
            cold = self.ledger.loader.fold(wallet)
            warm = self.ledger.wallet(player, "EUR")
            assert (cold is None and warm is None) or cold.balances == warm.balances
            assert cold is None or cold.version == warm.version

    @invariant()
    def the_last_command_replays_without_effect(self):
        """Resending the most recent command answers as it did first and moves nothing."""
        if not self.history:
            return
        command, first = self.history[-1]
        if first in (Outcome.DUPLICATE, Outcome.CONFLICT):
            return
        before = self.ledger.balances(command.player_id, "EUR")
        replay = self.ledger.execute(command)
        expected = Outcome.DUPLICATE if first is Outcome.OK else first
        assert replay.outcome is expected
        assert replay.balances == before

    @invariant()
    def counterparty_accounts_match_the_model(self):
        """House games, house bonus and PSP balances equal the model's leg-by-leg totals."""
        totals = {t.currency: t for t in self.summary.update(self.ledger).currencies}
        accounts = totals["EUR"].accounts if "EUR" in totals else {}
        assert accounts.get("house:games:hub88:EUR", 0) == self.model.games
        assert accounts.get("house:bonus:EUR", 0) == self.model.house_bonus
        assert accounts.get("psp:stripe:EUR", 0) == self.model.psp
        assert accounts.get("chain:ethereum:EUR", 0) == self.model.chain
        assert accounts.get("suspense:EUR", 0) == self.model.suspense

    @invariant()
    def nothing_negative_without_a_reversal(self):
        for player in PLAYERS:
            balances = self.ledger.balances(player, "EUR")
            assert balances.held >= 0
            wallet = self.model.wallets.get(player)
            if wallet is None or not wallet.reversed:
                assert balances.cash >= 0 and balances.bonus >= 0, (player, balances)


MACHINE_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_ledger_matches_model_on_sqlite(tmp_path):
    """The engine on an SQLite file agrees with the model after every step."""

    class OnSQLite(LedgerMachine):
        def new_database_url(self) -> str:
            return f"sqlite:///{tmp_path}/{uuid.uuid4().hex}.db"

    run_state_machine_as_test(OnSQLite, settings=MACHINE_SETTINGS)


@pytest.mark.postgres
def test_ledger_matches_model_on_postgres(pg_database):
    """The engine on PostgreSQL agrees with the model after every step."""

    class OnPostgres(LedgerMachine):
        def new_database_url(self) -> str:
            return new_pg_schema(pg_database)

    run_state_machine_as_test(OnPostgres, settings=settings(MACHINE_SETTINGS, max_examples=20))


@pytest.mark.postgres
def test_ledger_matches_model_on_the_partitioned_log(pg_database):
    """The engine on PostgreSQL's partitioned log agrees with the model after every step."""

    class OnPartitionedLog(LedgerMachine):
        def new_database_url(self) -> str:
            return with_layout(new_pg_schema(pg_database), "partitioned")

    run_state_machine_as_test(
        OnPartitionedLog, settings=settings(MACHINE_SETTINGS, max_examples=15)
    )
