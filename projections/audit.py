"""The audit replay: the whole stored history folded again, independently, and checked.

It reads raw stored records in log order (a partitioned log's partitions merged, as
`ledger.event_log.merged_records` documents) and trusts nothing the engine computed:
it recomputes every digest from the stored plaintext, follows each wallet stream's hash
chain and version numbers, checks every journal balances within one currency, holds every
idempotency record against the events it claims (`projections.record_claims`: each event
claimed once, outcome and time as chained) and its balance-after against the replayed
wallet, requires the trial balance to be zero per currency, checks the history still
extends every signed checkpoint (`projections.checkpoint_check`), and compares the
projections with its own fold. What it proves and what it cannot is in `docs/audit.md`.
The first finding names the offending event; every finding is kept (up to a bound).
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.core import accounts, limits
from ledger.core.chain import genesis_hash, raw_digest
from ledger.core.events import (
    CheckpointRecorded,
    ClockAdvanced,
    CommandRecorded,
    CurrenciesRecorded,
    TestClockStarted,
    WalletEvent,
    WalletOpened,
)
from ledger.core.partition import partition_of, partition_stream
from ledger.event_log import EventLog, LogRecord, merged_records
from ledger.service.checkpoints import CHECKPOINT_STREAM_ID, stored_checkpoints
from ledger.service.clock import CLOCK_STREAM_ID
from ledger.service.currency_scales import CURRENCIES_STREAM_ID
from projections.checkpoint_check import CheckpointCheck, NamedCheckpoint
from projections.record_claims import RecordClaims, identity_problems
from projections.stores import ProjectionStore

# The audit reads the log after this position: the lowest id a database can hold, so rows
# stored below the log's first position (which the engine folds by stream) are read and
# reported; a row at this very position is found by the row count (`stored_rows`).
POSITION_MIN = -(2**63)
OWN_STREAMS = {
    CurrenciesRecorded: CURRENCIES_STREAM_ID,
    CheckpointRecorded: CHECKPOINT_STREAM_ID,
    TestClockStarted: CLOCK_STREAM_ID,
    ClockAdvanced: CLOCK_STREAM_ID,
}
FINDINGS_MAX = 100
_PLAYER_ACCOUNTS = (accounts.player_cash, accounts.player_bonus, accounts.player_held)


@dataclass(frozen=True)
class Finding:
    position: int | None  # position of the offending event, if one
    stream: UUID | None
    version: int | None
    problem: str
    partition: int | None = None  # its partition, in a log of several

    def __str__(self) -> str:
        of = f" of partition {self.partition}" if self.partition is not None else ""
        where = (
            f"event #{self.position}{of} ({self.stream} v{self.version})"
            if self.position is not None
            else "store"
        )
        return f"{where}: {self.problem}"


@dataclass
class AuditReport:
    events: int = 0
    wallets: int = 0
    findings: list[Finding] = field(default_factory=list)
    finding_count: int = 0
    trial_balance: dict[str, int] = field(default_factory=dict)
    checkpoints_verified: list[str] = field(default_factory=list)
    checkpoints_skipped: list[str] = field(default_factory=list)  # of another layout

    @property
    def passed(self) -> bool:
        return self.finding_count == 0


class _Replay:
    """The auditor's own fold: per-stream chain heads and per-account balances."""

    def __init__(self, log: EventLog, report: AuditReport, checkpoints: CheckpointCheck) -> None:
        self.log = log
        self.report = report
        self.checkpoints = checkpoints
        self.claims = RecordClaims(
            lambda *where: _event_finding(report, *where), partitioned=log.partitions > 1
        )
        # Streams are keyed by their id as an int: an int hashes in C, a UUID in Python, and
        # these maps are read several times per event.
        self.heads: dict[int, tuple[int, str]] = {}  # stream -> (version, digest)
        self.players: dict[int, tuple[str, str]] = {}  # stream -> (player, currency)
        self.balances: defaultdict[str, int] = defaultdict(int)
        self.currency_of: dict[str, str] = {}
        self.records: dict[int, int] = {}  # record stream -> its wallet
        self.others: dict[int, int] = {}  # the currencies', checkpoints' and clock's -> version
        self.clock_time: datetime | None = None  # a test store's clock after its newest event
        self.postings = 0
        self.last_positions = [0] * log.partitions  # each partition's last position read

    def find(self, note: LogRecord, problem: str) -> None:
        partition = note.partition if self.log.partitions > 1 else None
        _event_finding(self.report, note.position, note.stream_id, note.version, problem, partition)

    def add(self, note: LogRecord) -> None:
        self.report.events += 1
        self.last_positions[note.partition] = note.position
        try:
            plaintext = self.log.plaintext(note)
        except Exception as error:  # an auditor reports unreadable records, it does not stop
            self.find(note, f"cannot be decrypted: {error}")
            return
        raw = raw_digest(plaintext)
        # Below the first position: the engine folds it; followers, checkpoints and readers
        # of the log never do.
        if note.position < 1:
            self.find(note, f"stored at position #{note.position}, before the log's first position")
        else:
            self.checkpoints.add(note.partition, note.position, note.stream_id, note.version, raw)
        try:
            event = self.log.decode(note, plaintext)
        except Exception as error:  # an auditor reports undecodable records, it does not stop
            self.find(note, f"cannot be decoded: {error}")
            return
        if self.log.partitions > 1:
            self._check_partition(note, event)
        if isinstance(event, WalletEvent):
            self._wallet_event(note, event, raw.hex())
            self.claims.event(note.position, event)
        elif isinstance(event, CommandRecorded):
            self._command_record(note, event)
            self.claims.record(note.position, event)
        else:
            self._stream_of_its_own(note, event)
            if isinstance(event, TestClockStarted | ClockAdvanced):
                self._clock_event(note, event)

    def _check_partition(self, note: LogRecord, event) -> None:
        """A record must be in the partition its stream hashes to under the log's count: the
        engine reads a stream there and nowhere else (a row moved, or a heads row added or
        removed, which changes the count, hides it from the engine, not from the audit)."""
        expected = partition_of(partition_stream(event), self.log.partitions)
        if note.partition != expected:
            self.find(
                note,
                f"stored in partition {note.partition} of {self.log.partitions}, its "
                f"stream's is {expected}: the engine never reads it there",
            )

    def _stream_of_its_own(self, note: LogRecord, event) -> None:
        """A currencies or checkpoint record must be in its own stream: in a wallet's it would
        pass every wallet check and freeze the wallet (the engine cannot fold it)."""
        own = OWN_STREAMS.get(type(event))
        if own is None or event.originator_id != own:
            self.find(note, f"a {type(event).__name__} outside its own stream")
        stream = event.originator_id.int
        if note.version != self.others.get(stream, 0) + 1:
            self.find(
                note, f"version {note.version} of its stream follows {self.others.get(stream, 0)}"
            )
        self.others[stream] = note.version

    def _clock_event(self, note: LogRecord, event: TestClockStarted | ClockAdvanced) -> None:
        for problem in clock_problems(event, self.clock_time, self.report.events == 1):
            self.find(note, problem)
        self.clock_time = event.recorded_at

    def _wallet_event(self, note: LogRecord, event: WalletEvent, event_digest: str) -> None:
        stream = event.originator_id.int
        known = self.heads.get(stream)
        version, head = known if known is not None else (0, genesis_hash(event.originator_id))
        if event.originator_version != version + 1:
            self.find(note, f"version {event.originator_version} follows {version}")
        if event.previous_hash != head:
            self.find(
                note, "hash chain broken: previous_hash does not match the stored predecessor"
            )
        self.heads[stream] = (event.originator_version, event_digest)
        if isinstance(event, WalletOpened):
            self.players[stream] = (event.player_id, event.currency)
        if sum(p.amount for p in event.postings) != 0:
            self.find(note, "journal does not balance")
        for posting in event.postings:
            if not posting.account.endswith(f":{event.currency}"):
                self.find(note, f"posting to {posting.account} in a {event.currency} journal")
            self.balances[posting.account] += posting.amount
            self.currency_of[posting.account] = event.currency
            self.postings += 1

    def _command_record(self, note: LogRecord, record: CommandRecorded) -> None:
        stream, wallet = record.originator_id.int, record.wallet_id.int
        first_wallet = self.records.get(stream)
        if record.originator_version == 1 and first_wallet not in (None, wallet):
            self.find(
                note,
                f"key {record.key!r} ({record.scope}) was used for a second wallet "
                f"{record.wallet_id}, first for {UUID(int=first_wallet)}: reconcile it",
            )
        elif record.originator_version != 1 or first_wallet is not None:
            self.find(note, "idempotency record is not the single event of its stream")
        self.records.setdefault(stream, wallet)
        for problem in identity_problems(record):
            self.find(note, problem)
        opened = self.players.get(wallet)
        if opened is not None and opened != (record.player_id, record.currency):
            self.find(
                note,
                f"record names player {record.player_id} {record.currency}, its wallet "
                f"is {opened[0]} {opened[1]}",
            )
        if record.wallet_version_first <= record.wallet_version_last:  # it wrote events
            self._check_after(note, record, self.heads.get(wallet, (0, ""))[0])

    def _check_after(self, note: LogRecord, record: CommandRecorded, version: int) -> None:
        """The record's view of its wallet after the command: the replay's, to the unit.

        Only for a command that wrote events: a refusal that wrote nothing was decided on a
        stream that did not exist, which another writer may have opened before the refusal's
        record was committed (its decision needed no write, so nothing made it conflict)."""
        if version != record.wallet_version_last:
            self.find(
                note, f"record says wallet at v{record.wallet_version_last}, replay v{version}"
            )
            return
        if record.player_id:
            replayed = tuple(
                self.balances.get(account(record.player_id, record.currency), 0)
                for account in _PLAYER_ACCOUNTS
            )
            recorded = (record.cash, record.bonus, record.held)
            if replayed != recorded:
                self.find(note, f"record's balance-after {recorded} differs from replay {replayed}")


def clock_problems(
    event: TestClockStarted | ClockAdvanced, previous: datetime | None, first_of_log: bool
) -> list[str]:
    """What is wrong with a test clock's event: the mark that makes a store a test store must
    be the log's first event (a store becomes one only at creation, so a mark slipped into
    a production store's history is caught), and each advance must move the clock forward,
    from no earlier than where it stood, by no more than the bound.

    Args:
        previous: the clock's time after its stream's previous event; None before the mark.
        first_of_log: whether the event is the first the audit read.
    """
    if isinstance(event, TestClockStarted):
        if first_of_log:
            return []
        return [
            "a TestClockStarted after the log's first event: a store is made a test "
            "store only at creation"
        ]
    if previous is None:
        return ["a ClockAdvanced on a store that is not a test store"]
    problems = []
    if event.advanced_from < previous:
        problems.append(
            f"the clock advanced from {event.advanced_from.isoformat()}, before "
            f"its time {previous.isoformat()}: it went back"
        )
    step = event.recorded_at - event.advanced_from
    if not timedelta(0) < step <= timedelta(seconds=limits.clock_advance_s_max):
        problems.append(f"the clock advanced by {step}, not forward within the bound")
    return problems


def audit(
    log: EventLog,
    projection: ProjectionStore | None,
    on_progress: Callable[[int], None] = lambda done: None,
    *,
    checkpoints: Sequence[NamedCheckpoint] = (),
    trusted_keys: Sequence[Ed25519PublicKey] = (),
) -> AuditReport:
    """Replays every stored event and checks the history and the projections against it,
    and that the history extends every stored checkpoint and those given (signatures
    against trusted_keys when given)."""
    report = AuditReport()
    check = CheckpointCheck(
        [*checkpoints, *_stored(log, report)],
        trusted_keys,
        lambda problem: _store_finding(report, problem),
        log.partitions,
    )
    replay = _Replay(log, report, check)
    for note in merged_records(log, POSITION_MIN):
        replay.add(note)
        if report.events % limits.log_page_size == 0:
            on_progress(report.events)
    on_progress(report.events)
    replay.claims.finish()
    last = replay.last_positions
    check.finish(last)
    report.checkpoints_verified = check.verified
    report.checkpoints_skipped = check.skipped
    report.wallets = len(replay.heads)
    _check_every_row(replay, log.stored_rows(last), report)
    _check_trial_balance(replay, report)
    if projection is not None:
        _check_projection(replay, projection, last, report)
    return report


def _check_every_row(replay: _Replay, counted: tuple[int, int] | None, report) -> None:
    """Every row of the table was read through the log (a row with no position would be
    folded by the engine, by stream, and read by nothing else), and every stream id is
    spelled as the engine spells it (SQLite compares ids as text: another spelling hides
    those events from the engine, not from a reader of the log)."""
    if counted is None:
        return
    rows, misspelled = counted
    if rows != report.events:
        _store_finding(report, f"the event table holds {rows} rows, the log {report.events}")
    if misspelled:
        _store_finding(
            report,
            f"{misspelled} rows store their stream id not as the engine "
            "spells it: the engine cannot find those events",
        )


def _check_trial_balance(replay: _Replay, report: AuditReport) -> None:
    totals: defaultdict[str, int] = defaultdict(int)
    for account, balance in replay.balances.items():
        totals[replay.currency_of[account]] += balance
    report.trial_balance = dict(totals)
    for currency, total in sorted(totals.items()):
        if total != 0:
            _store_finding(report, f"trial balance of {currency} is {total}, not zero")


def _check_projection(
    replay: _Replay, projection: ProjectionStore, last: list[int], report
) -> None:
    positions = projection.positions(len(last))
    if positions != last:
        behind = [
            p
            for p, (mine, theirs) in enumerate(zip(last, positions, strict=True))
            if mine != theirs
        ]
        where = (
            f"event #{positions[0]}, the log at #{last[0]}"
            if len(last) == 1
            else f"other positions than the log in {len(behind)} partitions "
            f"(first: partition {behind[0]}, views at #{positions[behind[0]]}, "
            f"log at #{last[behind[0]]})"
        )
        _store_finding(
            report,
            f"the views are at {where}: run `ledger project` to bring them up to date, "
            "or audit the log alone with --no-projections",
        )
        return
    projected = projection.balances()
    for account in sorted(set(projected) | set(replay.balances)):
        mine = replay.balances.get(account, 0)
        theirs = projected.get(account, ("", 0))[1]
        if mine != theirs:
            _store_finding(report, f"projected balance of {account} is {theirs}, replay {mine}")
    if projection.posting_count() != replay.postings:
        _store_finding(
            report,
            f"journal view holds {projection.posting_count()} lines, the replay {replay.postings}",
        )
    for currency, (debits, credits) in projection.trial_balance().items():
        if debits != credits:
            _store_finding(
                report, f"projected trial balance of {currency} is off by {credits - debits}"
            )


def _stored(log: EventLog, report: AuditReport) -> list[NamedCheckpoint]:
    try:
        stored = stored_checkpoints(log)
    except Exception as error:  # a tampered checkpoint stream is a finding, not a crash
        _store_finding(report, f"the stored checkpoints cannot be read: {error}")
        return []
    return [
        NamedCheckpoint(f"stored checkpoint {n}", signed, stored=True)
        for n, signed in enumerate(stored, 1)
    ]


def _event_finding(
    report: AuditReport,
    position: int,
    stream: UUID,
    version: int,
    problem: str,
    partition: int | None = None,
):
    report.finding_count += 1
    if len(report.findings) < FINDINGS_MAX:
        report.findings.append(Finding(position, stream, version, problem, partition))


def _store_finding(report: AuditReport, problem: str) -> None:
    report.finding_count += 1
    if len(report.findings) < FINDINGS_MAX:
        report.findings.append(Finding(None, None, None, problem))
