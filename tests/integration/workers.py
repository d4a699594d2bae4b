"""Worker processes for concurrency tests: each opens its own Ledger on the shared store."""

from collections import Counter

from ledger.core.errors import ConcurrencyExhausted
from ledger.service.application import Ledger
from ledger.service.results import CommandResult
from tests.builders import EUR, bet, deposit

CLIENT_RESEND_COUNT_MAX = 20


def send(ledger: Ledger, command, tally: Counter) -> CommandResult:
    """Sends like a platform client: a command whose retries ran out is resent as is,
    which is safe because every command is idempotent."""
    for _ in range(CLIENT_RESEND_COUNT_MAX):
        try:
            return ledger.execute(command)
        except ConcurrencyExhausted:
            tally["resent"] += 1
    raise AssertionError(f"{command.idempotency_key} never got through")


def hammer_one_wallet(database_url: str, name: str, shared_keys: list[str]) -> dict[str, int]:
    """Deposits under private and shared keys and places private bets, all on wallet p1."""
    tally: Counter[str] = Counter()
    with Ledger(database_url) as ledger:
        for n in range(30):
            tally[send(ledger, deposit(f"{name}-d{n}", EUR), tally).outcome.value] += 1
            if n < len(shared_keys):
                tally[send(ledger, deposit(shared_keys[n], EUR), tally).outcome.value] += 1
            if n < 20:
                command = bet(f"{name}-b{n}", EUR, round_id=f"{name}-r{n}")
                tally[send(ledger, command, tally).outcome.value] += 1
    return dict(tally)
