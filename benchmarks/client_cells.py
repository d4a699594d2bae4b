"""The throughput cells that go through the platform's own clients rather than raw stubs:

- autobatch: the callers share one auto-batching `AsyncLedgerClient` per server process and
  each makes one-command calls (`client.bet(...)`), which the client coalesces into SubmitBatch
  frames; latency is each call's, as its caller sees it.
- hub88: the provider's path. A Hub88 adapter process in front of the first server, driven
  over HTTP with signed wallet calls (each round a bet, then a win or, sometimes, a rollback).
  Requests are signed before the clock starts, so the load generator's RSA cost stays out of
  the figures; the adapter's verification and everything after it is in them.
"""

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
from cpu import CpuMeter, children
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from load import Tally, Traffic, now_s

from ledger.client import AsyncLedgerClient, Batch, BatchOptions, Overloaded

OPERATOR_TOKEN = "bench-operator-token"
GAME_CODE = "bench_slot"
# Pre-signed requests per client per second of the cell: the cell's rate over all clients,
# or a client's, whichever needs more; a client that uses its requests up says so.
HUB88_REQUESTS_PER_S_MAX = 3000
HUB88_CLIENT_REQUESTS_PER_S_MAX = 60
HUB88_ROLLBACK_PERCENT = 10
HUB88_PLAYER_PREFIX = "h"  # its own wallets: the other cells' books check stays exact
HUB88_PLAYERS_MAX = 2000  # players given a game session (opened before the clock starts)
HTTP_TIMEOUT_S = 60
FUNDING_BATCH = 1000
PROFILE_DIR = os.environ.get("BENCH_PROFILE_SERVER_DIR")


def _call_fields(command) -> tuple[str, dict]:
    """(client method, keyword fields) of a batch item: the one-command call it stands for."""
    which = command.WhichOneof("command")
    inner = getattr(command, which)
    return which, {field.name: value for field, value in inner.ListFields()}


async def _autobatch_caller(client, traffic: Traffic, deadline: float, tally: Tally) -> None:
    while now_s() < deadline:
        player, command = traffic.next()
        method, fields = _call_fields(command)
        started = now_s()
        while True:
            try:
                reply = await getattr(client, method)(**fields)
            except Overloaded:  # shed past the client's own resends: resend, same key
                tally.outcomes["RESOURCE_EXHAUSTED"] = (
                    tally.outcomes.get("RESOURCE_EXHAUSTED", 0) + 1
                )
                if now_s() >= deadline:
                    return
                continue
            break
        tally.latencies_s.append(now_s() - started)
        tally.record_reply(player, reply)
        tally.commands += 1


async def autobatch_cell(servers, clients: int, duration_s: float, args, cell_name: str):
    """64 (or `clients`) callers through one auto-batching client per server process."""
    options = BatchOptions(
        commands_max=args.autobatch_commands,
        linger_s=args.autobatch_linger_ms / 1000,
        frames_in_flight_max=args.autobatch_frames,
    )
    ledgers = [AsyncLedgerClient(s.target, s.token, auto_batch=options) for s in servers]
    tally, deadline = Tally(), now_s() + duration_s
    tasks = []
    for n in range(clients):
        part = n % len(servers)
        traffic = Traffic(
            f"{cell_name}-{n}-{uuid.uuid4().hex[:6]}",
            args.players,
            args.hot_share,
            seed=n,
            partition=(part, len(servers)),
        )
        tasks.append(_autobatch_caller(ledgers[part], traffic, deadline, tally))
    started = now_s()
    with CpuMeter([server.process.pid for server in servers]) as cpu:
        await asyncio.gather(*tasks)
    elapsed = now_s() - started
    for ledger in ledgers:
        await ledger.close()
    return tally, elapsed, cpu


class Hub88Adapter:
    """`python -m adapters.hub88` in front of one server, with a fresh provider key."""

    def __init__(self, server, workdir: Path, workers: int = 1) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tag = uuid.uuid4().hex[:6]
        names = ("token", "public.pem", "games.toml", "operator", "sessions.sqlite3", "log")
        files = {name: workdir / f"hub88-{tag}-{name}" for name in names}
        files["token"].write_text(server.provider_token)
        public = self.key.public_key()
        files["public.pem"].write_bytes(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        files["games.toml"].write_text(f'[games]\n"{GAME_CODE}" = "slots"\n')
        files["operator"].write_text(OPERATOR_TOKEN)
        # BENCH_PROFILE_SERVER_DIR, as for the servers: the adapter runs under cProfile too.
        profile = PROFILE_DIR and ["-m", "cProfile", "-o", f"{PROFILE_DIR}/hub88-{tag}.prof"]
        command = [
            sys.executable,
            *(profile or []),
            "-m",
            "adapters.hub88",
            "--listen",
            "127.0.0.1:0",
            "--engine",
            server.target,
            "--token-file",
            str(files["token"]),
            "--public-key",
            str(files["public.pem"]),
            "--games",
            str(files["games.toml"]),
            "--operator-token-file",
            str(files["operator"]),
            "--sessions-file",
            str(files["sessions.sqlite3"]),
            "--workers",
            str(workers),
        ]
        self.sessions_file = files["sessions.sqlite3"]
        self.log = open(files["log"], "w")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        assert line.startswith("listening on "), f"adapter did not start: {line!r}"
        self.url = "http://" + line.removeprefix("listening on ").strip()
        # With several workers the parent only supervises; the workers' CPU is what counts.
        self.pids = [self.process.pid, *(children(self.process.pid) if workers > 1 else ())]

    def signed(self, path: str, message: dict) -> tuple[str, bytes, dict]:
        body = json.dumps(message).encode()
        signature = self.key.sign(body, padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "Content-Type": "application/json",
            "X-Hub88-Signature": base64.b64encode(signature).decode(),
        }
        return path, body, headers

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()
        for leftover in self.sessions_file.parent.glob(self.sessions_file.name + "*"):
            leftover.unlink()


def hub88_rounds(adapter: Hub88Adapter, traffic: Traffic, token_of, count: int) -> list:
    """count signed requests: rounds of a bet then a win (or a rollback of the bet)."""
    requests = []
    while len(requests) < count:
        player = HUB88_PLAYER_PREFIX + traffic.player()
        traffic.serial += 1
        bet_id = f"{traffic.name}-{traffic.serial}"
        common = {
            "user": player,
            "token": token_of(player),
            "currency": "EUR",
            "game_code": GAME_CODE,
            "round": bet_id,
        }
        bet = {
            **common,
            "request_uuid": f"r-{bet_id}",
            "transaction_uuid": bet_id,
            "amount": traffic.rng.randrange(10, 500) * 1000,
        }
        requests.append((player, adapter.signed("/transaction/bet", bet)))
        settle = {
            **common,
            "request_uuid": f"r-{bet_id}-s",
            "transaction_uuid": f"{bet_id}-s",
            "reference_transaction_uuid": bet_id,
            "round_closed": True,
        }
        if traffic.rng.randrange(100) < HUB88_ROLLBACK_PERCENT:
            requests.append((player, adapter.signed("/transaction/rollback", settle)))
        else:
            settle["amount"] = traffic.rng.choice((0, 0, 150_000, 400_000))
            requests.append((player, adapter.signed("/transaction/win", settle)))
    return requests


async def fund(server, players: list[str]) -> None:
    async with AsyncLedgerClient(server.target, server.token) as ledger:
        for start in range(0, len(players), FUNDING_BATCH):
            batch = Batch()
            for player in players[start : start + FUNDING_BATCH]:
                batch.deposit(
                    idempotency_key=f"fund-{player}",
                    player_id=player,
                    currency="EUR",
                    amount="100000",
                    rail="psp",
                    rail_id="stripe",
                )
            await ledger.submit_batch(batch)


async def open_sessions(http, adapter: Hub88Adapter, players: list[str]) -> dict[str, str]:
    """A game session per player, as the operator platform opens them at game launch."""
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}

    async def open_one(player: str) -> str:
        async with http.post(
            f"{adapter.url}/operator/sessions",
            headers=headers,
            json={"user": player, "currency": "EUR"},
        ) as response:
            assert response.status == 201, await response.text()
            return (await response.json())["token"]

    return dict(zip(players, await asyncio.gather(*map(open_one, players)), strict=True))


async def _hub88_caller(http, url: str, requests: list, deadline: float, tally: Tally) -> None:
    for _player, (path, body, headers) in requests:
        if now_s() >= deadline:
            return
        started = now_s()
        async with http.post(url + path, data=body, headers=headers) as response:
            answer = await response.json()
        tally.latencies_s.append(now_s() - started)
        tally.outcomes[answer["status"]] = tally.outcomes.get(answer["status"], 0) + 1
        tally.commands += 1
    tally.outcomes["requests used up"] = tally.outcomes.get("requests used up", 0) + 1


async def hub88_cell(
    servers, clients: int, duration_s: float, args, workdir: Path, workers: int = 1
):
    """Signed Hub88 calls through the adapter (`workers` processes) to the first server
    (which, with several processes, owns only some of the players: any process serves any
    wallet correctly)."""
    adapter = Hub88Adapter(servers[0], workdir, workers)
    try:
        return await _drive_hub88(adapter, servers, clients, duration_s, args)
    finally:
        adapter.stop()


async def _drive_hub88(adapter, servers, clients: int, duration_s: float, args):
    per_second = max(HUB88_CLIENT_REQUESTS_PER_S_MAX, HUB88_REQUESTS_PER_S_MAX // clients)
    per_client = int(duration_s * per_second) + 10
    traffics = [
        Traffic(
            f"hub88-{n}-{uuid.uuid4().hex[:6]}",
            min(args.players, HUB88_PLAYERS_MAX),
            args.hot_share,
            seed=1000 + n,
        )
        for n in range(clients)
    ]
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    names = [f"p{n}" for n in range(min(args.players, HUB88_PLAYERS_MAX))]
    players = [HUB88_PLAYER_PREFIX + name for name in (*names, "hot0", "hot1", "hot2")]
    await fund(servers[0], players)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        tokens = await open_sessions(http, adapter, players)
    requests = [hub88_rounds(adapter, t, tokens.__getitem__, per_client) for t in traffics]
    # A session of its own for the load: signing takes seconds, longer than the adapter keeps
    # an idle connection open, and a pooled connection closed meanwhile fails the first call.
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        tally, deadline = Tally(), now_s() + duration_s
        started = now_s()
        pids = [server.process.pid for server in servers] + adapter.pids
        with CpuMeter(pids) as cpu:
            await asyncio.gather(
                *(_hub88_caller(http, adapter.url, r, deadline, tally) for r in requests)
            )
        elapsed = now_s() - started
    return tally, elapsed, cpu


def hub88_books(tally: Tally) -> None:
    """Every wallet call got an answer the provider reads as taken or as a refusal of the
    game, never an unknown error."""
    bad = {k: v for k, v in tally.outcomes.items() if k == "RS_ERROR_UNKNOWN"}
    assert not bad, f"unknown errors from the adapter: {bad}"
