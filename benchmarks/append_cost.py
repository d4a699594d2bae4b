"""What an append costs the single log and the partitioned log, in process, without gRPC.

The event log's `append` alone, on PostgreSQL: each layout on a fresh database, batches of
1 and of 64 events (each event a deposit opening a new wallet stream, so a batch of 64
touches about 57 of the 256 partitions, as a group commit of many players does), from 1, 2
and 4 writer threads sharing the log's connection pool. A batch's events are built outside
the timed append (they count in the cell's wall time, a few µs each, the same for both
logs); their mapping (encode, compress) is inside the append, also the same for both.
Prints, per cell: appends/s, events/s, wall µs per event (the inverse of the throughput),
the mean and p99 latency of one append, and PostgreSQL's CPU µs per event (every backend
of the server, so other databases' work on a shared server counts too); then, per cell,
each layout's medians over the repeats and the ratio. `--explain`
prints EXPLAIN ANALYZE of both logs' append statements instead (each in a transaction
rolled back), to say where the server's time goes. The databases are created and dropped.

    .venv/bin/python benchmarks/append_cost.py --seconds 5
    .venv/bin/python benchmarks/append_cost.py --explain
    .venv/bin/python benchmarks/append_cost.py --profile 64 --seconds 5   # client side
"""

import argparse
import json
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

import psycopg
from psycopg.sql import SQL

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu import CpuMeter
from load import percentile_ms

from ledger.core.events import Deposited, Posting
from ledger.core.partition import partition_of, partition_stream
from ledger.store.database import (
    LAYOUT_PARTITIONED,
    LAYOUT_SINGLE,
    store_environment,
    with_layout,
)
from ledger.store.open import open_event_log

LAYOUTS = ("single", "partitioned")
BATCH_SIZES = (1, 64)
WRITER_COUNTS = (1, 2, 4)
RESULTS = Path(__file__).parent / "results"
PROFILE_LINES = 14
MEDIAN_KEYS = ("events_per_s", "wall_us_per_event", "append_mean_ms", "append_p99_ms")


def _deposit(number: int) -> Deposited:
    """A deposit opening a new wallet stream: one row, about the size of the ledger's."""
    now = datetime.now(UTC)
    return Deposited(
        originator_id=uuid.uuid4(),
        originator_version=1,
        recorded_at=now,
        previous_hash="0" * 64,
        journal_id=uuid.uuid4(),
        key=f"append-cost-{number}",
        currency="EUR",
        postings=(Posting("player:cash", 1000), Posting("house:psp", -1000)),
        occurred_at=now,
        amount=1000,
        rail="psp",
        rail_id="stripe",
    )


def _writer(log, batch: int, deadline: float, latencies: list[float]) -> None:
    """Appends batches of new streams until the deadline; each append's latency in s."""
    number = 0
    while time.perf_counter() < deadline:
        events = [_deposit(number + n) for n in range(batch)]
        number += batch
        started = time.perf_counter()
        log.append(events)
        latencies.append(time.perf_counter() - started)


def _cell(log, layout: str, batch: int, writers: int, seconds: float) -> dict:
    latencies: list[list[float]] = [[] for _ in range(writers)]
    deadline = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=_writer, args=(log, batch, deadline, latencies[n]))
        for n in range(writers)
    ]
    started = time.perf_counter()
    with CpuMeter([]) as cpu:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wall = time.perf_counter() - started
    every = [s for per_writer in latencies for s in per_writer]
    events = len(every) * batch
    return {
        "layout": layout,
        "batch": batch,
        "writers": writers,
        "appends_per_s": round(len(every) / wall),
        "events_per_s": round(events / wall),
        "wall_us_per_event": round(wall / events * 1e6, 1),
        "append_mean_ms": round(sum(every) / len(every) * 1e3, 2),
        "append_p99_ms": percentile_ms(every, 99),
        "pg_cpu_us_per_event": (cpu.per_command_us(events) or {}).get("postgres"),
    }


def _columns(log, events: list[Deposited]) -> tuple[list, ...]:
    stored = [log.mapper.to_stored_event(event) for event in events]
    return (
        [partition_of(partition_stream(e), log.partitions) for e in events],
        [s.originator_id for s in stored],
        [s.originator_version for s in stored],
        [e.recorded_at for e in events],
        [s.topic for s in stored],
        [s.state for s in stored],
    )


def _explain(url: str, statements: list, batch: int) -> None:
    """EXPLAIN ANALYZE of each (statement, parameters, explainable), in one transaction
    rolled back; a statement EXPLAIN cannot take (LOCK, SET) runs plainly, timed."""
    with psycopg.connect(url.split("?", 1)[0]) as connection:
        for statement, params, explainable in statements:
            text = statement.as_string(connection)[:70].replace("\n", " ")
            if not explainable:
                started = time.perf_counter()
                connection.execute(statement, params)
                print(f"-- batch {batch}: {text}: {(time.perf_counter() - started) * 1e3:.3f} ms")
                continue
            rows = connection.execute(SQL("EXPLAIN (ANALYZE, BUFFERS) ") + statement, params)
            print(f"-- batch {batch}: {text}")
            print("\n".join(row[0] for row in rows))
        connection.rollback()


def explain(urls: dict[str, str], batch: int) -> None:
    """Both logs' append statements on a batch of `batch` new streams, explained."""
    events = [_deposit(n) for n in range(batch)]
    single = open_event_log(store_environment(urls["single"]))
    try:
        recorder = single.recorder
        columns = _columns(single, events)[1:]
        lock = [SQL(s.decode()) for s in recorder.lock_table_statements]
        insert = SQL(recorder.insert_events_statement.decode())
        print("== single log: the library's table lock, then the insert")
        _explain(
            urls["single"],
            [*((s, (), False) for s in lock), (insert, columns[:2] + columns[3:], True)],
            batch,
        )
    finally:
        single.close()
    parted = open_event_log(store_environment(urls["partitioned"]))
    try:
        columns = _columns(parted, events)
        statements = parted.statements
        print("== partitioned log: the head rows locked in order, then the numbered insert")
        _explain(
            urls["partitioned"],
            [
                (statements.lock_timeout, (), False),
                (statements.lock_heads, (sorted(set(columns[0])),), True),
                (statements.append, (columns[0], *columns), True),
            ],
            batch,
        )
    finally:
        parted.close()


def measure(urls: dict[str, str], seconds: float, repeats: int) -> list[dict]:
    """Every cell `repeats` times; the layouts alternate within each (batch, writers) pair,
    their order reversed each repeat, so a shared machine's drift falls on both alike."""
    logs = {layout: open_event_log(store_environment(urls[layout])) for layout in LAYOUTS}
    rows = []
    try:
        for repeat in range(repeats):
            order = LAYOUTS if repeat % 2 == 0 else LAYOUTS[::-1]
            for batch in BATCH_SIZES:
                for writers in WRITER_COUNTS:
                    for layout in order:
                        rows.append(_cell(logs[layout], layout, batch, writers, seconds))
                        print(json.dumps(rows[-1]), flush=True)
    finally:
        for log in logs.values():
            log.close()
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per (batch, writers): each layout's median over the repeats, and the ratio of the
    partitioned log's median events/s to the single log's."""
    cells = sorted({(r["batch"], r["writers"]) for r in rows})
    summaries = []
    for batch, writers in cells:
        by = {
            layout: [
                r
                for r in rows
                if (r["batch"], r["writers"], r["layout"]) == (batch, writers, layout)
            ]
            for layout in LAYOUTS
        }
        medians = {
            layout: {key: _median(r[key] for r in by[layout]) for key in MEDIAN_KEYS}
            for layout in LAYOUTS
        }
        ratio = medians["partitioned"]["events_per_s"] / medians["single"]["events_per_s"]
        summaries.append({"batch": batch, "writers": writers, **medians, "ratio": round(ratio, 2)})
    return summaries


def _median(values) -> float:
    return round(median(values), 2)


def profile(urls: dict[str, str], batch: int, seconds: float) -> None:
    """One writer on each layout under cProfile, in this thread: where an append's client
    time goes (the server's is in --explain)."""
    import cProfile
    import pstats

    for layout in LAYOUTS:
        log = open_event_log(store_environment(urls[layout]))
        profiler = cProfile.Profile()
        latencies: list[float] = []
        try:
            profiler.enable()
            _writer(log, batch, time.perf_counter() + seconds, latencies)
            profiler.disable()
        finally:
            log.close()
        print(f"== {layout}, batch {batch}: {len(latencies)} appends in {seconds} s")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(PROFILE_LINES)


def markdown(summaries: list[dict], seconds: float, repeats: int) -> str:
    lines = [
        "| batch | writers | events/s: single / partitioned | × single "
        "| wall µs/event: single / partitioned | append mean ms: single / partitioned "
        "| append p99 ms: single / partitioned |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        single, parted = s["single"], s["partitioned"]

        def pair(key: str, single=single, parted=parted) -> str:
            return f"{single[key]:,} / {parted[key]:,}"

        lines.append(
            f"| {s['batch']} | {s['writers']} | {pair('events_per_s')} | {s['ratio']:.2f} "
            f"| {pair('wall_us_per_event')} | {pair('append_mean_ms')} "
            f"| {pair('append_p99_ms')} |"
        )
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    return (
        f"# Append cost: single log and partitioned log\n\n{day}, {seconds} s per cell, "
        f"medians of {repeats} repeats (layout order reversed each repeat), in process on "
        "PostgreSQL, one 2-core machine.\n\n" + "\n".join(lines) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=5.0, help="per cell")
    parser.add_argument("--repeats", type=int, default=3, help="of every cell")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE, no timing")
    parser.add_argument("--profile", type=int, metavar="BATCH", help="cProfile, no timing")
    parser.add_argument("--save", action="store_true", help="write results/append-cost.*")
    args = parser.parse_args()
    assert 0 < args.seconds <= 60 and 0 < args.repeats <= 10, (args.seconds, args.repeats)
    base, run_id = args.pg_admin.rsplit("/", 1)[0], uuid.uuid4().hex[:8]
    names = {layout: f"bench_append_{layout}_{run_id}" for layout in LAYOUTS}
    with psycopg.connect(args.pg_admin, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
    urls = {
        "single": with_layout(f"{base}/{names['single']}", LAYOUT_SINGLE),
        "partitioned": with_layout(f"{base}/{names['partitioned']}", LAYOUT_PARTITIONED),
    }
    try:
        if args.explain:
            for batch in BATCH_SIZES:
                explain(urls, batch)
            return
        if args.profile:
            profile(urls, args.profile, args.seconds)
            return
        rows = measure(urls, args.seconds, args.repeats)
        summaries = summary(rows)
        text = markdown(summaries, args.seconds, args.repeats)
        print(text)
        print(json.dumps(summaries))
        if args.save:
            results = {"summary": summaries, "rows": rows}
            (RESULTS / "append-cost.json").write_text(json.dumps(results, indent=2) + "\n")
            (RESULTS / "append-cost.md").write_text(text)
    finally:
        with psycopg.connect(args.pg_admin, autocommit=True) as admin:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
