"""The first attempt runs outside the retry policy; once it fails, the policy sees that
failure as its own first attempt (ledger/service/application.py, `_after_failure`): the
total count of attempts and the waits between them are the policy's, as before."""

import asyncio

import pytest
from tenacity import AsyncRetrying, Retrying, retry_if_exception_type, stop_after_attempt

from ledger.event_log import AppendConflict
from ledger.service.application import _after_failure


def _policy(attempts: int, slept: list[float]) -> dict:
    return {
        "stop": stop_after_attempt(attempts),
        "retry": retry_if_exception_type(AppendConflict),
        "sleep": slept.append,
        "reraise": True,
    }


def test_the_replayed_failure_counts_as_the_first_of_the_policys_attempts():
    """Three attempts in all: the one made outside, then two more, then the last error."""
    calls, slept = [], []

    def attempt(n: int) -> str:
        calls.append(n)
        raise AppendConflict(f"attempt {len(calls) + 1}")

    with pytest.raises(AppendConflict, match="attempt 3"):
        Retrying(**_policy(3, slept))(_after_failure(AppendConflict("attempt 1"), attempt), 7)
    assert calls == [7, 7] and len(slept) == 2  # a wait before each attempt made again


def test_an_async_attempt_is_replayed_then_awaited():
    """The async form raises the first failure, then awaits the real attempt's answer."""
    calls = []

    async def attempt(n: int) -> int:
        calls.append(n)
        return n * 2

    async def run() -> int:
        async def no_wait(_: float) -> None:
            return None

        policy = {**_policy(3, []), "sleep": no_wait}
        replayed = _after_failure(AppendConflict("first"), attempt)
        return await AsyncRetrying(**policy)(replayed, 21)

    assert asyncio.run(run()) == 42 and calls == [21]
