"""The event-log layouts side by side over gRPC: the single PostgreSQL log, the partitioned
log and (given a coordinator) Citus, cell by cell in alternating rounds, each figure also as
a ratio to the single log's.

    python benchmarks/layouts.py --cells batch,unary --clients 64 --processes 2 --rounds 4
    python benchmarks/layouts.py --citus-url postgresql://postgres@127.0.0.1:5441/ledger_citus
    python benchmarks/layouts.py --layouts single,citus --citus-url ...   # leave one out
    python benchmarks/layouts.py --smoke        # a few seconds, tiny load (CI)

Every layout's store is fresh, with its own `ledger serve` processes (the throughput
harness's servers, seeding and cells), all started and seeded before the first cell. Each
round runs every cell on each layout straight after the other, and the next round in the
reverse order, so the drift of a shared machine falls on every layout alike. A layout's
ratio is its mean commands/s over the single log's (the single log is the baseline, so it
is always measured); each round's own ratio is kept, to show the spread. Afterwards every
store's books are checked (every touched wallet equals its last answer, and the audit
passes): no figure counts if they are wrong. Results go to
results/layouts[-N-processes].{json,md} unless --smoke.
"""

import argparse
import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stores import BenchStore
from throughput import PROCESSES_MAX, RESULTS, Server, _cell, _seed, check_books

from ledger.core import limits
from ledger.service.runtime import tune_garbage_collector
from ledger.store.database import with_layout

LAYOUTS = ("single", "partitioned", "citus")  # the single log first: it is the baseline
BASELINE = LAYOUTS[0]
MODES = ("unary", "batch")
CPU_PARTS = ("server", "load", "postgres")


def _comma_list(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--citus-url", default="", help="a Citus coordinator: adds citus")
    parser.add_argument(
        "--layouts",
        type=_comma_list,
        default=None,
        help="of single,partitioned,citus; default single,partitioned (and citus with a URL)",
    )
    parser.add_argument("--cells", type=_comma_list, default=list(MODES), help="unary, batch")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[64])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--rounds", type=int, default=2, help="layout order reversed each round")
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--hot-share", type=int, default=10, help="percent on hot players")
    parser.add_argument("--processes", type=int, default=2, choices=range(1, PROCESSES_MAX + 1))
    parser.add_argument("--smoke", action="store_true", help="seconds, tiny load; not saved")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ledger-bench-layouts"))
    return parser


def _arguments() -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args()
    if args.layouts is None:
        args.layouts = [BASELINE, "partitioned"] + (["citus"] if args.citus_url else [])
    elif args.citus_url and "citus" not in args.layouts:
        args.layouts.append("citus")
    if not set(args.layouts) <= set(LAYOUTS) or BASELINE not in args.layouts:
        parser.error(f"--layouts: {BASELINE} and any of {','.join(LAYOUTS[1:])}")
    if "citus" in args.layouts and not args.citus_url:
        parser.error("--layouts citus needs --citus-url")
    if not set(args.cells) <= set(MODES) or args.rounds < 1:
        parser.error(f"--cells: choose from {','.join(MODES)}; --rounds: at least 1")
    # The baseline first, the others in the module's order, whatever order was asked for.
    args.layouts = [layout for layout in LAYOUTS if layout in args.layouts]
    if args.smoke:
        args.clients, args.duration, args.players = [4], 1.0, 200
    # What throughput.py's cells read besides these.
    args.autobatch_commands = limits.autobatch_commands_max
    args.autobatch_linger_ms = limits.autobatch_linger_ms
    args.autobatch_frames = limits.autobatch_frames_in_flight_max
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


class LayoutStores:
    """A fresh store per layout: a database on the PostgreSQL server, a schema on Citus."""

    def __init__(self, args, run_id: str) -> None:
        self.postgres = BenchStore("postgresql", args.pg_admin, args.workdir)
        self.citus_url = args.citus_url
        self.urls: dict[str, str] = {}
        try:
            for layout in args.layouts:
                self.urls[layout] = self._fresh(layout, run_id)
        except BaseException:
            self.drop()  # the stores made before the failure
            raise

    def _fresh(self, layout: str, run_id: str) -> str:
        if layout == "citus":
            return _citus_store(self.citus_url, run_id)
        return with_layout(self.postgres.fresh(f"bench_layout_{layout}_{run_id}"), layout)

    def drop(self) -> None:
        for layout, url in self.urls.items():
            if layout == "citus":
                _drop_citus_store(url)
            else:
                self.postgres.drop(url)


def _citus_store(citus_url: str, run_id: str) -> str:
    schema = f"bench_{run_id}"
    with psycopg.connect(citus_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{citus_url}?schema={schema}&layout=citus"


def _drop_citus_store(url: str) -> None:
    base, _, query = url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{query.split("&")[0]}" CASCADE')


def _start(url: str, args) -> list[Server]:
    servers = [Server(url, args.workdir) for _ in range(args.processes)]
    asyncio.run(_seed(servers[0], args.players))
    return servers


def _rounds(servers: dict[str, list[Server]], args) -> tuple[list[dict], dict[str, list]]:
    """Every cell on every layout, one straight after the other, the order of the layouts
    reversed each round."""
    rows, tallies = [], {layout: [] for layout in servers}
    for number in range(1, args.rounds + 1):
        order = list(servers) if number % 2 else list(servers)[::-1]
        for mode in args.cells:
            for clients in args.clients:
                for layout in order:
                    row, tally = asyncio.run(
                        _cell(servers[layout], mode, clients, args.duration, args, False)
                    )
                    row.update(layout=layout, round=number)
                    rows.append(row)
                    tallies[layout].append(tally)
                    print(json.dumps(row), flush=True)
    return rows, tallies


def _measure(urls: dict[str, str], args) -> tuple[list[dict], dict[str, dict]]:
    """Starts and seeds every layout's servers, runs the rounds, stops the servers and checks
    every store's books: each cell's row and the books, by layout."""
    servers: dict[str, list[Server]] = {}
    try:
        for layout, url in urls.items():
            servers[layout] = _start(url, args)
        rows, tallies = _rounds(servers, args)
    finally:
        for server in (s for per_layout in servers.values() for s in per_layout):
            server.stop()
    return rows, {layout: check_books(url, tallies[layout]) for layout, url in urls.items()}


def with_ratios(rows: list[dict]) -> list[dict]:
    """Adds each row's ratio to the single log's row of the same round, mode and clients."""
    base = {(r["round"], r["mode"], r["clients"]): r for r in rows if r["layout"] == BASELINE}
    for row in rows:
        single = base[(row["round"], row["mode"], row["clients"])]
        row["ratio_to_single"] = round(row["commands_per_s"] / single["commands_per_s"], 2)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per cell and layout, the means over the rounds: commands/s, latency, CPU per command
    by process; the ratio of the mean commands/s to the single log's, and each round's."""
    cells = list(dict.fromkeys((r["mode"], r["clients"]) for r in rows))  # as asked
    layouts = [layout for layout in LAYOUTS if any(r["layout"] == layout for r in rows)]
    summarised = []
    for mode, clients in cells:
        by = {
            layout: [
                r for r in rows if (r["mode"], r["clients"], r["layout"]) == (mode, clients, layout)
            ]
            for layout in layouts
        }
        baseline = mean(r["commands_per_s"] for r in by[BASELINE])
        summarised += [
            _summary_row(mode, clients, layout, by[layout], baseline) for layout in layouts
        ]
    return summarised


def _summary_row(mode: str, clients: int, layout: str, rows: list[dict], baseline: float):
    rate = mean(r["commands_per_s"] for r in rows)
    return {
        "layout": layout,
        "mode": mode,
        "clients": clients,
        "rounds": len(rows),
        "commands_per_s": round(rate),
        "ratio_to_single": round(rate / baseline, 2),
        "round_ratios": [r["ratio_to_single"] for r in sorted(rows, key=lambda r: r["round"])],
        "p50_ms": round(mean(r["p50_ms"] for r in rows), 1),
        "p99_ms": round(mean(r["p99_ms"] for r in rows), 1),
        "cpu_us_per_command": {
            part: round(mean(r["cpu_us_per_command"][part] for r in rows)) for part in CPU_PARTS
        },
    }


def markdown(summarised: list[dict], context: dict) -> str:
    lines = [
        "| layout | mode | clients | commands/s | p50 ms | p99 ms | × single (mean) "
        "| × single, each round | CPU µs/command: server / load / PG |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for s in summarised:
        rounds = ", ".join(f"{r:.2f}" for r in s["round_ratios"])
        cpu = " / ".join(str(s["cpu_us_per_command"][part]) for part in CPU_PARTS)
        lines.append(
            f"| {s['layout']} | {s['mode']} | {s['clients']} | {s['commands_per_s']:,} "
            f"| {s['p50_ms']} | {s['p99_ms']} | {s['ratio_to_single']:.2f} | {rounds} | {cpu} |"
        )
    return (
        f"# Event-log layouts\n\n{context['measured_at']}, {context['duration_s']} s per cell, "
        f"{context['rounds']} round(s) (layout order reversed each round), "
        f"{context['players']:,} players, {context['processes']} server process(es) per "
        "layout, everything (servers, load, PostgreSQL and any Citus nodes) on one 2-core "
        "machine. Figures are means over the rounds.\n\n"
        + "\n".join(lines)
        + f"\n\nBooks checked afterwards: {context['books']}\n"
    )


def _save(summarised: list[dict], rows: list[dict], context: dict, text: str) -> None:
    name = "layouts" + (f"-{context['processes']}-processes" if context["processes"] > 1 else "")
    RESULTS.mkdir(exist_ok=True)
    document = {"context": context, "summary": summarised, "rows": rows}
    (RESULTS / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(text)


def main() -> None:
    args = _arguments()
    tune_garbage_collector()  # the load generator's pauses would count as the server's latency
    stores = LayoutStores(args, uuid.uuid4().hex[:6])
    try:
        rows, books = _measure(stores.urls, args)
    finally:
        stores.drop()
    summarised = summary(with_ratios(rows))
    context = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "duration_s": args.duration,
        "rounds": args.rounds,
        "players": args.players,
        "processes": args.processes,
        "layouts": args.layouts,
        "books": books,
    }
    text = markdown(summarised, context)
    if not args.smoke:
        _save(summarised, rows, context, text)
    print(text)
    print(json.dumps({"summary": summarised, "books": books}))


if __name__ == "__main__":
    main()
