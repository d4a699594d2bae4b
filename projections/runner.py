"""The projection runner: reads each partition of the event log in pages after its tracking
position there, folds each page into view changes, and writes them with the partition's new
position in one transaction (so exactly-once holds per partition).

Catch-up of a long history is a batch job (one commit per page, never per event). After a
crash, even `kill -9` mid-page, the next run resumes at the last committed position: the
half-done page was never committed, so nothing is missed and nothing applied twice.

The lag (events in the log not yet in the views) is measured after every page, caught up or
not, so a server catching up a long history reports it shrinking page by page (the metric
`ledger.projection.lag`) instead of one number once it is done.
"""

import time
from collections.abc import Callable

from ledger.core import limits
from ledger.event_log import EventLog, log_pages, log_size
from projections.page import fold_page
from projections.stores import ProjectionStore

FOLLOW_POLL_S = 0.2


class ProjectionRunner:
    def __init__(
        self,
        log: EventLog,
        store: ProjectionStore,
        *,
        page_size: int = limits.log_page_size,
        on_lag: Callable[[int], None] = lambda lag: None,
    ) -> None:
        assert 0 < page_size <= limits.log_page_size_max
        self.log = log
        self.store = store
        store.bind_log(log.partitions)
        self.page_size = page_size
        self.on_lag = on_lag

    def run_page(self) -> int:
        """Applies the next page of each partition with events the views do not hold yet;
        returns how many events they held (0: caught up)."""
        log, applied = self.log, 0
        positions = self.store.positions(log.partitions)
        for partition, head in enumerate(log.heads()):
            if head > positions[partition]:
                applied += self._apply_page(partition, positions[partition])
        return applied

    def _apply_page(self, partition: int, position: int) -> int:
        log = self.log
        pages = log_pages(log, position, partition=partition, page_size=self.page_size)
        page = next(pages, [])
        if not page:
            return 0
        events = [(r.position, log.decode(r, log.plaintext(r))) for r in page]
        changes = fold_page(events, position + 1, partition, track_keys=log.distributed)
        self.store.apply(changes, expected_position=position)
        return len(page)

    def lag(self) -> int:
        """Events in the log not yet in the views."""
        lag = log_size(self.log) - self.store.position()
        self.on_lag(lag)
        return lag

    def catch_up(self, on_progress: Callable[[int], None] = lambda done: None) -> int:
        """Applies pages until the views hold every event written so far."""
        done = 0
        while applied := self.run_page():
            done += applied
            self.lag()
            on_progress(done)
        self.lag()
        return done

    def follow(self, should_stop: Callable[[], bool], poll_s: float = FOLLOW_POLL_S) -> int:
        """Keeps the views current until should_stop() says so; returns events applied."""
        done = 0
        while not should_stop():
            applied = self.run_page()
            done += applied
            self.lag()
            if applied == 0:
                time.sleep(poll_s)
        return done
