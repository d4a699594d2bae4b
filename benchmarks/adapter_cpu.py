"""CPU per signed request of the Hub88 adapter process, and of the engine behind it.

    python benchmarks/adapter_cpu.py                 # 16 HTTP clients, 150 requests each
    python benchmarks/adapter_cpu.py --label before  # a name for the printed line

Throughput on the shared 2-core machine moves with whatever else runs on it; the CPU time
a process spends per request moves much less, so this is the figure that shows a change to
the adapter's own code. One engine (`ledger serve` on a fresh SQLite store) and one adapter
process; each HTTP client plays the Hub88 cell's rounds (a bet, then a win or a rollback);
the first 10 requests per client warm up and are not counted. CPU is read from /proc.
"""

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client_cells import Hub88Adapter, fund, hub88_rounds, open_sessions
from cpu import process_cpu_s
from load import Traffic
from throughput import Server

WARM_UP = 10
HOT_SHARE_PERCENT = 10


async def _caller(http, url: str, requests: list, statuses: list[str]) -> None:
    for _player, (path, body, headers) in requests:
        async with http.post(url + path, data=body, headers=headers) as response:
            statuses.append((await response.json())["status"])


async def _measure(args) -> dict:
    args.workdir.mkdir(parents=True, exist_ok=True)
    server = Server(f"sqlite:///{args.workdir}/cpu-{uuid.uuid4().hex[:6]}.sqlite3", args.workdir)
    adapter = Hub88Adapter(server, args.workdir)
    try:
        players = [f"hp{n}" for n in range(args.players)] + ["hhot0", "hhot1", "hhot2"]
        await fund(server, players)
        async with aiohttp.ClientSession() as http:
            tokens = await open_sessions(http, adapter, players)
        traffics = [
            Traffic(f"cpu-{n}-{uuid.uuid4().hex[:6]}", args.players, HOT_SHARE_PERCENT, seed=n)
            for n in range(args.clients)
        ]
        count = WARM_UP + args.requests
        plans = [hub88_rounds(adapter, t, tokens.__getitem__, count) for t in traffics]
        connector = aiohttp.TCPConnector(limit=args.clients)
        async with aiohttp.ClientSession(connector=connector) as http:
            warm: list[str] = []
            await asyncio.gather(*(_caller(http, adapter.url, p[:WARM_UP], warm) for p in plans))
            adapter_s, engine_s = _cpu(adapter, server)
            statuses: list[str] = []
            await asyncio.gather(
                *(_caller(http, adapter.url, p[WARM_UP:], statuses) for p in plans)
            )
            adapter_end_s, engine_end_s = _cpu(adapter, server)
    finally:
        adapter.stop()
        server.stop()
    requests = len(statuses)
    return {
        "label": args.label,
        "requests": requests,
        "adapter_cpu_us_per_request": round(1e6 * (adapter_end_s - adapter_s) / requests),
        "engine_cpu_us_per_request": round(1e6 * (engine_end_s - engine_s) / requests),
        "statuses": sorted(set(statuses)),
    }


def _cpu(adapter: Hub88Adapter, server: Server) -> tuple[float, float]:
    return process_cpu_s(adapter.process.pid), process_cpu_s(server.process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=140, help="counted, per client")
    parser.add_argument("--players", type=int, default=300)
    parser.add_argument("--label", default="adapter")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ledger-bench-adapter-cpu"))
    print(json.dumps(asyncio.run(_measure(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
