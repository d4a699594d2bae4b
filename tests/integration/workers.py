"""Worker processes for concurrency tests: each opens its own Ledger on the shared store."""

from collections import Counter

from ledger.application import Ledger
from tests.builders import EUR, bet, deposit


def hammer_one_wallet(database_url: str, name: str, shared_keys: list[str]) -> dict[str, int]:
    """Deposits under private and shared keys and places private bets, all on wallet p1."""
    outcomes: Counter[str] = Counter()
    with Ledger(database_url) as ledger:
        for n in range(30):
            outcomes[ledger.execute(deposit(f"{name}-d{n}", EUR)).outcome.value] += 1
            if n < len(shared_keys):
                outcomes[ledger.execute(deposit(shared_keys[n], EUR)).outcome.value] += 1
            if n < 20:
                command = bet(f"{name}-b{n}", EUR, round_id=f"{name}-r{n}")
                outcomes[ledger.execute(command).outcome.value] += 1
    return dict(outcomes)
