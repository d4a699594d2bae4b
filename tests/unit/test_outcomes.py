"""One row per outcome of docs/contract.md, walked in precedence order, plus check-order rows
where several checks fail at once and the earliest must win. Runs the real application on
an SQLite file, so idempotency outcomes are exercised through the store."""

from datetime import timedelta

import pytest

from ledger.core.commands import idempotency_scope
from ledger.core.events import CommandRefused
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from tests.builders import (
    EUR,
    bet,
    cancel,
    complete,
    deposit,
    forfeit,
    grant,
    reverse,
    rollback,
    set_limits,
    win,
    withdraw,
)
from tests.conftest import SteppingClock

FAR = SteppingClock().now + timedelta(days=365)

# (expected outcome, setup commands, the probe command)
ROWS = [
    (Outcome.OK, [], deposit("d1", 10 * EUR)),
    (Outcome.DUPLICATE, [deposit("d1", 10 * EUR)], deposit("d1", 10 * EUR)),
    (Outcome.CONFLICT, [deposit("d1", 10 * EUR)], deposit("d1", 11 * EUR)),
    (Outcome.WRONG_CURRENCY, [], bet("b1", EUR)),
    (Outcome.WITHDRAWAL_NOT_FOUND, [deposit("d1", 10 * EUR)], complete("c1", "nope")),
    (Outcome.BET_NOT_FOUND, [deposit("d1", 10 * EUR)], win("w1", "nope", EUR)),
    (
        Outcome.ALREADY_ROLLED_BACK,
        [deposit("d1", 10 * EUR), bet("b1", EUR), rollback("rb1", "b1")],
        win("w1", "b1", EUR),
    ),
    (
        Outcome.ALREADY_SETTLED,
        [deposit("d1", 10 * EUR), bet("b1", EUR), win("w1", "b1", 2 * EUR)],
        rollback("rb1", "b1"),
    ),
    (Outcome.INVALID_STATE, [deposit("d1", 10 * EUR)], forfeit("f1")),
    (
        Outcome.PLAYER_BLOCKED,
        [deposit("d1", 10 * EUR), set_limits("l1", self_excluded_until=FAR)],
        bet("b1", EUR),
    ),
    (
        Outcome.NEGATIVE_BALANCE,
        [deposit("d1", 10 * EUR), bet("b1", 10 * EUR), reverse("cb1", 10 * EUR)],
        withdraw("wd1", EUR),
    ),
    (
        Outcome.ROUND_CLOSED,
        [deposit("d1", 10 * EUR), bet("b1", EUR), win("w1", "b1", 0)],
        bet("b2", EUR),
    ),
    (
        Outcome.LIMIT_EXCEEDED,
        [set_limits("l1", deposit_limit_24h=5 * EUR)],
        deposit("d1", 6 * EUR),
    ),
    (Outcome.INSUFFICIENT_FUNDS, [deposit("d1", 10 * EUR)], bet("b1", 11 * EUR)),
]

# Several checks fail; the first in spec order decides.
CHECK_ORDER_ROWS = [
    (  # blocks before negative balance, round state, limits and funds
        Outcome.PLAYER_BLOCKED,
        [
            deposit("d1", EUR),
            bet("b0", EUR, round_id="r0"),
            win("w0", "b0", 0),
            reverse("cb", 5 * EUR),
            set_limits("l1", self_excluded_until=FAR),
        ],
        bet("b1", 100 * EUR, round_id="r0"),
    ),
    (  # negative balance before round state and funds
        Outcome.NEGATIVE_BALANCE,
        [
            deposit("d1", EUR),
            bet("b0", EUR, round_id="r0"),
            win("w0", "b0", 0),
            reverse("cb", 5 * EUR),
        ],
        bet("b1", 100 * EUR, round_id="r0"),
    ),
    (  # round state before limits and funds
        Outcome.ROUND_CLOSED,
        [
            deposit("d1", EUR),
            set_limits("l1", loss_limit_24h=2 * EUR),
            bet("b0", EUR, round_id="r0"),
            win("w0", "b0", 0),
        ],
        bet("b1", 100 * EUR, round_id="r0"),
    ),
    (  # limits before funds
        Outcome.LIMIT_EXCEEDED,
        [deposit("d1", EUR), set_limits("l1", loss_limit_24h=2 * EUR)],
        bet("b1", 100 * EUR),
    ),
    (  # a rollback naming another player's bet: CONFLICT, even before WRONG_CURRENCY
        Outcome.CONFLICT,
        [deposit("d1", 10 * EUR), bet("b1", EUR)],
        rollback("rb1", "b1", player="p2"),
    ),
    (  # idempotency before everything: a replayed success stays a success
        Outcome.DUPLICATE,
        [deposit("d1", 10 * EUR), bet("b1", EUR), reverse("cb", 50 * EUR)],
        bet("b1", EUR),
    ),
    (  # a win settles an earlier bet even for a blocked, negative player
        Outcome.OK,
        [
            deposit("d1", 10 * EUR),
            bet("b1", EUR),
            reverse("cb", 50 * EUR),
            set_limits("l1", self_excluded_until=FAR),
        ],
        win("w1", "b1", 3 * EUR),
    ),
]


def _run(tmp_path, setup, probe):
    with Ledger(f"sqlite:///{tmp_path}/outcomes.sqlite3", clock=SteppingClock()) as ledger:
        for command in setup:
            assert ledger.execute(command).outcome is Outcome.OK, command
        return ledger.execute(probe)


def test_rows_cover_every_outcome_in_precedence_order():
    """The table has exactly one row per outcome, in the enum's precedence order."""
    assert [row[0] for row in ROWS] == list(Outcome)


@pytest.mark.parametrize(("expected", "setup", "probe"), ROWS, ids=[r[0].value for r in ROWS])
def test_outcome_row(tmp_path, expected, setup, probe):
    """The probe command gets exactly the row's outcome after the row's setup."""
    assert _run(tmp_path, setup, probe).outcome is expected


@pytest.mark.parametrize(
    ("expected", "setup", "probe"), CHECK_ORDER_ROWS, ids=[r[0].value for r in CHECK_ORDER_ROWS]
)
def test_check_order(tmp_path, expected, setup, probe):
    """When several checks fail, the earliest in the spec's check order decides."""
    assert _run(tmp_path, setup, probe).outcome is expected


def test_rejection_moves_nothing_and_carries_current_balances(tmp_path):
    """An insufficient-funds answer carries the unchanged balance and writes no postings."""
    result = _run(tmp_path, [deposit("d1", 10 * EUR)], bet("b1", 11 * EUR))
    assert (result.balances.cash, result.balances.bonus, result.balances.held) == (10 * EUR, 0, 0)
    assert result.journal_id is None


REFUSAL_ROWS = [row for row in ROWS if not row[0].is_success and row[0] is not Outcome.CONFLICT]


@pytest.mark.parametrize(
    ("expected", "setup", "probe"), REFUSAL_ROWS, ids=[r[0].value for r in REFUSAL_ROWS]
)
def test_a_refusal_is_recorded_in_its_wallets_chain(tmp_path, expected, setup, probe):
    """A refused command on an existing wallet appends one CommandRefused naming its outcome,
    which its idempotency record spans; for a wallet that does not exist, nothing is appended."""
    with Ledger(f"sqlite:///{tmp_path}/refusals.sqlite3", clock=SteppingClock()) as ledger:
        for command in setup:
            ledger.execute(command)
        before = ledger.wallet(probe.player_id, probe.currency)
        assert ledger.execute(probe).outcome is expected
        record, events = ledger.transaction(idempotency_scope(probe), probe.idempotency_key)
    assert record.outcome == expected.value and record.journal_id is None
    if before is None:
        assert events == [] and record.wallet_version_first == record.wallet_version_last + 1
        return
    refused = events[-1]
    assert isinstance(refused, CommandRefused) and refused.postings == ()
    assert (refused.outcome, refused.command_type) == (expected.value, type(probe).__name__)
    assert refused.originator_version == record.wallet_version_last == before.version + 1


def test_withdrawal_steps_have_their_outcomes(tmp_path):
    """Cancel and fail return a hold to cash; a second step on a closed withdrawal is refused."""
    with Ledger(f"sqlite:///{tmp_path}/w.sqlite3", clock=SteppingClock()) as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
        assert ledger.execute(withdraw("wd1", 4 * EUR)).balances.held == 4 * EUR
        assert ledger.execute(cancel("c1", "wd1")).balances.cash == 10 * EUR
        assert ledger.execute(complete("c2", "wd1")).outcome is Outcome.INVALID_STATE
        ledger.execute(withdraw("wd2", 3 * EUR))
        done = ledger.execute(complete("c3", "wd2"))
        assert (done.balances.cash, done.balances.held) == (7 * EUR, 0)


def test_second_bonus_while_one_is_active_is_invalid_state(tmp_path):
    """One bonus at a time: granting another while one is active is refused."""
    result = _run(tmp_path, [grant("g1", 5 * EUR, multiplier=10)], grant("g2", 5 * EUR))
    assert result.outcome is Outcome.INVALID_STATE
