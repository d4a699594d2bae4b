"""A time window of amounts for responsible-gambling limits, as a persistent queue of
prefix sums.

Entries are (microseconds since the epoch, running total including this entry), appended in
time order. Appending, and dropping entries older than the longest window, cost O(log n) on
the persistent map, so a fold over a long history stays linear. A window's sum is the
running total at its end minus the running total just before its start, both found by
binary search over the entry indices: O(log² n), whatever the window holds.
"""

import msgspec
from immutables import Map


class TimeWindow(msgspec.Struct, frozen=True):
    first: int = 0  # index of the oldest entry kept
    next: int = 0  # index the next entry gets
    base: int = 0  # running total just before `first`
    entries: Map = Map()  # index -> (at_us, running total)


def window_add(window: TimeWindow, at_us: int, amount: int, horizon_us: int) -> TimeWindow:
    """Appends an entry and drops entries at or before horizon_us (older than any window)."""
    entries, first, base = window.entries, window.first, window.base
    total = entries[window.next - 1][1] if window.next > first else base
    while first < window.next and entries[first][0] <= horizon_us:
        base = entries[first][1]
        entries = entries.delete(first)
        first += 1
    entries = entries.set(window.next, (at_us, total + amount))
    return TimeWindow(first=first, next=window.next + 1, base=base, entries=entries)


def window_sum(window: TimeWindow, now_us: int, window_s: int) -> int:
    """Sum of the entries inside the half-open window (now - window, now].

    Exact as long as the window starts after the horizon entries were dropped at: callers
    ask at the decision time with windows no longer than the longest one (30 days).
    """
    start_us = now_us - window_s * 1_000_000
    return _total_up_to(window, now_us) - _total_up_to(window, start_us)


def _total_up_to(window: TimeWindow, at_us: int) -> int:
    """The running total of the entries at or before at_us."""
    low, high = window.first, window.next  # find the first index after at_us
    while low < high:
        middle = (low + high) // 2
        if window.entries[middle][0] <= at_us:
            low = middle + 1
        else:
            high = middle
    return window.entries[low - 1][1] if low > window.first else window.base
