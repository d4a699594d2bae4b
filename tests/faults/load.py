"""Concurrent load with resends, and the checks every fault scenario ends with.

Workers are threads, each with its own client (its own channel), sending a seeded stream of
deposits, bets and wins for a few shared players, one unary call or one SubmitBatch at a time.
A call that fails retryably is resent with the same keys and bodies until it is answered, as
a provider or payment gateway does; a call not answered within `UNIT_DEADLINE_S` fails the
scenario (the server did not recover). Each worker records the outcome its calls were
finally answered with.

The checks read the store in this process after the server has stopped:
- lost: an acknowledged command whose idempotency record is missing, or says otherwise
  (another outcome, another journal);
- doubled: a key recorded twice, or whose wallet effect is stored in more than one journal;
- every command sent was answered, and nothing is stored that no client was answered for;
- each player's balances equal a model summed from the acknowledged outcomes, in the
  independent posting fold (`ledger.cli.summary`) and in the engine's own wallet fold;
- the summary is sound, and the audit replay passes, read models included (caught up here,
  after whatever the faults did to the server's own follower).
"""

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.cli.summary import PostingFold, stored_events, summarize
from ledger.client import Batch, LedgerClient, Unavailable
from ledger.core.events import CommandRecorded, WalletEvent
from ledger.core.money import CurrencyRegistry, parse_amount
from ledger.service.application import Ledger
from projections.audit import audit
from projections.runner import ProjectionRunner
from projections.stores import open_projection_store
from tests.faults.cleanup import run_noting_failure

UNIT_DEADLINE_S = 90  # generous: a restart on a loaded 2-core machine takes seconds
RESEND_PAUSE_S = 0.1
UNITS_PER_WORKER_MAX = 5_000  # bounds a worker's loop whatever the stop signal does
JOIN_TIMEOUT_S = UNIT_DEADLINE_S + 30
WAIT_POLL_S = 0.05
CURRENCY = "EUR"
PROVIDER = "hub88"
EUR = CurrencyRegistry().get(CURRENCY)
SUCCESS = frozenset({"OK", "DUPLICATE"})


def minor(amount: str) -> int:
    return parse_amount(amount, EUR, field="amount")


@dataclass(frozen=True)
class Item:
    """One command: its gRPC method, request fields, player, and cash effect if applied."""

    method: str  # "Deposit", "Bet" or "Win": also the batch oneof's name, lower-cased
    fields: dict
    player: str
    effect: int  # minor units

    @property
    def key(self) -> str:
        return self.fields["idempotency_key"]


@dataclass(frozen=True)
class Answer:
    outcome: str
    journal_id: str


@dataclass
class Tally:
    """What every worker sent and was answered, shared under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    items: dict[str, Item] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    resends: int = 0
    retried_codes: Counter = field(default_factory=Counter)

    def sent(self, unit: list[Item]) -> None:
        with self.lock:
            self.items.update((item.key, item) for item in unit)

    def answered(self, unit: list[Item], replies: list) -> None:
        with self.lock:
            for item, reply in zip(unit, replies, strict=True):
                self.answers[item.key] = Answer(reply.outcome, reply.journal_id)

    def resent(self, status: str) -> None:
        with self.lock:
            self.resends += 1
            self.retried_codes[status] += 1

    def acknowledged(self) -> int:
        with self.lock:
            return len(self.answers)


class Stream:
    """A worker's seeded commands: deposits, bets, and wins for its bets that were accepted."""

    def __init__(self, name: str, players: list[str], seed: int) -> None:
        self.name = name
        self.players = players
        self.random = random.Random(seed)
        self.count = 0
        self.open_bets: list[Item] = []

    def next_unit(self) -> list[Item]:
        """One unary command, or two to five for one SubmitBatch."""
        size = 1 if self.random.random() < 0.6 else self.random.randint(2, 5)
        return [self._next_item() for _ in range(size)]

    def _next_item(self) -> Item:
        self.count += 1
        key = f"{self.name}-{self.count}"
        draw = self.random.random()
        if draw < 0.2:
            return deposit(key, self.random.choice(self.players), self.random.choice(("20", "50")))
        if draw < 0.5 and self.open_bets:
            placed = self.open_bets.pop(self.random.randrange(len(self.open_bets)))
            return win(key, placed, self.random.choice(("0.5", "3", "12")))
        amount = self.random.choice(("1", "2.5", "5", "40"))
        return bet(key, self.random.choice(self.players), amount)

    def settled(self, unit: list[Item], answers: list[Answer]) -> None:
        """Bets accepted become open for a later win."""
        for item, answer in zip(unit, answers, strict=True):
            if item.method == "Bet" and answer.outcome in SUCCESS:
                self.open_bets.append(item)


def deposit(key: str, player: str, amount: str) -> Item:
    fields = {
        "idempotency_key": key,
        "player_id": player,
        "currency": CURRENCY,
        "amount": amount,
        "rail": "psp",
        "rail_id": "stripe",
    }
    return Item("Deposit", fields, player, minor(amount))


def bet(key: str, player: str, amount: str) -> Item:
    fields = {
        "idempotency_key": key,
        "provider": PROVIDER,
        "player_id": player,
        "currency": CURRENCY,
        "amount": amount,
        "round_id": f"round-{key}",
    }
    return Item("Bet", fields, player, -minor(amount))


def win(key: str, of_bet: Item, amount: str) -> Item:
    fields = {
        "idempotency_key": key,
        "provider": PROVIDER,
        "player_id": of_bet.player,
        "currency": CURRENCY,
        "amount": amount,
        "bet_key": of_bet.key,
        "round_closed": True,
    }
    return Item("Win", fields, of_bet.player, minor(amount))


def send(client: LedgerClient, unit: list[Item]) -> list:
    """One unary call for a single command, one SubmitBatch for more."""
    if len(unit) == 1:
        [item] = unit
        return [getattr(client, item.method.lower())(**item.fields)]
    batch = Batch()
    for item in unit:
        getattr(batch, item.method.lower())(**item.fields)
    return client.submit_batch(batch)


def send_until_answered(client: LedgerClient, unit: list[Item], tally: Tally) -> list:
    """Resends the same unit after every retryable failure, until answered or the deadline."""
    deadline = time.monotonic() + UNIT_DEADLINE_S
    tally.sent(unit)
    while True:
        try:
            replies = send(client, unit)
        except Unavailable as error:  # no answer through the client's own resends
            if time.monotonic() > deadline:
                raise
            tally.resent(error.status)
            time.sleep(RESEND_PAUSE_S)
            continue
        tally.answered(unit, replies)
        return replies


class Worker(threading.Thread):
    """Sends its stream until `stopping` is set; an exception is kept for the test to raise."""

    def __init__(
        self, client: LedgerClient, stream: Stream, tally: Tally, stopping: threading.Event
    ) -> None:
        super().__init__(name=f"load-{stream.name}", daemon=True)
        self.client = client
        self.stream = stream
        self.tally = tally
        self.stopping = stopping
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for _ in range(UNITS_PER_WORKER_MAX):
                if self.stopping.is_set():
                    return
                unit = self.stream.next_unit()
                replies = send_until_answered(self.client, unit, self.tally)
                self.stream.settled(unit, [Answer(r.outcome, r.journal_id) for r in replies])
        except BaseException as error:
            self.error = error
        finally:
            self.client.close()


class Load:
    """`worker_count` workers over `player_count` shared players, started and stopped as one."""

    def __init__(
        self,
        target: str,
        token: str,
        name: str,
        *,
        worker_count: int = 8,
        player_count: int = 6,
        seed: int = 12,
        **client_options,
    ) -> None:
        self.tally = Tally()
        self.stopping = threading.Event()
        self.players = [f"{name}-p{n}" for n in range(player_count)]
        self.workers = [
            Worker(
                LedgerClient(target, token, **client_options),
                Stream(f"{name}-w{n}", self.players, seed + n),
                self.tally,
                self.stopping,
            )
            for n in range(worker_count)
        ]

    def start(self) -> "Load":
        for worker in self.workers:
            worker.start()
        return self

    def __enter__(self) -> "Load":
        return self.start()

    def __exit__(self, kind, error, traceback) -> None:
        """Stops the load; while the block's own error propagates, a failure to stop is
        noted on it rather than raised in its place (`tests/faults/cleanup.py`)."""
        if error is None:
            self.stop()
        else:
            run_noting_failure(self.stop, error)

    def wait_for_acknowledged(self, more: int, timeout_s: float = UNIT_DEADLINE_S) -> None:
        """Waits until `more` further commands are answered: the server is serving again."""
        goal = self.tally.acknowledged() + more
        deadline = time.monotonic() + timeout_s
        while self.tally.acknowledged() < goal:
            assert time.monotonic() < deadline, f"fewer than {more} answers in {timeout_s} s"
            self._raise_worker_error()
            time.sleep(WAIT_POLL_S)

    def stop(self) -> None:
        """Lets every worker finish its unit in hand (answered), then raises any error."""
        self.stopping.set()
        for worker in self.workers:
            worker.join(timeout=JOIN_TIMEOUT_S)
            assert not worker.is_alive(), f"{worker.name} still runs"
        self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        for worker in self.workers:
            if worker.error is not None:
                raise worker.error


def random_pause(rng: random.Random, low_s: float = 0.0, high_s: float = 0.4) -> None:
    """A fault lands at a random moment, not on a poll's beat."""
    time.sleep(rng.uniform(low_s, high_s))


@dataclass
class StoreReading:
    """Keys are unique across a scenario's providers, so records are indexed by key alone."""

    records: defaultdict[str, list] = field(default_factory=lambda: defaultdict(list))
    journals: defaultdict[str, set] = field(default_factory=lambda: defaultdict(set))
    fold: PostingFold = field(default_factory=PostingFold)

    def doubled(self) -> list[str]:
        """Keys recorded twice, or whose wallet events belong to more than one journal."""
        twice = {key for key, records in self.records.items() if len(records) > 1}
        twice |= {key for key, journals in self.journals.items() if len(journals) > 1}
        return sorted(twice)


def read_store(ledger: Ledger) -> StoreReading:
    """Every record by key, every key's journals, and the independent posting fold."""
    reading = StoreReading()
    for event in stored_events(ledger):
        reading.fold.add(event)
        if isinstance(event, CommandRecorded):
            reading.records[event.key].append(event)
        elif isinstance(event, WalletEvent):
            reading.journals[event.key].add(event.journal_id)
    return reading


def is_stored_as_answered(records: list[CommandRecorded], answer: Answer) -> bool:
    """A record of the key says what the client was told (a second record is `doubled`)."""
    return any(_says(record, answer) for record in records)


def _says(record: CommandRecorded, answer: Answer) -> bool:
    if answer.outcome in SUCCESS:
        return record.outcome == "OK" and str(record.journal_id) == answer.journal_id
    return record.outcome == answer.outcome


def model_cash(tally: Tally) -> dict[str, int]:
    """Each player's cash as the acknowledged outcomes say: every success applied once."""
    cash: defaultdict[str, int] = defaultdict(int)
    for key, answer in tally.answers.items():
        item = tally.items[key]
        cash[item.player] += item.effect if answer.outcome in SUCCESS else 0
    return dict(cash)


def check_store(database_url: str, tally: Tally) -> dict[str, int]:
    """Checks the stopped server's store against what was acknowledged; returns figures."""
    with Ledger(database_url) as ledger:
        reading = read_store(ledger)
        lost = [
            k
            for k, a in tally.answers.items()
            if not is_stored_as_answered(reading.records.get(k, []), a)
        ]
        doubled = reading.doubled()
        unanswered = sorted(set(reading.records) - set(tally.answers))
        off_model = _wallets_off_model(ledger, reading.fold, model_cash(tally))
        summary = summarize(ledger)
        report = _audit_with_views(ledger, database_url)
    assert set(tally.items) == set(tally.answers), "a command was sent but never answered"
    assert "CONFLICT" not in {answer.outcome for answer in tally.answers.values()}
    assert lost == [], f"{len(lost)} acknowledged commands not stored as answered: {lost[:5]}"
    assert doubled == [], f"{len(doubled)} keys applied more than once: {doubled[:5]}"
    assert unanswered == [], f"stored, yet never sent or never answered: {unanswered[:5]}"
    assert off_model == [], off_model[:5]
    assert summary.is_sound, summary.problems
    assert report.passed, [str(finding) for finding in report.findings[:5]]
    outcomes = Counter(answer.outcome for answer in tally.answers.values())
    return {
        "commands": len(tally.items),
        "acknowledged": len(tally.answers),
        "resends": tally.resends,
        "answered_duplicate": outcomes["DUPLICATE"],
        "lost": len(lost),
        "doubled": len(doubled),
    }


def _wallets_off_model(ledger: Ledger, fold: PostingFold, cash: dict[str, int]) -> list[str]:
    """Players whose folded balances (independent fold, engine fold) differ from the model."""
    off = []
    for player, expected in sorted(cash.items()):
        folded = fold.wallet_balances(player, CURRENCY)
        engine = ledger.balances(player, CURRENCY)
        if (folded.cash, folded.bonus, folded.held) != (expected, 0, 0) or engine != folded:
            off.append(f"{player}: model {expected}, fold {folded}, engine {engine}")
    return off


def _audit_with_views(ledger: Ledger, database_url: str):
    """Catches the read models up (resuming where the server's follower stopped) and audits
    the history with them."""
    views = open_projection_store(database_url)
    try:
        ProjectionRunner(ledger.log, views).catch_up()
        return audit(ledger.log, views)
    finally:
        views.close()


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout_s} s"
        time.sleep(WAIT_POLL_S)
