"""Process settings of the long-running processes: the garbage collector's tuning."""

import subprocess
import sys

from ledger.core import limits

_PROBE = (
    "import gc; from ledger.service.runtime import tune_garbage_collector; "
    "tune_garbage_collector(); print(*gc.get_threshold(), gc.get_freeze_count())"
)


def test_tuning_sets_the_limits_thresholds_and_freezes_what_startup_left_alive():
    """A tuned process collects at the limits' thresholds and never rescans its startup objects."""
    output = subprocess.run(
        [sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True, timeout=60
    ).stdout.split()
    young, middle, old, frozen = map(int, output)
    assert (young, middle, old) == (
        limits.gc_young_threshold,
        limits.gc_middle_threshold,
        limits.gc_old_threshold,
    )
    assert frozen > 1_000  # modules, classes and functions imported before the freeze
