"""The log line's timestamp: structlog's ISO UTC format, produced more cheaply."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ledger.logs import iso_utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# From the epoch to the end of year 9999, in nanoseconds.
NOW_NS = st.integers(min_value=0, max_value=253_402_300_799_999_999_999)


def _structlog_text(now_ns: int) -> str:
    """What `TimeStamper(fmt="iso", utc=True)` writes for that instant."""
    moment = EPOCH + timedelta(microseconds=now_ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


@given(NOW_NS)
def test_timestamps_read_as_structlog_iso_utc_writes_them(now_ns):
    """Any instant is written exactly as structlog's ISO UTC stamper writes it."""
    assert iso_utc(now_ns) == _structlog_text(now_ns)


def test_a_whole_second_has_no_fraction_and_the_next_second_is_formatted_afresh():
    """A whole second drops the fraction, as isoformat does, and the cached second moves on."""
    second = 1_765_000_000 * 10**9
    assert iso_utc(second) == "2025-12-06T05:46:40Z"
    assert iso_utc(second + 1_000) == "2025-12-06T05:46:40.000001Z"
    assert iso_utc(second + 10**9 + 999_999_999) == "2025-12-06T05:46:41.999999Z"
