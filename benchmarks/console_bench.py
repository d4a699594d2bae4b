"""How long each console page takes over a long history (a benchmark, not a timed test).

    python benchmarks/console_bench.py --events 1000000     # the real figures (PostgreSQL)
    python benchmarks/console_bench.py --events 20000 --smoke

The history is written through the real engine in batches (the projection benchmark's mix:
deposits, bets and wins over 10,000 players), plus limits, bonuses, withdrawal requests and
suspense holds so every page has rows. It goes into a fresh PostgreSQL database that is
dropped afterwards (or the SQLite file given). The views are caught up once; then each page
is requested `--repeat` times in process (routing, queries, template rendering; no
network) and its median and slowest times are reported against the 200 ms target.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.projections_bench import Clock, fresh_postgres, write_history
from ledger.core import commands as c
from ledger.event_log import log_size
from ledger.service.application import Ledger
from ledger.service.runtime import tune_garbage_collector
from projections.runner import ProjectionRunner
from projections.stores import open_projection_store
from tests.console.conftest import Console, sign_in, write_auth_config

RESULTS = Path(__file__).parent / "results"
TARGET_MS = 200
EXTRAS = 200  # of each extra kind: limits, bonuses, withdrawals, suspense holds


def write_extras(ledger: Ledger) -> None:
    """What the projection benchmark's mix lacks: rows for every console page."""
    batch = []
    for n in range(EXTRAS):
        common = {"player_id": f"b{n}", "currency": "EUR"}
        batch += [
            c.SetLimits(idempotency_key=f"l{n}", deposit_limit_24h=900_000_000, **common),
            c.GrantBonus(
                idempotency_key=f"g{n}", amount=5_000_000, wagering_multiplier=10, **common
            ),
            c.RequestWithdrawal(
                idempotency_key=f"r{n}", amount=1_000_000, rail="psp", rail_id="stripe", **common
            ),
            c.HoldInSuspense(
                idempotency_key=f"s{n}",
                currency="EUR",
                amount=3_000_000,
                rail="psp",
                rail_id="stripe",
                reason="no_reference",
            ),
        ]
    for start in range(0, len(batch), 500):
        ledger.execute_batch(batch[start : start + 500])


def time_pages(console: Console, token: str, repeat: int) -> dict[str, dict]:
    client = console.client()
    assert sign_in(client, token).status_code == 303
    pages = {
        "players": "/players",
        "players search": "/players?q=b12",
        "player": "/players/b7",
        "statement": "/players/b7/statement?currency=EUR",
        "statement CSV": "/players/b7/statement.csv?currency=EUR",
        "accounts": "/accounts",
        "suspense": "/suspense",
        "withdrawals": "/withdrawals",
        "status": "/status",
    }
    timings = {}
    for name, path in pages.items():
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        timings[name] = {
            "median_ms": round(statistics.median(samples), 1),
            "max_ms": round(max(samples), 1),
        }
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh PostgreSQL db")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="tiny run; results not saved")
    args = parser.parse_args()
    tune_garbage_collector()
    name = f"ledger_console_bench_{uuid.uuid4().hex[:6]}"
    url = args.database_url or fresh_postgres(args.pg_admin, name)
    try:
        result = run(url, args)
    finally:
        if args.database_url is None:
            with psycopg.connect(args.pg_admin, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(result, indent=2))
    if not args.smoke:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "console.json").write_text(json.dumps(result, indent=2) + "\n")


def run(url: str, args) -> dict:
    started = time.perf_counter()
    with Ledger(url, clock=Clock()) as ledger:
        write_history(ledger, args.events - 4 * EXTRAS, seed=1)
        write_extras(ledger)
        events = log_size(ledger.log)
    written_s = time.perf_counter() - started
    auth_path, tokens = write_auth_config(Path(tempfile.mkdtemp()))
    started = time.perf_counter()
    with Ledger(url, currency_scales="ignore", store_kind="either") as ledger:
        store = open_projection_store(url)
        ProjectionRunner(ledger.log, store).catch_up()
        store.close()
    projected_s = time.perf_counter() - started
    console = Console(url, auth_path)
    try:
        pages = time_pages(console, tokens["backoffice"], args.repeat)
    finally:
        console.close()
    slowest = max(page["max_ms"] for page in pages.values())
    return {
        "events": events,
        "store": url.split("://")[0],
        "write_s": round(written_s, 1),
        "catch_up_s": round(projected_s, 1),
        "repeat": args.repeat,
        "pages": pages,
        "slowest_ms": slowest,
        "target_ms": TARGET_MS,
        "all_under_target": slowest < TARGET_MS,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "note": "shared, loaded 2-core machine",
    }


if __name__ == "__main__":
    main()
