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
from ledger.core.partition import PARTITION_COUNT, partition_of
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
        reused_keys_are_refused = False

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


def test_a_key_reused_for_another_player_is_flagged_for_reconciliation(citus_url):
    """On Citus a command's record is looked for in its wallet's partition only (reading
    every shard cost more than the write), so the same key sent for a player in another
    partition is accepted there; the follower flags it once, naming both wallets, and the
    audit names it. Neither wallet's money is doubled; a resend for the same player is
    still a DUPLICATE, synchronously."""
    first, second = _players_in_two_partitions()
    with Ledger(citus_url) as ledger:
        for player in (first, second):
            ledger.execute(deposit(f"d-{player}", 10 * EUR, player=player))
        outcomes = [
            ledger.execute(bet("tx-shared", EUR, player=p)).outcome for p in (first, second)
        ]
        assert outcomes == [Outcome.OK, Outcome.OK]
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


def test_checkpoints_on_citus_pin_every_shard_and_catch_a_rewrite(citus_url, tmp_path):
    """`ledger checkpoint` on Citus signs a tree per partition; a second continues the
    first; the audit proves both, and catches an event rewritten on its worker's shard."""
    make_history(citus_url, players=6, rounds=2)
    key, first, second = tmp_path / "k.pem", tmp_path / "1.json", tmp_path / "2.json"
    runner = CliRunner()
    assert runner.invoke(main, ["checkpoint-key", str(key)]).exit_code == 0
    sign = ["checkpoint", "--database-url", citus_url, "--signing-key", str(key)]
    assert runner.invoke(main, [*sign, "--output", str(first)]).exit_code == 0
    with Ledger(citus_url) as ledger:
        ledger.execute(deposit("late", EUR, player="late-player"))
    made = runner.invoke(main, [*sign, "--output", str(second), "--previous", str(first)])
    assert made.exit_code == 0, made.output
    audit_args = ["audit", "--database-url", citus_url, "--no-projections"]
    files = ["--checkpoint", str(first), "--checkpoint", str(second), "--verify-key", f"{key}.pub"]
    passed = runner.invoke(main, [*audit_args, *files])
    assert passed.exit_code == 0, passed.output
    assert passed.output.count("the history extends") == 4  # two files, two stored
    wallet = wallet_id("late-player", "EUR")
    base, _, schema = citus_url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{schema.split("&")[0]}".ledger_log SET state = state || %s '
            "WHERE partition_id = %s AND stream_id = %s AND version = 2",
            (b"x", partition_of(wallet, PARTITION_COUNT), wallet),
        )
    failed = runner.invoke(main, [*audit_args, *files])
    assert failed.exit_code == 1
    assert f"checkpoint file {second}: the history no longer extends it" in failed.output
