"""The engine's own cost per command, without gRPC: `Ledger.execute_batch` on PostgreSQL.

A diagnostic for the throughput work, not a target check: it seeds players with deposits,
then times batches of bets and wins (half each, every win settling its bet) and prints
commands/s, wall time and the engine process's CPU time per command. `--profile` prints a
pyinstrument tree (install pyinstrument first). The database is created and dropped.

    .venv/bin/python benchmarks/engine_inprocess.py --batches 40
"""

import argparse
import time
import uuid

import psycopg

from ledger.application import Ledger
from ledger.core import commands as c
from ledger.runtime import tune_garbage_collector

BATCH_ROUNDS = 500  # bet + win pairs per batch: 1,000 commands, the engine's batch limit


def _seed(ledger: Ledger, players: int) -> None:
    for start in range(0, players, 1000):
        ledger.execute_batch([
            c.Deposit(idempotency_key=f"d-{p}", player_id=f"p{p}", currency="EUR",
                      amount=1_000_000_000, rail="psp", rail_id="stripe")
            for p in range(start, min(start + 1000, players))
        ])  # fmt: skip


def _batch(n: int, players: int) -> list[c.Command]:
    commands: list[c.Command] = []
    for i in range(BATCH_ROUNDS):
        player, key = f"p{(n * BATCH_ROUNDS + i) % players}", f"{n}-{i}"
        game = {"provider": "hub88", "player_id": player, "currency": "EUR"}
        commands.append(c.Bet(idempotency_key=f"b-{key}", amount=1_000_000, round_id=key, **game))
        commands.append(c.Win(idempotency_key=f"w-{key}", amount=1_500_000, bet_key=f"b-{key}",
                              round_closed=True, **game))  # fmt: skip
    return commands


def _measure(ledger: Ledger, batches: list[list[c.Command]], profile: bool) -> None:
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        ledger.execute_batch(batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False))
    count = sum(len(batch) for batch in batches)
    print(f"{count} commands in {wall:.2f} s: {count / wall:,.0f} commands/s, "
          f"{wall / count * 1e6:.0f} µs wall and {cpu / count * 1e6:.0f} µs engine CPU "
          "per command")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=40, help="of 1,000 commands, at most 500")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    assert 0 < args.batches <= 500 and 0 < args.players <= 1_000_000
    tune_garbage_collector()  # as `ledger serve` does: this measures the server's engine
    name = f"bench_engine_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg_admin, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with Ledger(args.pg_admin.rsplit("/", 1)[0] + f"/{name}") as ledger:
            _seed(ledger, args.players)
            batches = [_batch(n, args.players) for n in range(args.batches)]
            _measure(ledger, batches, args.profile)
    finally:
        with psycopg.connect(args.pg_admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
