"""What the partitioned log's per-partition positions cost at the store: appends through the
event-log port, in process, on the single PostgreSQL log (table lock, global sequence) and
on the partitioned log (head rows), at batch sizes 1 and 64, with 1, 2 and 4 writer threads.

    python benchmarks/append_cost.py            # about a minute
    python benchmarks/append_cost.py --smoke

Each writer appends to its own streams (no version conflicts), spread over all partitions as
wallets are. Reported: appends/s, events/s, and wall microseconds per event.
"""

import argparse
import threading
import time
import uuid
from datetime import UTC, datetime

import psycopg

from ledger.core.events import CurrenciesRecorded, CurrencyScale
from ledger.event_log import EventLog
from ledger.store.database import store_environment, with_layout
from ledger.store.open import open_event_log

AT = datetime(2026, 12, 6, tzinfo=UTC)
STREAMS_PER_WRITER = 256


def _event(stream: uuid.UUID, version: int) -> CurrenciesRecorded:
    return CurrenciesRecorded(
        originator_id=stream,
        originator_version=version,
        recorded_at=AT,
        currencies=(CurrencyScale("EUR", 2),),
    )


def _writer(log: EventLog, batch: int, deadline: float, counts: list[int]) -> None:
    """Appends batches of `batch` events, each to the next of its streams, until deadline."""
    streams = [uuid.uuid4() for _ in range(STREAMS_PER_WRITER)]
    versions = dict.fromkeys(streams, 0)
    turn = 0
    while time.monotonic() < deadline:
        chosen = [streams[(turn + i) % len(streams)] for i in range(batch)]
        turn += batch
        events = []
        for stream in chosen:
            versions[stream] += 1
            events.append(_event(stream, versions[stream]))
        log.append(events)
        counts[0] += 1


def measure(log: EventLog, batch: int, writers: int, duration_s: float) -> dict:
    deadline = time.monotonic() + duration_s
    counts = [[0] for _ in range(writers)]
    threads = [
        threading.Thread(target=_writer, args=(log, batch, deadline, counts[n]))
        for n in range(writers)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration_s + 60)
    elapsed = time.monotonic() - started
    appends = sum(c[0] for c in counts)
    events = appends * batch
    return {
        "batch": batch,
        "writers": writers,
        "appends_per_s": round(appends / elapsed),
        "events_per_s": round(events / elapsed),
        "us_per_event": round(elapsed * writers * 1e6 / events, 1) if events else None,
    }


def _fresh(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    duration = 0.5 if args.smoke else args.duration
    print("| layout | batch | writers | appends/s | events/s | µs/event (wall × writers) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    run_id = uuid.uuid4().hex[:6]
    for layout in ("single", "partitioned"):
        name = f"bench_append_{layout}_{run_id}"
        url = with_layout(_fresh(args.pg_admin, name), layout)
        log = open_event_log(store_environment(url))
        try:
            for batch in (1, 64):
                for writers in (1, 2, 4):
                    r = measure(log, batch, writers, duration)
                    print(
                        f"| {layout} | {batch} | {writers} | {r['appends_per_s']:,} "
                        f"| {r['events_per_s']:,} | {r['us_per_event']} |",
                        flush=True,
                    )
        finally:
            log.close()
            with psycopg.connect(args.pg_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
