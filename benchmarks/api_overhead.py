"""CPU microseconds the gRPC API layer spends on one unary command, apart from gRPC and the
engine.

    python benchmarks/api_overhead.py                 # 20,000 Bet calls, each part timed
    python benchmarks/api_overhead.py --calls 50000

It also times SubmitBatch calls of the harness's 50 commands each, per command.

The servicer's own unary path (`LedgerServicer.Bet`) runs in one process, on one event loop,
with the real telemetry (a canonical log line written to /dev/null, no-op meter and tracer,
as `ledger serve` runs by default), the real authenticator and the real conversion; only the
group committer is replaced by one that answers at once with a fixed result, so what is
timed is everything a unary call costs on top of gRPC's transport and the engine's decide
and store. Each part is also timed alone, to say where the microseconds go. The figures are
per call, on this machine, single-threaded (see benchmarks/README.md, issue 15).
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.api import convert
from ledger.api.auth import Authenticator, ClientConfig, token_sha256
from ledger.api.servicer import LedgerServicer
from ledger.api.telemetry import Telemetry
from ledger.core.money import CurrencyRegistry
from ledger.core.outcomes import Outcome
from ledger.core.policy import Policy, Rules
from ledger.core.state import Balances
from ledger.core.validation import validate
from ledger.logs import configure_logging
from ledger.service.results import CommandResult
from ledger.v1 import ledger_pb2 as pb

TOKEN = "bench-token-" + "0" * 32
METADATA = (("authorization", f"Bearer {TOKEN}"), ("user-agent", "grpc-python-asyncio/1"))
RESULT = CommandResult(
    outcome=Outcome.OK,
    original_outcome=Outcome.OK,
    journal_id=None,
    balances=Balances(99_000, 0, 0),
    balances_after=Balances(99_000, 0, 0),
    wallet_version=7,
)


class _AnsweringCommitter:
    """Stands in for the group committer: every command succeeds at once."""

    def check_room(self, count: int) -> None:
        pass

    async def submit(self, commands):
        return [RESULT for _ in commands]


class _Ledger:
    rules = Rules(CurrencyRegistry(), Policy())


class _Context:
    """What the servicer asks of grpc's ServicerContext on a successful call."""

    def invocation_metadata(self):
        return METADATA

    def time_remaining(self):
        return 60.0


def _bet(n: int) -> pb.BetRequest:
    return pb.BetRequest(
        idempotency_key=f"bet-{n}",
        player_id=f"p{n % 1000}",
        currency="EUR",
        amount="1.00",
        provider="hub88",
        round_id=f"r{n}",
    )


def _servicer() -> LedgerServicer:
    authenticator = Authenticator(
        [ClientConfig(name="bench", role="admin", token_sha256=token_sha256(TOKEN))]
    )
    return LedgerServicer(
        _Ledger(), _AnsweringCommitter(), authenticator, Telemetry("none"), executor=None
    )


def _per_call_us(run, calls: int) -> float:
    started = time.process_time()
    run(calls)
    return (time.process_time() - started) / calls * 1e6


def whole_call(calls: int) -> float:
    """The servicer's unary Bet, start to finish, as gRPC would await it."""
    servicer, context = _servicer(), _Context()
    requests = [_bet(n) for n in range(calls)]

    async def run(count: int) -> None:
        for request in requests[:count]:
            await servicer.Bet(request, context)

    return _per_call_us(lambda count: asyncio.run(run(count)), calls)


def batch_call(calls: int) -> float:
    """The servicer's SubmitBatch of the harness's 50 commands, per command: conversion,
    validation and the answers, with the same stand-in committer."""
    from load import BATCH_SIZE, Traffic  # benchmarks/, this script's own directory

    servicer, context = _servicer(), _Context()
    traffics = [Traffic(f"c{n}", 2_000, 10, n) for n in range(64)]
    requests = [
        pb.SubmitBatchRequest(commands=[traffics[n % 64].next()[1] for _ in range(BATCH_SIZE)])
        for n in range(max(1, calls // BATCH_SIZE))
    ]

    async def run(count: int) -> None:
        for request in requests:
            await servicer.SubmitBatch(request, context)

    return _per_call_us(lambda count: asyncio.run(run(count)), len(requests) * BATCH_SIZE)


def parts(calls: int) -> dict[str, float]:
    """Each piece of the unary path, timed alone over the same requests."""
    servicer, telemetry = _servicer(), Telemetry("none")
    requests = [_bet(n) for n in range(calls)]
    rules = _Ledger.rules
    currency = rules.currencies.get("EUR")
    header = METADATA[0][1]

    def telemetry_scope(count: int) -> None:
        for _ in range(count):
            with telemetry.call("Bet", METADATA) as record:
                record.outcome = "OK"

    def authenticate(count: int) -> None:
        for _ in range(count):
            servicer.authenticator.authenticate(header)

    def convert_in(count: int) -> None:
        for request in requests[:count]:
            convert.command_from_request("Bet", request, rules.currencies)

    def validate_command(count: int) -> None:
        command = convert.command_from_request("Bet", requests[0], rules.currencies)
        for _ in range(count):
            validate(command, rules)

    def convert_out(count: int) -> None:
        for _ in range(count):
            convert.command_response(RESULT, currency)

    return {
        name: _per_call_us(part, calls)
        for name, part in (
            ("telemetry (span scope, metrics, log line)", telemetry_scope),
            ("authenticate", authenticate),
            ("convert request", convert_in),
            ("validate", validate_command),
            ("convert response", convert_out),
        )
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    # The server's configuration, writing its lines where they cost the write but are kept
    # by nobody.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    configure_logging("info")
    structlog.get_logger("ledger.api")
    whole_call(1_000)  # warm-up: first-use caches, imports
    whole = whole_call(args.calls)
    pieces = parts(args.calls)
    batch_call(1_000)  # warm-up
    batched = batch_call(args.calls)
    sys.stderr = sys.__stderr__
    print(f"whole unary call in the servicer: {whole:.1f} µs")
    print(f"SubmitBatch of 50 in the servicer: {batched:.1f} µs per command")
    for name, us in pieces.items():
        print(f"  {name}: {us:.1f} µs")


if __name__ == "__main__":
    main()
