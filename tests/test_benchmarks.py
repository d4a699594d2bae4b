"""The benchmark harnesses run in a tiny smoke mode, so they cannot rot between real runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_benchmark(script: str, arguments: list[str], timeout_s: int):
    """Runs benchmarks/script with arguments; its output, or an error if it fails."""
    command = [sys.executable, str(ROOT / "benchmarks" / script), *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=True)


def test_projection_benchmark_smoke(tmp_path):
    """The projection benchmark writes a history, catches up, audits and reports rates."""
    run = _run_benchmark(
        "projections_bench.py",
        ["--smoke", "--events", "3000", "--database-url", f"sqlite:///{tmp_path}/bench.sqlite3"],
        timeout_s=300,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["events"] >= 3000
    assert result["catch_up_events_per_s"] > 0 and result["audit_events_per_s"] > 0


def test_throughput_benchmark_smoke():
    """The throughput harness drives two partitioned server processes briefly, and its books
    check passes."""
    run = _run_benchmark(
        "throughput.py",
        ["--smoke", "--processes", "2", "--workdir", "/tmp/ledger-bench-smoke"],
        timeout_s=300,
    )
    lines = [json.loads(line) for line in run.stdout.strip().splitlines()]
    books = lines[-1]["books"]
    assert books["group commit on"]["audit"] == "passed"
    assert books["group commit off"]["audit"] == "passed"
    for row in lines[:-1]:  # each cell says what a command cost the server, load and database
        cpu = row["cpu_us_per_command"]
        assert cpu["load"] > 0 and (cpu["server"] > 0) != row["mode"].startswith("raw"), row


def test_throughput_benchmark_smoke_on_sqlite(tmp_path):
    """On the embedded store the harness measures raw SQLite as baseline a, checks the books,
    and leaves no database file behind."""
    run = _run_benchmark(
        "throughput.py", ["--smoke", "--store", "sqlite", "--workdir", str(tmp_path)], timeout_s=300
    )
    lines = [json.loads(line) for line in run.stdout.strip().splitlines()]
    assert lines[-1]["books"]["group commit on"]["audit"] == "passed"
    assert lines[-1]["books"]["group commit off"]["audit"] == "passed"
    raw = [row for row in lines[:-1] if row["mode"].startswith("raw")]
    assert [row["mode"] for row in raw] == [
        "raw SQLite insert+commit",
        "raw SQLite insert+commit, again at the end",
    ]
    assert all(row["commands_per_s"] > 0 for row in raw)
    assert not list(tmp_path.glob("*.sqlite3*"))


@pytest.mark.postgres
def test_engine_inprocess_benchmark_smoke(pg_database):
    """The in-process engine benchmark seeds, runs one batch, reports and drops its database."""
    run = _run_benchmark(
        "engine_inprocess.py", ["--batches", "1", "--players", "200"], timeout_s=120
    )
    assert "1000 commands in" in run.stdout and "engine CPU per command" in run.stdout


@pytest.mark.postgres
def test_engine_inprocess_benchmark_writes_the_commands_in_groups_of_the_size_asked(pg_database):
    """--group-size writes the same 1,000 commands 64 at a time: 16 groups, the last of 40."""
    run = _run_benchmark(
        "engine_inprocess.py",
        ["--batches", "1", "--players", "200", "--group-size", "64"],
        timeout_s=120,
    )
    assert "1000 commands in" in run.stdout and "16 groups of up to 64" in run.stdout


@pytest.mark.postgres
def test_layouts_benchmark_smoke(pg_database, tmp_path):
    """The layouts harness runs each cell on the single and the partitioned log in rounds of
    alternating order, audits both stores, and gives the partitioned log's ratio to the single
    log's per round and as the mean."""
    run = _run_benchmark(
        "layouts.py",
        [
            "--smoke",
            "--processes",
            "1",
            "--cells",
            "batch",
            "--rounds",
            "2",
            "--workdir",
            str(tmp_path),
        ],
        timeout_s=300,
    )
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith('{"mode"')]
    assert [(r["round"], r["layout"]) for r in rows] == [
        (1, "single"),
        (1, "partitioned"),
        (2, "partitioned"),
        (2, "single"),
    ]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert {layout: book["audit"] for layout, book in result["books"].items()} == {
        "single": "passed",
        "partitioned": "passed",
    }
    [single, partitioned] = result["summary"]
    assert (single["layout"], single["ratio_to_single"]) == ("single", 1.0)
    assert partitioned["layout"] == "partitioned" and partitioned["ratio_to_single"] > 0
    assert len(partitioned["round_ratios"]) == 2
    assert "| partitioned | batch | 4 |" in run.stdout


@pytest.mark.postgres
def test_append_cost_benchmark_smoke(pg_database):
    """The append-cost benchmark times both logs at every batch size and writer count and
    reports a ratio per cell."""
    run = _run_benchmark("append_cost.py", ["--seconds", "0.1", "--repeats", "1"], timeout_s=120)
    summaries = json.loads(run.stdout.strip().splitlines()[-1])
    assert [(s["batch"], s["writers"]) for s in summaries] == [
        (1, 1),
        (1, 2),
        (1, 4),
        (64, 1),
        (64, 2),
        (64, 4),
    ]
    assert all(s["single"]["events_per_s"] > 0 and s["ratio"] > 0 for s in summaries)
