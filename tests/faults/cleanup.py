"""Cleanups that never hide the failure they run after.

A cleanup in `finally:` that raises replaces the error already on its way out: a scenario
whose check failed would report the load's stop (a worker's resend deadline, a worker still
running) or the server's exit status instead of the check. Here a cleanup still runs on the
way out, but when the body failed, a failure of the cleanup becomes a note on the body's
error (pytest prints it beneath), and the body's error is what the test reports. When the
body passed, the cleanup's failure is raised as it is: it is then the first failure."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def cleanup(callback: Callable[[], object]) -> Iterator[None]:
    """Runs callback on the way out of the block, failing or not (see the module's rules)."""
    try:
        yield
    except BaseException as error:
        run_noting_failure(callback, error)
        raise
    callback()


def run_noting_failure(callback: Callable[[], object], error: BaseException) -> None:
    """Runs callback while error propagates; its failure becomes a note on error."""
    try:
        callback()
    except Exception as failure:  # an interrupt (BaseException) still stops the run
        error.add_note(f"then the cleanup failed too: {type(failure).__name__}: {failure}")
