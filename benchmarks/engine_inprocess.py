"""The engine's own cost per command, without gRPC: `Ledger.execute_batch` on PostgreSQL.

A diagnostic for the throughput work, not a target check: it seeds players with deposits,
then times batches and prints commands/s, wall time and the engine process's CPU time per
command. `--mix pairs` (the default) is bets and wins, every win settling its bet;
`--mix harness` is the throughput harness's casino traffic from 64 clients, 50 commands each,
and `--funds` sets what each player is seeded with (a small amount makes most bets refusals).
`--group-size N` writes the same commands N at a time (a group commit of N): the CPU per
command at several sizes shows what a group costs whatever it holds. `--store memory` runs
on the eventsourcing library's in-memory recorder instead: no database, so the CPU figure is
the engine's Python alone (decide, evolve, ids, encoding, mapping) and moves far less with
what else the machine is doing. `--profile` prints a pyinstrument tree
(install pyinstrument first). The PostgreSQL database is created and dropped.

    .venv/bin/python benchmarks/engine_inprocess.py --batches 40
    .venv/bin/python benchmarks/engine_inprocess.py --mix harness --funds 0.1 --batches 80
    .venv/bin/python benchmarks/engine_inprocess.py --mix harness --store memory --batches 80
    .venv/bin/python benchmarks/engine_inprocess.py --mix harness --batches 8 --group-size 26
"""

import argparse
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import BATCH_SIZE, HOT_PLAYERS, Traffic

from ledger.api import convert
from ledger.core import commands as c
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from ledger.service.runtime import tune_garbage_collector

BATCH_ROUNDS = 500  # bet + win pairs per batch: 1,000 commands, the engine's batch limit
HARNESS_CLIENTS = 64
HOT_SHARE_PERCENT = 10  # the harness's default --hot-share
HOT_FUNDS_FACTOR = 100  # the harness seeds hot players with 100,000 EUR and the others 1,000
# The library's in-memory recorder, over any URL's environment (as tests/store/conftest.py).
MEMORY_ENVIRONMENT = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def _seed(ledger: Ledger, players: int, funds: Decimal) -> None:
    """Every player funded with `funds` euros and, as the harness does, the hot players
    with a hundred times that."""
    amount = int(funds * 10 ** ledger.rules.currencies.get("EUR").scale)
    names = [f"p{n}" for n in range(players)] + [f"hot{n}" for n in range(HOT_PLAYERS)]
    for start in range(0, len(names), 1000):
        ledger.execute_batch(
            [
                c.Deposit(
                    idempotency_key=f"d-{name}",
                    player_id=name,
                    currency="EUR",
                    amount=amount * (HOT_FUNDS_FACTOR if name.startswith("hot") else 1),
                    rail="psp",
                    rail_id="stripe",
                )
                for name in names[start : start + 1000]
            ]
        )


def _harness_batches(ledger: Ledger, count: int, players: int) -> list[list[c.Command]]:
    """Groups as the server forms them: 20 calls of 50 commands from 64 clients in turn."""
    traffics = [Traffic(f"c{n}", players, HOT_SHARE_PERCENT, n) for n in range(HARNESS_CLIENTS)]
    calls_per_batch = 2 * BATCH_ROUNDS // BATCH_SIZE
    batches = []
    for n in range(count):
        batch = []
        for call in range(calls_per_batch):
            traffic = traffics[(n * calls_per_batch + call) % HARNESS_CLIENTS]
            for _ in range(BATCH_SIZE):
                method, request = convert.batch_item(traffic.next()[1], 0)
                batch.append(convert.command_from_request(method, request, ledger.rules.currencies))
        batches.append(batch)
    return batches


def _pair_batch(n: int, players: int) -> list[c.Command]:
    commands: list[c.Command] = []
    for i in range(BATCH_ROUNDS):
        player, key = f"p{(n * BATCH_ROUNDS + i) % players}", f"{n}-{i}"
        game = {"provider": "hub88", "player_id": player, "currency": "EUR"}
        commands.append(c.Bet(idempotency_key=f"b-{key}", amount=1_000_000, round_id=key, **game))
        commands.append(
            c.Win(
                idempotency_key=f"w-{key}",
                amount=1_500_000,
                bet_key=f"b-{key}",
                round_closed=True,
                **game,
            )
        )
    return commands


def _regrouped(batches: list[list[c.Command]], size: int) -> list[list[c.Command]]:
    """The same commands, in the same order, in groups of size (the last may be smaller)."""
    commands = [command for batch in batches for command in batch]
    return [commands[start : start + size] for start in range(0, len(commands), size)]


def _measure(ledger: Ledger, batches: list[list[c.Command]], profile: bool) -> None:
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    wall, cpu, refused = time.perf_counter(), time.process_time(), 0
    for batch in batches:
        refused += sum(r.outcome is not Outcome.OK for r in ledger.execute_batch(batch))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False))
    count = sum(len(batch) for batch in batches)
    print(
        f"{count} commands in {wall:.2f} s: {count / wall:,.0f} commands/s, "
        f"{wall / count * 1e6:.0f} µs wall and {cpu / count * 1e6:.0f} µs engine CPU "
        f"per command; {refused / count:.0%} refused; {len(batches):,} groups of up to "
        f"{max(len(batch) for batch in batches):,}"
    )


def _run(ledger: Ledger, args) -> None:
    _seed(ledger, args.players, args.funds)
    if args.mix == "harness":
        batches = _harness_batches(ledger, args.batches, args.players)
    else:
        batches = [_pair_batch(n, args.players) for n in range(args.batches)]
    _measure(ledger, _regrouped(batches, args.group_size), args.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=40, help="of 1,000 commands, at most 500")
    parser.add_argument("--mix", choices=("pairs", "harness"), default="pairs")
    parser.add_argument("--funds", type=Decimal, default=Decimal(1000), help="EUR per player")
    parser.add_argument("--store", choices=("postgresql", "memory"), default="postgresql")
    parser.add_argument("--group-size", type=int, default=BATCH_ROUNDS * 2, help="commands")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    assert 0 < args.batches <= 500 and 0 < args.players <= 1_000_000
    assert 0 < args.group_size <= BATCH_ROUNDS * 2, "a group holds 1 to 1,000 commands"
    tune_garbage_collector()  # as `ledger serve` does: this measures the server's engine
    if args.store == "memory":
        with Ledger("sqlite:///unused", environment=MEMORY_ENVIRONMENT) as ledger:
            _run(ledger, args)
        return
    name = f"bench_engine_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg_admin, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with Ledger(args.pg_admin.rsplit("/", 1)[0] + f"/{name}") as ledger:
            _run(ledger, args)
    finally:
        with psycopg.connect(args.pg_admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
