"""The projection follower: keeps the read models current, on a thread of its own, through
store outages.

Rules:
- The runner writes each page with its tracking position in one transaction, so whatever
  fails between pages, the next attempt starts from the committed position: nothing is
  missed and nothing applied twice, however often the follower resumes.
- An outage (`ledger.store.outages.is_store_outage`: the store unreachable, a connection lost, a
  lock not granted in time) pauses the follower. It logs once, tries the next page again
  after jittered, doubling waits bounded by `limits.projection_retry_wait_ms_min/_max`, for
  as long as the outage lasts, and logs once more when a page goes through. Connections heal
  by themselves: the event store's pool replaces broken ones, the projection store reopens
  its connection on next use.
- Another runner moving the position (`PositionMoved`: a second server on the same views)
  is no fault: the next page starts where that runner left off.
- Anything else is a bug, such as an event that does not decode. Waiting will not fix it,
  so the follower logs it with its traceback, once, and stops; it reports itself unhealthy
  until the process restarts.
"""

import enum
import threading
import time

import structlog
from tenacity import Retrying, retry_if_exception, wait_random_exponential

from ledger.core import limits
from ledger.store.outages import is_store_outage
from projections.runner import ProjectionRunner
from projections.stores import PositionMoved

_log = structlog.get_logger("ledger.projections")


class FollowerState(enum.Enum):
    FOLLOWING = "following"
    PAUSED = "paused"  # waiting out a store outage
    FAILED = "failed"  # stopped by a bug


class ProjectionFollower:
    """Runs a projection runner's follow loop until stopped, waiting out store outages."""

    def __init__(self, runner: ProjectionRunner) -> None:
        self.runner = runner
        self.state = FollowerState.FOLLOWING
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="ledger-projections", daemon=True)

    @property
    def healthy(self) -> bool:
        return self.state is FollowerState.FOLLOWING

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=limits.shutdown_grace_s)

    def run(self) -> None:
        """Follows until stop(), in the calling thread; returns early only after a bug."""
        try:
            while not self.stopping.is_set():
                self._follow()
        except Exception:
            self.state = FollowerState.FAILED
            _log.exception("projection follower stopped by an error that waiting cannot fix")

    def _follow(self) -> None:
        """Follows until stop(), a lost race or an outage waited out; raises a bug."""
        try:
            self.runner.follow(self.stopping.is_set)
        except PositionMoved as error:
            _log.info("projections moved by another runner", detail=str(error))
        except Exception as error:
            if not is_store_outage(error):
                raise
            self._wait_out(error)

    def _wait_out(self, outage: Exception) -> None:
        """Tries the next page again, with backoff, until one goes through or stop() is
        called; raises a bug that shows instead."""
        self.state = FollowerState.PAUSED
        started = time.monotonic()
        _log.warning(
            "projections paused: store unavailable",
            error=str(outage),
            error_type=type(outage).__name__,
        )
        retrying = _retrying(self.stopping)
        try:
            retrying(self.runner.run_page)
        except Exception as error:
            if self.stopping.is_set() and _worth_waiting_out(error):
                return  # stopped while the store was still down
            raise
        self.state = FollowerState.FOLLOWING
        _log.info(
            "projections resumed",
            outage_s=round(time.monotonic() - started, 3),
            attempts=retrying.statistics.get("attempt_number", 1),
        )


def _worth_waiting_out(error: BaseException) -> bool:
    """An outage, or another runner ahead of this one (two servers resuming at once)."""
    return is_store_outage(error) or isinstance(error, PositionMoved)


def _retrying(stopping: threading.Event) -> Retrying:
    """Retries while the store is out, with jittered doubling waits, until stopping is set
    (which also ends a wait early)."""
    return Retrying(
        retry=retry_if_exception(_worth_waiting_out),
        wait=wait_random_exponential(
            multiplier=limits.projection_retry_wait_ms_min / 1000,
            min=limits.projection_retry_wait_ms_min / 1000,
            max=limits.projection_retry_wait_ms_max / 1000,
        ),
        stop=lambda _: stopping.is_set(),
        sleep=stopping.wait,
        reraise=True,
    )
