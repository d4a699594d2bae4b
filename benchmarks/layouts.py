"""The event-log layouts side by side: the same gRPC cells of `throughput.py` on the single
PostgreSQL log, the partitioned log and (given a cluster) Citus, in one run, each cell's
figure also as a ratio to the single log's.

    python benchmarks/layouts.py --processes 2 --cells batch,unary --clients 64
    python benchmarks/layouts.py --citus-url postgresql://postgres@127.0.0.1:5441/ledger_citus
    python benchmarks/layouts.py --smoke

Every store is fresh, seeded the same way, and audited after its cells (the books must
balance). Results go to results/layouts[-N-processes].{json,md} unless --smoke.
"""

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stores import BenchStore
from throughput import PROCESSES_MAX, _run_server_cells, check_books

from ledger.core import limits
from ledger.service.runtime import tune_garbage_collector
from ledger.store.database import with_layout

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("unary", "batch")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--citus-url", default="", help="a Citus coordinator: adds citus")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[64])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--hot-share", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2, choices=range(1, PROCESSES_MAX + 1))
    parser.add_argument("--cells", type=lambda s: s.split(","), default=list(MODES))
    parser.add_argument("--smoke", action="store_true", help="seconds, tiny load; not saved")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ledger-bench-layouts"))
    args = parser.parse_args()
    if not set(args.cells) <= set(MODES):
        parser.error(f"--cells: choose from {','.join(MODES)}")
    if args.smoke:
        args.clients, args.duration, args.players = [4], 1.0, 200
    # What throughput.py's cells read besides these.
    args.autobatch_commands = limits.autobatch_commands_max
    args.autobatch_linger_ms = limits.autobatch_linger_ms
    args.autobatch_frames = limits.autobatch_frames_in_flight_max
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def _citus_store(citus_url: str, run_id: str) -> str:
    schema = f"bench_{run_id}"
    with psycopg.connect(citus_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{citus_url}?schema={schema}&layout=citus"


def _drop_citus_store(url: str) -> None:
    base, _, query = url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{query.split("&")[0]}" CASCADE')


def _run_layout(layout: str, url: str, args) -> tuple[list[dict], dict]:
    rows, tallies = _run_server_cells(url, args.workdir, args, tuple(args.cells))
    for row in rows:
        row["layout"] = layout
    return rows, check_books(url, tallies)


def with_layout_ratios(rows: list[dict]) -> list[dict]:
    """Adds each row's ratio to the single log's row of the same mode and clients."""
    single = {(r["mode"], r["clients"]): r for r in rows if r["layout"] == "single"}
    for row in rows:
        base = single.get((row["mode"], row["clients"]))
        row["ratio_to_single"] = (
            round(row["commands_per_s"] / base["commands_per_s"], 2) if base else None
        )
    return rows


def markdown(rows: list[dict], context: dict) -> str:
    lines = [
        "| layout | mode | clients | commands/s | p50 ms | p99 ms | × single log "
        "| CPU µs/command: server / load / PG |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cpu = r.get("cpu_us_per_command")
        cpu_text = " / ".join(str(cpu[k]) for k in ("server", "load", "postgres")) if cpu else "–"
        lines.append(
            f"| {r['layout']} | {r['mode']} | {r['clients']} | {r['commands_per_s']:,} "
            f"| {r['p50_ms']} | {r['p99_ms']} | {r['ratio_to_single']:.2f} | {cpu_text} |"
        )
    return (
        f"# Event-log layouts\n\n{context['measured_at']}, {context['duration_s']} s per cell, "
        f"{context['players']:,} players, {context['processes']} server process(es), "
        "everything (servers, load, PostgreSQL and any Citus nodes) on one 2-core machine.\n\n"
        + "\n".join(lines)
        + f"\n\nBooks checked afterwards: {context['books']}\n"
    )


def main() -> None:
    args = _arguments()
    tune_garbage_collector()
    run_id = uuid.uuid4().hex[:6]
    store = BenchStore("postgresql", args.pg_admin, args.workdir)
    urls = {
        layout: with_layout(store.fresh(f"bench_layout_{layout}_{run_id}"), layout)
        for layout in ("single", "partitioned")
    }
    if args.citus_url:
        urls["citus"] = _citus_store(args.citus_url, run_id)
    rows, books = [], {}
    try:
        for layout, url in urls.items():
            layout_rows, books[layout] = _run_layout(layout, url, args)
            rows += layout_rows
    finally:
        for layout, url in urls.items():
            if layout == "citus":
                _drop_citus_store(url)
            else:
                store.drop(url.split("?")[0])
    rows = with_layout_ratios(rows)
    context = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "duration_s": args.duration,
        "players": args.players,
        "processes": args.processes,
        "books": books,
    }
    print(json.dumps({"books": books}))
    text = markdown(rows, context)
    if not args.smoke:
        RESULTS.mkdir(exist_ok=True)
        name = "layouts" + (f"-{args.processes}-processes" if args.processes > 1 else "")
        document = {"context": context, "rows": rows}
        (RESULTS / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
