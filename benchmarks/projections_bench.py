"""Projection catch-up and audit replay speed over a long history, in events per second.

    python benchmarks/projections_bench.py --events 1000000          # the real figures
    python benchmarks/projections_bench.py --events 20000 --smoke     # a few seconds (CI)

The history is written through the real engine (`Ledger.execute_batch`, batches of 1,000
commands over 10,000 players: deposits, bets, wins), into a fresh PostgreSQL database (or
the SQLite file given), and a signed checkpoint of all of it is appended, as a server with
`--checkpoint-key` would. Catch-up starts from empty views; the audit replays everything,
verifies the checkpoint (growing the Merkle tree over the whole log) and compares it with
the views. Results go to benchmarks/results/ as JSON and Markdown.
"""

import argparse
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.core import commands as c
from ledger.event_log import log_size
from ledger.service.application import Ledger
from ledger.service.checkpoints import write_checkpoint
from ledger.service.runtime import tune_garbage_collector
from projections.audit import audit
from projections.runner import ProjectionRunner
from projections.stores import open_projection_store

PLAYERS = 10_000
BATCH = 1_000
RESULTS = Path(__file__).parent / "results"
TARGETS = {"catch_up_events_per_s": 20_000, "audit_events_per_s": 50_000}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=50)
        return self.now


def _commands(rng: random.Random, serial: int):
    """One player's next step: a deposit first, then bet-and-win rounds."""
    player = f"b{rng.randrange(PLAYERS)}"
    common = {"player_id": player, "currency": "EUR"}
    yield c.Deposit(
        idempotency_key=f"d{serial}", amount=50_000_000, rail="psp", rail_id="stripe", **common
    )
    bet_key = f"b{serial}"
    yield c.Bet(
        idempotency_key=bet_key, provider="hub88", amount=1_000_000, round_id=bet_key, **common
    )
    yield c.Win(
        idempotency_key=f"w{serial}",
        provider="hub88",
        bet_key=bet_key,
        amount=rng.choice((0, 500_000, 2_000_000)),
        round_closed=True,
        **common,
    )


def write_history(ledger: Ledger, events_wanted: int, seed: int) -> None:
    rng, serial, batch = random.Random(seed), 0, []
    while log_size(ledger.log) < events_wanted:
        while len(batch) < BATCH:
            serial += 1
            batch.extend(_commands(rng, serial))
        ledger.execute_batch(batch[:BATCH])
        batch = batch[BATCH:]


def checkpoint_history(ledger: Ledger) -> None:
    """A signed checkpoint of the whole history, so the audit grows the tree over all of it."""
    key = Ed25519PrivateKey.generate()
    signed = write_checkpoint(ledger.log, key, Clock()())
    assert signed is not None


def fresh_postgres(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(database_url: str) -> dict:
    with Ledger(database_url, clock=Clock()) as ledger:
        store = open_projection_store(database_url)
        runner = ProjectionRunner(ledger.log, store)
        started = time.perf_counter()
        projected = runner.catch_up()
        catch_up_s = time.perf_counter() - started
        started = time.perf_counter()
        report = audit(ledger.log, store)
        audit_s = time.perf_counter() - started
        store.close()
    assert report.passed, [str(f) for f in report.findings[:5]]
    assert len(report.checkpoints_verified) == 1, report.checkpoints_verified
    return {
        "events": projected,
        "catch_up_s": round(catch_up_s, 2),
        "catch_up_events_per_s": round(projected / catch_up_s),
        "audit_s": round(audit_s, 2),
        "audit_events_per_s": round(report.events / audit_s),
    }


def report(result: dict, path_stem: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{path_stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| measure | events/s | target | ratio to target |", "| --- | ---: | ---: | ---: |"]
    for key, target in TARGETS.items():
        lines.append(f"| {key} | {result[key]:,} | {target:,} | {result[key] / target:.2f}× |")
    table = "\n".join(lines)
    (RESULTS / f"{path_stem}.md").write_text(
        f"# Projection catch-up and audit replay\n\n{result['events']:,} events on "
        f"{result['store']}, {result['measured_at']}.\n\n{table}\n"
    )
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh PostgreSQL db")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--smoke", action="store_true", help="tiny run; results not saved")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    tune_garbage_collector()  # as `ledger project` and `ledger audit` do
    name = f"ledger_bench_{uuid.uuid4().hex[:6]}"
    url = args.database_url or fresh_postgres(args.pg_admin, name)
    try:
        started = time.perf_counter()
        with Ledger(url, clock=Clock()) as ledger:
            write_history(ledger, args.events, args.seed)
            checkpoint_history(ledger)
        print(f"wrote the history in {time.perf_counter() - started:.0f} s")
        result = measure(url)
    finally:
        if args.database_url is None:  # the database this run created, never one it was given
            drop_postgres(args.pg_admin, name)
    result["store"] = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    result["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d")
    print(json.dumps(result))
    if not args.smoke:
        report(result, "projections")


if __name__ == "__main__":
    main()
