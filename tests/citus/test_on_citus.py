"""The engine on a real Citus cluster (`?layout=citus`): the hypothesis state machine, the
projection kill test, the audit of a demo history, and a key reused for two players
(accepted at write time, flagged by the follower and named by the audit). The contract suite
runs on Citus too (`tests/store/`, the `citus` parameter). Without LEDGER_TEST_CITUS_URL every
test here skips with that reason."""

import psycopg
import pytest
from click.testing import CliRunner
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from ledger.cli.main import main
from ledger.core.outcomes import Outcome
from ledger.core.partition import partition_of
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from projections.audit import audit
from projections.stores import open_projection_store
from tests.builders import EUR, bet, deposit
from tests.conftest import CITUS_UNSET, CITUS_URL, drop_pg_schema, new_citus_schema
from tests.projections.conftest import make_history
from tests.projections.test_runner import kill_and_resume
from tests.property.test_ledger_machine import MACHINE_SETTINGS, LedgerMachine

pytestmark = pytest.mark.citus


def test_the_tables_are_distributed_and_co_located(citus_url):
    """Opening a store on Citus distributes the events and heads by partition_id, on the
    same co-location group, and the append function by its partition argument."""
    with Ledger(citus_url) as ledger:
        assert ledger.log.partitions == 256
    schema = citus_url.split("schema=")[1].split("&")[0]
    with psycopg.connect(CITUS_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT logicalrelid::text, colocationid FROM pg_dist_partition "
            "WHERE logicalrelid::text LIKE %s ORDER BY 1",
            (f"{schema}.%",),
        ).fetchall()
        functions = conn.execute(
            "SELECT count(*) FROM pg_dist_object o JOIN pg_proc p ON p.oid = o.objid "
            "WHERE p.proname = 'ledger_log_append' AND o.distribution_argument_index = 0"
        ).fetchone()[0]
    assert [name.split(".")[1] for name, _ in rows] == ["ledger_log", "ledger_log_heads"]
    assert len({colocation for _, colocation in rows}) == 1
    assert functions >= 1


def test_ledger_matches_model_on_citus():
    """The engine on Citus agrees with the model after every step."""
    if not CITUS_URL:
        pytest.skip(CITUS_UNSET)

    class OnCitus(LedgerMachine):
        def new_database_url(self) -> str:
            return new_citus_schema()

        def teardown(self) -> None:
            self.ledger.close()
            drop_pg_schema(self.url)

    run_state_machine_as_test(OnCitus, settings=settings(MACHINE_SETTINGS, max_examples=8))


@pytest.mark.slow
def test_kill_9_of_the_projection_runner_on_citus(citus_url):
    """A runner killed with SIGKILL again and again on Citus, resumed, ends exactly right."""
    kill_and_resume(citus_url)


def test_a_demo_history_on_citus_audits_clean(citus_url):
    """The demo's history on Citus, projected, passes the audit against the views."""
    make_history(citus_url, players=20, rounds=4)
    result = CliRunner().invoke(main, ["project", "--database-url", citus_url])
    assert result.exit_code == 0, result.output
    with Ledger(citus_url) as ledger:
        store = open_projection_store(citus_url)
        report = audit(ledger.log, store)
        store.close()
    assert report.passed, [str(finding) for finding in report.findings]
    assert report.events > 100


def test_a_key_sent_for_another_player_later_is_a_conflict(citus_url):
    """A key already recorded for one player is found for any other (the lookup reads every
    shard): resent for another player, it is a CONFLICT, as on one node."""
    first, second = _players_in_two_partitions()
    with Ledger(citus_url) as ledger:
        for player in (first, second):
            ledger.execute(deposit(f"d-{player}", 10 * EUR, player=player))
        assert ledger.execute(bet("tx-1", EUR, player=first)).outcome is Outcome.OK
        assert ledger.execute(bet("tx-1", EUR, player=second)).outcome is Outcome.CONFLICT


def test_a_key_raced_for_two_players_is_flagged_for_reconciliation(citus_url):
    """Two writers deciding the same key for two players at once, in two partitions: on
    Citus both are accepted (the records sit on two shards, no key spans them); the follower
    flags the key once, naming both wallets, and the audit names it. Neither wallet's money
    is doubled, and a resend is a DUPLICATE."""
    first, second = _players_in_two_partitions()
    with Ledger(citus_url) as ledger, Ledger(citus_url) as other:
        for player in (first, second):
            ledger.execute(deposit(f"d-{player}", 10 * EUR, player=player))
        mine, theirs = bet("tx-shared", EUR, player=first), bet("tx-shared", EUR, player=second)
        assert _raced(ledger, other, mine, theirs) == [Outcome.OK, Outcome.OK]
        assert ledger.execute(bet("tx-shared", EUR, player=first)).outcome is Outcome.DUPLICATE
        assert ledger.balances(first, "EUR").cash == ledger.balances(second, "EUR").cash == 9 * EUR
        result = CliRunner().invoke(main, ["project", "--database-url", citus_url])
        assert result.exit_code == 0, result.output
        store = open_projection_store(citus_url)
        flags = store.key_reuses()
        report = audit(ledger.log, store)
        store.close()
    assert [(scope, key) for scope, key, *_ in flags] == [("provider:hub88", "tx-shared")]
    assert {flags[0][2], flags[0][3]} == {wallet_id(first, "EUR"), wallet_id(second, "EUR")}
    assert any("used for a second wallet" in str(finding) for finding in report.findings)


def _raced(ledger: Ledger, other: Ledger, command, rival) -> list[Outcome]:
    """Runs command on ledger, and rival on other wholly between command's reads and its
    append: both decide before either is written."""
    steps, answer, rival_outcome = ledger._attempt_steps([command]), None, None
    while True:
        try:
            function, args = steps.send(answer)
        except StopIteration as done:
            [result] = done.value
            return [result.outcome, rival_outcome]
        if function == ledger.log.append:
            rival_outcome = other.execute(rival).outcome
        answer = function(*args)


def _players_in_two_partitions() -> tuple[str, str]:
    players = [f"kr-{n}" for n in range(64)]
    first = players[0]
    home = partition_of(wallet_id(first, "EUR"), 256)
    second = next(p for p in players if partition_of(wallet_id(p, "EUR"), 256) != home)
    return first, second


def test_a_batch_over_several_partitions_answers_each_command_in_order(citus_url):
    """On Citus a batch is written one partition per transaction: each command still gets
    its own result, in the order sent, and a resend of the batch is all DUPLICATE."""
    players = [f"split-{n}" for n in range(6)]
    homes = {partition_of(wallet_id(p, "EUR"), 256) for p in players}
    assert len(homes) > 1
    batch = [deposit(f"d-{p}", (n + 1) * EUR, player=p) for n, p in enumerate(players)]
    with Ledger(citus_url) as ledger:
        results = ledger.execute_batch(batch)
        assert [r.outcome for r in results] == [Outcome.OK] * len(players)
        assert [r.balances.cash for r in results] == [(n + 1) * EUR for n in range(6)]
        again = ledger.execute_batch(batch)
        assert [r.outcome for r in again] == [Outcome.DUPLICATE] * len(players)
