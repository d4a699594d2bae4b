"""Throughput and tail latency of `ledger serve` over gRPC, with same-run baselines.

    python benchmarks/throughput.py                 # full: 16/64/256 clients, 10 s per cell
    python benchmarks/throughput.py --smoke         # a few seconds, tiny load (CI)
    python benchmarks/throughput.py --store sqlite  # the embedded store instead of PostgreSQL
    python benchmarks/throughput.py --store partitioned  # PostgreSQL's partitioned event log
    python benchmarks/throughput.py --cells batch --clients 64 --processes 2   # one cell
    python benchmarks/throughput.py --cells unary,hub88 --hub88-workers 1,2   # adapter processes

Everything runs on this machine: the store, the server (a separate process started here)
and the load generator (asyncio gRPC clients). Cells: unary calls and SubmitBatch (50
commands per call) at each concurrency with group commit on; the same server with group
commit off (baseline b); raw single-row INSERT + COMMIT per operation on the same store
(PostgreSQL through psycopg, or SQLite) at the same concurrency (baseline a, capped by
PostgreSQL's max_connections; measured first and again last, ratios use the mean, so drift of
a shared machine shows); the
standard gRPC health Check against the same server at the same concurrency (baseline c: what
a call costs this machine's Python gRPC server and clients before any ledger work); and one
hot wallet taking 64 clients. Afterwards every wallet the load touched must equal the last
answer it got, and the independent audit must pass: no figure counts if the books are wrong.
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client_cells import autobatch_cell, hub88_books, hub88_cell
from cpu import CpuMeter
from load import BATCH_SIZE, Tally, Traffic, now_s, percentile_ms
from stores import STORES, BenchStore

from ledger.api.auth import token_sha256
from ledger.api.convert import METHOD_BY_ONEOF
from ledger.client import partition_of
from ledger.client.errors import retry_delay_s
from ledger.core import limits
from ledger.service.application import Ledger
from ledger.service.runtime import tune_garbage_collector
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc
from projections.audit import audit

RESULTS = Path(__file__).parent / "results"
RAW_CONNECTIONS_MAX = 90  # PostgreSQL's default max_connections is 100
CHANNELS_MAX = 8
PAYLOAD = "x" * 200
OVERLOAD_BACKOFF_S = 0.05  # when an overload refusal carries no RetryInfo delay
PROCESSES_MAX = 4
CELLS = ("raw", "unary", "batch", "autobatch", "hub88", "hot", "health", "off")
RAW_AGAIN = ", again at the end"
# Set to a directory, each server runs under cProfile and leaves its profile there on exit
# (for the latency budget in benchmarks/README.md).
PROFILE_DIR = os.environ.get("BENCH_PROFILE_SERVER_DIR")


class Server:
    """`ledger serve` as a separate process on a port the OS picks."""

    def __init__(self, database_url: str, workdir: Path, *options: str) -> None:
        self.token, self.provider_token = uuid.uuid4().hex, uuid.uuid4().hex
        auth = workdir / f"auth-{self.token[:6]}.toml"
        auth.write_text(
            f'[[clients]]\nname = "bench"\nrole = "admin"\n'
            f'token_sha256 = "{token_sha256(self.token)}"\n'
            f'[[clients]]\nname = "hub88"\nrole = "game_provider"\n'
            f'provider = "hub88"\n'
            f'token_sha256 = "{token_sha256(self.provider_token)}"\n'
        )
        profile = PROFILE_DIR and [
            "-m",
            "cProfile",
            "-o",
            f"{PROFILE_DIR}/server-{self.token[:6]}.prof",
        ]
        command = [
            sys.executable,
            *(profile or []),
            "-m",
            "ledger",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
            "--auth-config",
            str(auth),
            "--no-projections",
            *options,
        ]
        self.log = open(workdir / f"server-{self.token[:6]}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        assert line.startswith("listening on "), f"server did not start: {line!r}"
        self.target = line.removeprefix("listening on ").strip()
        self.metadata = (("authorization", f"Bearer {self.token}"),)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.log.close()


async def _seed(server: Server, players: int) -> None:
    """Funds every player (and the hot ones generously) before measuring."""
    names = [f"p{n}" for n in range(players)] + [f"hot{n}" for n in range(3)]
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = pb_grpc.LedgerServiceStub(channel)
        for start in range(0, len(names), 1000):
            commands = [
                pb.Command(
                    deposit=pb.DepositRequest(
                        idempotency_key=f"seed-{name}",
                        player_id=name,
                        currency="EUR",
                        amount="100000" if name.startswith("hot") else "1000",
                        rail="psp",
                        rail_id="stripe",
                    )
                )
                for name in names[start : start + 1000]
            ]
            await stub.SubmitBatch(
                pb.SubmitBatchRequest(commands=commands), metadata=server.metadata
            )


async def _client(stub, server: Server, traffic: Traffic, mode: str, deadline: float, tally: Tally):
    while now_s() < deadline:
        size = BATCH_SIZE if mode == "batch" else 1
        await _send_until_taken(
            stub, server, [traffic.next() for _ in range(size)], mode, deadline, tally
        )


async def _send_until_taken(
    stub, server: Server, items: list, mode: str, deadline: float, tally: Tally
) -> None:
    """One call, sent again with the same commands after each overload refusal, once the
    refusal's RetryInfo delay has passed, as a real client retries (the stubs are raw, so
    the client library's costs stay out of the figures); its latency counts from the first
    attempt. Overload is an answer, not a failure; a call still refused at the deadline was
    never taken and is not counted."""
    started = now_s()
    while True:
        try:
            responses = await _send(stub, server, items, mode)
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            tally.outcomes["RESOURCE_EXHAUSTED"] = tally.outcomes.get("RESOURCE_EXHAUSTED", 0) + 1
            if now_s() >= deadline:
                return
            await asyncio.sleep(retry_delay_s(error) or OVERLOAD_BACKOFF_S)
            continue
        tally.latencies_s.append(now_s() - started)
        for (player, _), response in zip(items, responses, strict=True):
            tally.record(player, response)
        tally.commands += len(items)
        return


async def _send(stub, server: Server, items: list, mode: str) -> list:
    """A SubmitBatch of the items, or the one item as its unary call: the responses."""
    if mode == "batch":
        reply = await stub.SubmitBatch(
            pb.SubmitBatchRequest(commands=[c for _, c in items]),
            metadata=server.metadata,
            timeout=60,
        )
        return list(reply.results)
    [(_, command)] = items
    which = command.WhichOneof("command")
    method = getattr(stub, METHOD_BY_ONEOF[which])
    return [await method(getattr(command, which), metadata=server.metadata, timeout=60)]


def _channels(servers: list[Server], clients: int) -> list[list]:
    """Per server process, the channels its clients share."""
    per_server = max(1, min(clients, CHANNELS_MAX) // len(servers))
    return [[grpc.aio.insecure_channel(s.target) for _ in range(per_server)] for s in servers]


async def _cell(servers: list[Server], mode: str, clients: int, duration_s: float, args, hot):
    """One cell. With several server processes each client is pinned to one of them and only
    sends players that process owns (`partition_of`); the hot wallet's clients all go to its
    owner."""
    if mode == "autobatch":
        tally, elapsed, cpu = await autobatch_cell(servers, clients, duration_s, args, mode)
        return _row("autobatch (client)", clients, tally, elapsed, cpu), tally
    channels = _channels(servers, clients)
    tally, deadline = Tally(), now_s() + duration_s
    hot_owner = partition_of("hot0", len(servers))
    tasks = []
    for n in range(clients):
        part = hot_owner if hot else n % len(servers)
        traffic = Traffic(
            f"{mode}{clients}{'h' if hot else ''}-{n}-{uuid.uuid4().hex[:6]}",
            args.players,
            100 if hot else args.hot_share,
            seed=n,
            hot_players=1 if hot else 3,
            partition=(part, len(servers)),
        )
        stub = pb_grpc.LedgerServiceStub(channels[part][n % len(channels[part])])
        tasks.append(_client(stub, servers[part], traffic, mode, deadline, tally))
    started = now_s()
    with CpuMeter([server.process.pid for server in servers]) as cpu:
        await asyncio.gather(*tasks)
    elapsed = now_s() - started
    for channel in (c for per_server in channels for c in per_server):
        await channel.close()
    return _row(mode + (" (hot wallet)" if hot else ""), clients, tally, elapsed, cpu), tally


GRPC_FLOOR_MODE = "gRPC no-op (health Check)"


def _hub88_mode(workers: int) -> str:
    """The cell's name says how many adapter processes (`--workers`) served it."""
    processes = "1 adapter process" if workers == 1 else f"{workers} adapter processes"
    return f"Hub88 adapter over HTTP (signed, {processes})"


async def _health_cell(servers: list[Server], clients: int, duration_s: float):
    """Baseline c: the same clients and channels calling the standard health Check."""
    channels = _channels(servers, clients)
    stubs = [health_pb2_grpc.HealthStub(c) for per_server in channels for c in per_server]
    tally, deadline = Tally(), now_s() + duration_s

    async def client(stub) -> None:
        while now_s() < deadline:
            started = now_s()
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=60)
            tally.latencies_s.append(now_s() - started)
            tally.commands += 1

    started = now_s()
    with CpuMeter([server.process.pid for server in servers]) as cpu:
        await asyncio.gather(*(client(stubs[n % len(stubs)]) for n in range(clients)))
    elapsed = now_s() - started
    for channel in (c for per_server in channels for c in per_server):
        await channel.close()
    return _row(GRPC_FLOOR_MODE, clients, tally, elapsed, cpu)


def _row(mode: str, clients: int, tally: Tally, elapsed_s: float, cpu: CpuMeter) -> dict:
    return {
        "mode": mode,
        "clients": clients,
        "commands": tally.commands,
        "commands_per_s": round(tally.commands / elapsed_s),
        "p50_ms": percentile_ms(tally.latencies_s, 50),
        "p99_ms": percentile_ms(tally.latencies_s, 99),
        "p999_ms": percentile_ms(tally.latencies_s, 99.9),
        "outcomes": tally.outcomes,
        "cpu_us_per_command": cpu.per_command_us(tally.commands),
    }


def raw_store(store: BenchStore, url: str, clients: int, duration_s: float, suffix="") -> dict:
    """Baseline a: one ~200-byte INSERT and COMMIT per operation, one connection per client."""
    store.create_raw_table(url)
    clients = min(clients, RAW_CONNECTIONS_MAX)
    tally, lock, deadline = Tally(), threading.Lock(), now_s() + duration_s

    def work() -> None:
        latencies = []
        with closing(store.connect(url)) as conn:
            while now_s() < deadline:
                started = now_s()
                conn.execute(store.insert_sql, (PAYLOAD,))
                conn.commit()
                latencies.append(now_s() - started)
        with lock:
            tally.latencies_s.extend(latencies)
            tally.commands += len(latencies)

    started = now_s()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    with CpuMeter([]) as cpu:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return _row(f"raw {store.engine} insert+commit{suffix}", clients, tally, now_s() - started, cpu)


def check_books(database_url: str, tallies: list[Tally]) -> dict:
    """Every touched wallet equals the last answer it got, and the audit passes."""
    last: dict[str, tuple] = {}
    for tally in tallies:
        for player, seen in tally.last_seen.items():
            if player not in last or seen[0] >= last[player][0]:
                last[player] = seen
    mismatches = 0
    with Ledger(database_url) as ledger:
        for player, (version, cash, bonus, held) in last.items():
            state = ledger.wallet(player, "EUR")
            currency = ledger.rules.currencies.get("EUR")
            from ledger.core.money import format_amount

            actual = (
                state.version,
                *(format_amount(x, currency) for x in (state.cash, state.bonus, state.held)),
            )
            mismatches += actual != (version, cash, bonus, held)
        report = audit(ledger.log, None)
    assert mismatches == 0, f"{mismatches} wallets differ from their last answer"
    assert report.passed, [str(f) for f in report.findings[:5]]
    return {"wallets_checked": len(last), "events_audited": report.events, "audit": "passed"}


def _run_server_cells(
    url: str, workdir: Path, args, modes, extras=frozenset(), options=()
) -> tuple[list, list]:
    """Starts the servers, seeds, runs each mode at each concurrency, then the extra cells
    ("hot", "health") asked for."""
    servers = [Server(url, workdir, *options) for _ in range(args.processes)]
    rows, tallies = [], []
    try:
        asyncio.run(_seed(servers[0], args.players))
        for mode in modes:
            for clients in args.clients:
                row, tally = asyncio.run(_cell(servers, mode, clients, args.duration, args, False))
                rows.append(row)
                tallies.append(tally)
                print(json.dumps(row), flush=True)
        if "hot" in extras:
            row, tally = asyncio.run(
                _cell(servers, "unary", args.hot_clients, args.duration, args, True)
            )
            rows.append(row)
            tallies.append(tally)
            print(json.dumps(row), flush=True)
        if "hub88" in extras:
            for workers, clients in ((w, c) for w in args.hub88_workers for c in args.clients):
                tally, elapsed, cpu = asyncio.run(
                    hub88_cell(servers, clients, args.duration, args, workdir, workers)
                )
                hub88_books(tally)
                rows.append(_row(_hub88_mode(workers), clients, tally, elapsed, cpu))
                print(json.dumps(rows[-1]), flush=True)
        if "health" in extras:
            for clients in args.clients:
                rows.append(asyncio.run(_health_cell(servers, clients, args.duration)))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        for server in servers:
            server.stop()
    return rows, tallies


def with_ratios(rows: list[dict]) -> list[dict]:
    """Adds each cell's ratio to baselines a (raw PostgreSQL), b (group commit off) and c
    (gRPC no-op calls). Baseline a is measured first and last, and its mean is the base: on a
    shared machine the speed drifts during a run, and the two raw rows show by how much."""
    raw_runs: dict[int, list[int]] = {}
    for r in rows:
        if r["mode"].startswith("raw"):
            raw_runs.setdefault(r["clients"], []).append(r["commands_per_s"])
    raw = {n: {"commands_per_s": sum(runs) / len(runs)} for n, runs in raw_runs.items()}
    off = {r["clients"]: r for r in rows if r["mode"] == "unary, group commit off"}
    floor = {r["clients"]: r for r in rows if r["mode"] == GRPC_FLOOR_MODE}
    unary = {r["clients"]: r for r in rows if r["mode"] == "unary"}
    batch = {r["clients"]: r for r in rows if r["mode"] == "batch"}
    for row in rows:
        for name, bases in (("ratio_to_unary", unary), ("ratio_to_batch", batch)):
            base = bases.get(row["clients"])
            row[name] = round(row["commands_per_s"] / base["commands_per_s"], 2) if base else None
        base_c = floor.get(row["clients"])
        row["ratio_to_grpc_noop"] = (
            round(row["commands_per_s"] / base_c["commands_per_s"], 2) if base_c else None
        )
        base_a = raw.get(min(row["clients"], RAW_CONNECTIONS_MAX)) or raw.get(row["clients"])
        base_b = off.get(row["clients"])
        row["ratio_to_raw_postgres"] = (
            round(row["commands_per_s"] / base_a["commands_per_s"], 2) if base_a else None
        )
        row["ratio_to_group_commit_off"] = (
            round(row["commands_per_s"] / base_b["commands_per_s"], 2) if base_b else None
        )
    return rows


def markdown(rows: list[dict], context: dict) -> str:
    lines = [
        "| mode | clients | commands/s | p50 ms | p99 ms | p99.9 ms | × raw store (a) "
        "| × group commit off (b) | × gRPC no-op (c) | × unary | × batch "
        "| CPU µs/command: server / load / PG |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        a, b, c, u, x = (
            f"{r[k]:.2f}" if r.get(k) else "–"
            for k in (
                "ratio_to_raw_postgres",
                "ratio_to_group_commit_off",
                "ratio_to_grpc_noop",
                "ratio_to_unary",
                "ratio_to_batch",
            )
        )
        cpu = r.get("cpu_us_per_command")
        cpu_text = " / ".join(str(cpu[k]) for k in ("server", "load", "postgres")) if cpu else "–"
        lines.append(
            f"| {r['mode']} | {r['clients']} | {r['commands_per_s']:,} | {r['p50_ms']} "
            f"| {r['p99_ms']} | {r['p999_ms']} | {a} | {b} | {c} | {u} | {x} | {cpu_text} |"
        )
    return (
        f"# Throughput\n\n{context['measured_at']}, {context['duration_s']} s per cell, "
        f"{context['players']:,} players, {context['processes']} server process(es), "
        f"{context['store']}, "
        "everything on one 2-core machine.\n\n"
        + "\n".join(lines)
        + _store_cpu_note(context["store"])
        + f"\n\nBooks checked afterwards: {context['books']}\n"
    )


def _store_cpu_note(store: str) -> str:
    if store.startswith("PostgreSQL"):
        return ""
    return (
        f"\n\n{store} runs inside the server (and, for baseline a, the load generator): its "
        "CPU is in those columns, and the PG column is 0."
    )


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for mode in sorted({r["mode"] for r in rows if "hot" not in r["mode"]}):
        cells = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["clients"])
        xs = [r["clients"] for r in cells]
        left.plot(xs, [r["commands_per_s"] for r in cells], marker="o", label=mode)
        right.plot(xs, [r["p99_ms"] for r in cells], marker="o", label=mode)
    for axis, title in ((left, "commands/s"), (right, "p99 latency (ms)")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients")
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
    left.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=STORES, default="postgresql")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--clients", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64, 256]
    )
    parser.add_argument("--hot-clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument(
        "--hot-share", type=int, default=10, help="percent of traffic on hot players"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        choices=range(1, PROCESSES_MAX + 1),
        help="server processes on the one database, each owning the players crc32 routes to it",
    )
    parser.add_argument(
        "--cells",
        type=lambda s: s.split(","),
        default=list(CELLS),
        help=f"comma-separated subset of {','.join(CELLS)}; results are saved only for all",
    )
    parser.add_argument("--autobatch-commands", type=int, default=limits.autobatch_commands_max)
    parser.add_argument("--autobatch-linger-ms", type=float, default=limits.autobatch_linger_ms)
    parser.add_argument(
        "--autobatch-frames", type=int, default=limits.autobatch_frames_in_flight_max
    )
    parser.add_argument(
        "--hub88-workers",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[1],
        help="comma-separated Hub88 adapter process counts (--workers), a cell each",
    )
    parser.add_argument("--smoke", action="store_true", help="seconds, tiny load; not saved")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ledger-bench"))
    args = parser.parse_args()
    if not set(args.cells) <= set(CELLS):
        parser.error(f"--cells: choose from {','.join(CELLS)}")
    if args.smoke:
        args.clients, args.hot_clients, args.duration, args.players = [4], 4, 1.0, 200
    args.workdir.mkdir(parents=True, exist_ok=True)
    # The load generator's own collector pauses would count as the server's latency.
    tune_garbage_collector()
    run_id = uuid.uuid4().hex[:6]
    store = BenchStore(args.store, args.pg_admin, args.workdir)
    on_url, off_url, raw_url = (
        store.fresh(f"bench_tp_{part}_{run_id}") for part in ("on", "off", "raw")
    )
    rows = [
        raw_store(store, raw_url, n, args.duration) for n in args.clients if "raw" in args.cells
    ]
    for row in rows:
        print(json.dumps(row), flush=True)
    on_modes = tuple(mode for mode in ("unary", "batch", "autobatch") if mode in args.cells)
    extras = {"hot", "health", "hub88"} & set(args.cells)
    on_rows, books = [], {}
    if on_modes or extras:  # no server to start, seed and audit for raw or off cells alone
        on_rows, on_tallies = _run_server_cells(on_url, args.workdir, args, on_modes, extras)
        books["group commit on"] = check_books(on_url, on_tallies)
    off_rows = []
    if "off" in args.cells:
        off_rows, off_tallies = _run_server_cells(
            off_url, args.workdir, args, ("unary",), options=("--no-group-commit",)
        )
        for row in off_rows:
            row["mode"] = "unary, group commit off"
        books["group commit off"] = check_books(off_url, off_tallies)
    again = [
        raw_store(store, raw_url, n, args.duration, RAW_AGAIN)
        for n in args.clients
        if "raw" in args.cells
    ]
    for row in again:
        print(json.dumps(row), flush=True)
    rows = with_ratios(rows + on_rows + off_rows + again)
    context = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "duration_s": args.duration,
        "players": args.players,
        "processes": args.processes,
        "store": store.name,
        "books": books,
    }
    print(json.dumps({"books": books}))
    if not args.smoke and set(args.cells) == set(CELLS):
        RESULTS.mkdir(exist_ok=True)
        name = (
            "throughput"
            + (f"-{args.store}" if args.store != "postgresql" else "")
            + (f"-{args.processes}-processes" if args.processes > 1 else "")
        )
        (RESULTS / f"{name}.json").write_text(
            json.dumps({"context": context, "rows": rows}, indent=2) + "\n"
        )
        (RESULTS / f"{name}.md").write_text(markdown(rows, context))
        chart(rows, RESULTS / f"{name}.png")
    if not args.smoke:
        print(markdown(rows, context))
    for url in (on_url, off_url, raw_url):
        store.drop(url)


if __name__ == "__main__":
    main()
