"""The partitioned event log against the single log over gRPC, cell by cell, in one run.

    python benchmarks/compare_layouts.py --cells batch,unary --clients 64 --processes 2
    python benchmarks/compare_layouts.py --smoke        # a few seconds, tiny load (CI)

Both stores are PostgreSQL on the same server: each a fresh database with its own
`ledger serve` processes (the throughput harness's servers, seeding and cells), all started
and seeded before the first cell. Each round runs every cell on one layout and straight
after on the other, and the next round in the reverse order, so the drift of a shared
machine falls on both layouts alike. The ratio is the partitioned log's mean commands/s
over the single log's; each round's own ratio is kept, to show the spread. Afterwards the
books are checked on both stores, as the harness does: no figure counts if they are wrong.
"""

import argparse
import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stores import BenchStore
from throughput import PROCESSES_MAX, RESULTS, Server, _cell, _seed, check_books

from ledger.service.runtime import tune_garbage_collector

LAYOUTS = ("postgresql", "partitioned")  # the single log first: it is the baseline
MODES = ("unary", "batch")


def _start(url: str, args) -> list[Server]:
    servers = [Server(url, args.workdir) for _ in range(args.processes)]
    asyncio.run(_seed(servers[0], args.players))
    return servers


def _rounds(servers: dict[str, list[Server]], args) -> tuple[list[dict], dict[str, list]]:
    """Every cell on both layouts, the order of the layouts reversed each round."""
    rows, tallies = [], {kind: [] for kind in LAYOUTS}
    for round_number in range(args.rounds):
        order = LAYOUTS if round_number % 2 == 0 else LAYOUTS[::-1]
        for mode in args.cells:
            for clients in args.clients:
                for kind in order:
                    row, tally = asyncio.run(
                        _cell(servers[kind], mode, clients, args.duration, args, False)
                    )
                    row.update(layout=kind, round=round_number + 1)
                    rows.append(row)
                    tallies[kind].append(tally)
                    print(json.dumps(row), flush=True)
    return rows, tallies


def comparison(rows: list[dict]) -> list[dict]:
    """Per cell: each layout's mean commands/s, p99 and PostgreSQL CPU per command over the
    rounds, the ratio of the means (partitioned / single) and each round's ratio."""
    cells = sorted({(r["mode"], r["clients"]) for r in rows})
    summary = []
    for mode, clients in cells:
        by = {
            kind: [
                r for r in rows if (r["mode"], r["clients"], r["layout"]) == (mode, clients, kind)
            ]
            for kind in LAYOUTS
        }
        single, parted = (by[kind] for kind in LAYOUTS)
        rate = {kind: mean(r["commands_per_s"] for r in by[kind]) for kind in LAYOUTS}
        summary.append(
            {
                "mode": mode,
                "clients": clients,
                "single_commands_per_s": round(rate["postgresql"]),
                "partitioned_commands_per_s": round(rate["partitioned"]),
                "ratio": round(rate["partitioned"] / rate["postgresql"], 2),
                "round_ratios": [
                    round(p["commands_per_s"] / s["commands_per_s"], 2)
                    for s, p in zip(single, parted, strict=True)
                ],
                "single_p99_ms": round(mean(r["p99_ms"] for r in single), 1),
                "partitioned_p99_ms": round(mean(r["p99_ms"] for r in parted), 1),
                "single_pg_cpu_us": round(mean(_pg_cpu(r) for r in single)),
                "partitioned_pg_cpu_us": round(mean(_pg_cpu(r) for r in parted)),
            }
        )
    return summary


def _pg_cpu(row: dict) -> float:
    return row["cpu_us_per_command"]["postgres"]


def markdown(summary: list[dict], context: dict) -> str:
    lines = [
        "| mode | clients | single log, commands/s | partitioned log, commands/s "
        "| × single (mean) | × single, each round | p99 ms: single / partitioned "
        "| PG CPU µs/command: single / partitioned |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for s in summary:
        rounds = ", ".join(f"{r:.2f}" for r in s["round_ratios"])
        lines.append(
            f"| {s['mode']} | {s['clients']} | {s['single_commands_per_s']:,} "
            f"| {s['partitioned_commands_per_s']:,} | {s['ratio']:.2f} | {rounds} "
            f"| {s['single_p99_ms']} / {s['partitioned_p99_ms']} "
            f"| {s['single_pg_cpu_us']} / {s['partitioned_pg_cpu_us']} |"
        )
    return (
        f"# The partitioned log against the single log\n\n{context['measured_at']}, "
        f"{context['duration_s']} s per cell, {context['rounds']} rounds (layout order "
        f"reversed each round), {context['players']:,} players, {context['processes']} server "
        "process(es) per layout, PostgreSQL, everything on one 2-core machine.\n\n"
        + "\n".join(lines)
        + f"\n\nBooks checked afterwards: {context['books']}\n"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--cells", type=lambda s: s.split(","), default=list(MODES), help="unary and/or batch"
    )
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[64])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument(
        "--hot-share", type=int, default=10, help="percent of traffic on hot players"
    )
    parser.add_argument("--processes", type=int, default=2, choices=range(1, PROCESSES_MAX + 1))
    parser.add_argument("--smoke", action="store_true", help="seconds, tiny load; not saved")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ledger-bench"))
    return parser


def _save(summary: list[dict], rows: list[dict], context: dict) -> None:
    name = f"throughput-layouts-{context['processes']}-processes"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"context": context, "summary": summary, "rows": rows}, indent=2) + "\n"
    )
    (RESULTS / f"{name}.md").write_text(markdown(summary, context))


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    if not set(args.cells) <= set(MODES) or args.rounds < 1:
        parser.error(f"--cells: choose from {','.join(MODES)}; --rounds: at least 1")
    if args.smoke:
        args.clients, args.duration, args.players, args.rounds = [4], 1.0, 200, 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    tune_garbage_collector()  # the load generator's pauses would count as the server's latency
    run_id = uuid.uuid4().hex[:6]
    stores = {kind: BenchStore(kind, args.pg_admin, args.workdir) for kind in LAYOUTS}
    urls = {kind: stores[kind].fresh(f"bench_layout_{kind}_{run_id}") for kind in LAYOUTS}
    try:
        summary, books, rows = _measure(urls, stores, args)
    finally:
        for kind in LAYOUTS:
            stores[kind].drop(urls[kind])
    context = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "duration_s": args.duration,
        "rounds": args.rounds,
        "players": args.players,
        "processes": args.processes,
        "books": books,
    }
    if not args.smoke:
        _save(summary, rows, context)
        print(markdown(summary, context))
    print(json.dumps({"summary": summary, "books": books}))


def _measure(urls: dict[str, str], stores: dict[str, BenchStore], args):
    """Starts and seeds both layouts' servers, runs the rounds, stops the servers and checks
    both stores' books: the summary, the books and every cell's row."""
    servers: dict[str, list[Server]] = {}
    try:
        for kind in LAYOUTS:
            servers[kind] = _start(urls[kind], args)
        rows, tallies = _rounds(servers, args)
    finally:
        for server in (s for per_layout in servers.values() for s in per_layout):
            server.stop()
    books = {stores[kind].name: check_books(urls[kind], tallies[kind]) for kind in LAYOUTS}
    return comparison(rows), books, rows


if __name__ == "__main__":
    main()
