"""Process settings for the long-running processes (the server, the load generator, and the
batch jobs over the whole log: `ledger project` and `ledger audit`).

CPython's default collector thresholds (700, 10, 10) start a full collection after about
70,000 net allocations once enough objects have survived, and a full collection walks every
tracked object. The wallet cache holds tens of tracked objects per wallet (persistent-map
nodes, UUIDs), so with thousands of cached wallets each full collection stopped the server
long enough to be the main cause of the unary p99 (the figures are in docs/decisions.md,
"Garbage collector tuned"). The write path frees almost everything it allocates by reference
counting, so collections can be much rarer; what is alive once the process has started
(modules, classes, functions) is frozen out of every later collection. The batch jobs keep
maps over every stream of the log, which the default collector walked again and again (the
figures are in benchmarks/README.md).
"""

import gc

from ledger.core import limits


def tune_garbage_collector() -> None:
    """Rarer collections, and the objects alive at startup never scanned again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(limits.gc_young_threshold, limits.gc_middle_threshold, limits.gc_old_threshold)
