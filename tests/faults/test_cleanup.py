"""A scenario's cleanup (stopping the load, stopping the server) never hides the failure it
runs after: no server is needed to show it."""

import pytest

from tests.faults.cleanup import cleanup
from tests.faults.load import Load


def failing(message: str):
    def callback() -> None:
        raise RuntimeError(message)

    return callback


def test_a_failing_cleanup_after_a_failure_becomes_a_note_on_it():
    """The block's error is raised, with the cleanup's failure noted on it."""
    with pytest.raises(AssertionError, match="the check") as raised, cleanup(failing("stop")):
        raise AssertionError("the check")
    assert raised.value.__notes__ == ["then the cleanup failed too: RuntimeError: stop"]


def test_a_failing_cleanup_after_a_passing_block_is_raised():
    """With nothing else failing, the cleanup's own failure is what is reported."""
    with pytest.raises(RuntimeError, match="stop"), cleanup(failing("stop")):
        pass


def test_the_cleanup_runs_once_whether_the_block_fails_or_not():
    """The callback runs on the way out of a passing and of a failing block, once each."""
    calls = []
    with cleanup(lambda: calls.append("passed")):
        pass
    with pytest.raises(ValueError), cleanup(lambda: calls.append("failed")):
        raise ValueError
    assert calls == ["passed", "failed"]


def stopped_load_with_worker_error() -> Load:
    """A load whose one worker ends at once (stopping is set before it starts) holding an
    error, so its stop raises; its client never connects (channels are lazy)."""
    load = Load("127.0.0.1:9", "token", "cleanup", worker_count=1)
    load.stopping.set()
    load.workers[0].error = RuntimeError("a worker's resend deadline")
    return load


def test_a_load_that_fails_to_stop_does_not_hide_the_scenario_failure():
    """Leaving a failed block, the load's stop error is a note on the block's error."""
    with pytest.raises(AssertionError, match="lost") as raised, stopped_load_with_worker_error():
        raise AssertionError("lost: 1")
    assert raised.value.__notes__ == [
        "then the cleanup failed too: RuntimeError: a worker's resend deadline"
    ]


def test_a_load_that_fails_to_stop_after_a_passing_block_raises():
    """Leaving a passing block, the load's stop error is raised."""
    with pytest.raises(RuntimeError, match="resend deadline"), stopped_load_with_worker_error():
        pass
