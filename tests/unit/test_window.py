"""The prefix-sum time window agrees with a plain list on every window and moment."""

from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.core.window import TimeWindow, window_add, window_sum

HORIZON_S = 100


@given(
    steps=st.lists(st.tuples(st.integers(0, 30), st.integers(-50, 50)), max_size=60),
    window_s=st.integers(1, HORIZON_S),
    lookback=st.integers(0, 10),
)
def test_window_sum_matches_a_plain_list(steps, window_s, lookback):
    """For any history, the window's sum equals summing a plain list of the entries."""
    assume(window_s + lookback <= HORIZON_S)  # windows never reach past the pruning horizon
    window, plain, now_s = TimeWindow(), [], 0
    for gap_s, amount in steps:
        now_s += gap_s
        now_us = now_s * 1_000_000
        window = window_add(window, now_us, amount, now_us - HORIZON_S * 1_000_000)
        plain.append((now_us, amount))
    at_us = (now_s - lookback) * 1_000_000
    start_us = at_us - window_s * 1_000_000
    expected = sum(amount for t, amount in plain if start_us < t <= at_us)
    assert window_sum(window, at_us, window_s) == expected


def test_old_entries_are_dropped():
    """Entries beyond the horizon leave the map, so state stays bounded by the window."""
    window = TimeWindow()
    for second in range(1000):
        us = second * 1_000_000
        window = window_add(window, us, 1, us - HORIZON_S * 1_000_000)
    assert len(window.entries) == HORIZON_S
    assert window_sum(window, 999 * 1_000_000, HORIZON_S) == HORIZON_S
