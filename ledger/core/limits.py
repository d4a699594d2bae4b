"""Every bound the engine enforces, in one place, with the qualifier last.

The relationships between limits are asserted at import time, the closest Python gets to
TigerBeetle's compile-time checks: a limit that contradicts another fails the first import.
"""

from datetime import UTC, datetime, timedelta

# Identifiers arriving from clients. Long enough for UUIDs, provider-prefixed ids and hashes.
idempotency_key_length_max = 128
player_id_length_max = 64
provider_id_length_max = 64
round_id_length_max = 128
rail_id_length_max = 64
suspense_reason_length_max = 64
game_category_length_max = 32
currency_code_length_max = 12

# Account names a client may query: far longer than any the engine composes.
account_length_max = 256

# Timestamps on the wire (google.protobuf.Timestamp): the range a datetime can hold, which is
# also the range Timestamp's own definition allows, 0001-01-01T00:00:00Z to
# 9999-12-31T23:59:59.999999999Z. Nanoseconds below a microsecond are dropped, not refused.
timestamp_seconds_min = -62_135_596_800
timestamp_seconds_max = 253_402_300_799
timestamp_nanos_max = 999_999_999

# Positions in the event log are notification ids: signed 64-bit in SQLite and PostgreSQL.
event_position_max = 2**63 - 1

# Decimal strings on the wire: digits on both sides of the point together.
amount_digits_max = 60
# The largest amount any single command may carry, in minor units of an 18-decimal asset this
# is 10^12 major units: far above any real casino transaction, far below NUMERIC's range.
amount_minor_max = 10**30

# Bonus policy: the wagering multiplier cap is configuration, this is the hard ceiling.
bonus_multiplier_max = 100
bonus_multiplier_max_default = 10
game_category_weight_percent_max = 100

# Responsible-gambling windows, in seconds. "Month" is a rolling 30 days.
window_24h_s = 24 * 3600
window_7d_s = 7 * 24 * 3600
window_30d_s = 30 * 24 * 3600
limit_increase_delay_s = 24 * 3600

# Test clocks (`ledger serve --test-clock`, ledger/service/clock.py). One advance moves the ledger's
# time at most this far, so a mistyped target cannot push a test store years ahead for good
# (its time never goes back); in all, its time stays at most this far ahead of the wall
# clock, which keeps every date the engine derives (a 24-hour delay, a 30-day window) far
# inside what a datetime holds however many advances are made.
clock_advance_s_max = 366 * 24 * 3600
clock_offset_s_max = 100 * 366 * 24 * 3600

# gRPC server.
concurrent_calls_max = 1024
message_size_max = 4 * 1024 * 1024  # bytes, both directions
group_commit_window_ms_default = 2
group_commit_queue_length_max = 8 * 1000
# Groups the server writes at once (streams disjoint; ledger/api/group_commit.py): one group's
# store round trips and commit overlap the deciding of the next. A log of one partition
# (SQLite, the single PostgreSQL log) writes one at a time whatever this says. One by
# default: more measured no gain on the 2-core benchmark machine (benchmarks/README.md,
# "Several groups in flight"), so the default keeps the behaviour measured until now.
group_commit_groups_in_flight_default = 1
group_commit_groups_in_flight_max = 16
# A group starts beside others only with at least this many commands (fewer wait for a group
# to end): below it, a group's fixed cost on the loop outweighs the overlap it buys.
group_commit_overlap_commands_min = 32
# A call of at least this many commands starts a group at once instead of waiting out the
# group window for company (an auto-batching client's frame, a SubmitBatch).
group_commit_window_skip_commands_min = 32
server_workers_default = 8
shutdown_grace_s = 10
# The Prometheus endpoint (`--metrics-listen`) serves one scrape at a time and drops a client
# silent this long, so a stalled scraper cannot hold it.
metrics_request_timeout_s = 5

# Garbage collector of long-running processes (ledger/service/runtime.py): allocations of tracked
# objects between young collections, and young (then middle) collections between older ones.
gc_young_threshold = 10_000
gc_middle_threshold = 20
gc_old_threshold = 100

# Application shell.
batch_size_max = 1000
concurrency_retry_count_max = 10
concurrency_retry_wait_ms_min = 2
concurrency_retry_wait_ms_max = 100
wallet_cache_size_max = 100_000
id_cache_size_max = 65_536  # derived stream ids (uuid5) remembered per process
# Journal ids drawn from the operating system per read, per thread (ledger/service/ids.py).
random_id_block_count = 256
# After a lost race, a wallet is read fresh before each decision for this long.
wallet_contention_s = 5
wallet_contended_count_max = 10_000
page_size_max = 1000
# New events whose canonical bytes are kept from their digest until the store maps them
# (ledger/core/chain.py): room for the events of several full groups at once; past it the
# memo is dropped and the events it held are encoded again.
encoding_memo_size_max = 8 * batch_size_max
# Reading the event log in position order (ledger/event_log.py, log_pages): every loop over
# the log (projections, audit, export, checkpoints, SubscribeEvents) pages with these.
log_page_size = 5000
log_page_size_max = 10_000  # events per page (a projection page is one transaction)
# Merging a partitioned log's partitions into one sequence (audit, export) holds one page per
# partition in memory: smaller pages, so even 256 partitions hold a few tens of megabytes.
log_merge_page_size = 500
# `ledger migrate` copies the old log into the partitioned one this many events per
# transaction (the unit a crashed copy resumes after).
migration_page_size = 2000

# Auto-batching client (ledger.client.batching.py): commands per SubmitBatch frame, how long a
# lane waits for more calls once it has one, frames one lane keeps in flight (several keep the
# server's group commit fed while earlier answers travel back), and queued calls per lane.
autobatch_commands_max = 256
autobatch_linger_ms = 1
autobatch_frames_in_flight_max = 8
autobatch_queue_length_max = 10_000

# Signed checkpoints written by `ledger serve` (ledger/api/checkpointer.py).
checkpoint_interval_s_default = 600
checkpoint_interval_s_min = 1
checkpoint_interval_s_max = 7 * 24 * 3600
# Its health (`ledger.v1.LedgerService/checkpoints`) turns NOT_SERVING once the next checkpoint
# is more than this many whole intervals past due: one failed attempt is a blip the next
# interval mends, failures past that are a fault an operator should see.
checkpoint_overdue_intervals = 2
# A checkpoint file, read whole: a partitioned log's carries every partition's frontier
# (sizes in docs/decisions.md).
checkpoint_file_size_max = 4 * 1024 * 1024
key_file_size_max = 16 * 1024  # a PEM key file, signing or verifying
# A partitioned log's partitions: its partition ids are PostgreSQL smallints. A checkpoint
# stating more is refused before its root over every partition is computed.
partition_count_max = 2**15

# Store outages. The health probe runs one short query on the event store this often, and an
# answer later than the timeout counts as none (libpq waits at least 2 s for a connection).
# The projection follower waits between attempts while the store is down, jittered and
# doubling from the minimum to the maximum; it never gives up, so no attempt count is bounded.
# A call cancelled with less than this left before its deadline is counted as timed out (the
# client's timer runs ahead of the server's copy of the deadline by the call's transit time).
deadline_slack_ms = 100
health_probe_interval_ms = 1000
health_probe_timeout_ms = 2000
projection_retry_wait_ms_min = 100
projection_retry_wait_ms_max = 5000

# RetryInfo delays the server sends with a retryable refusal (ledger/api/status.py): how long
# a client should wait before resending with the same key. A full group-commit queue drains a
# group every few milliseconds; a contended wallet's writers back off up to 100 ms each; an
# unreachable store is probed again only once a probe interval has passed.
overload_retry_delay_ms = 50
contention_retry_delay_ms = 100
store_retry_delay_ms = health_probe_interval_ms

# The web console (`ledger console`): rows per page, a statement's CSV download, how long a
# sign-in lasts, the largest form body read, how long an action waits for the views to show it.
console_page_rows = 50
console_csv_rows_max = 100_000
console_session_s_max = 8 * 3600
console_form_bytes_max = 16_384
console_search_length_max = 128
console_chart_days_max = 60
console_view_wait_s_max = 5.0
console_cookie_length_max = 4_096  # characters of a session cookie read at all
console_csv_page_rows = 1_000  # statement lines per query while a CSV streams

assert 0 < idempotency_key_length_max <= 256
assert window_24h_s < window_7d_s < window_30d_s
assert limit_increase_delay_s <= clock_advance_s_max <= clock_offset_s_max
assert bonus_multiplier_max_default <= bonus_multiplier_max
assert len(str(amount_minor_max)) <= amount_digits_max
assert concurrency_retry_count_max >= 2
assert page_size_max <= batch_size_max
assert encoding_memo_size_max >= batch_size_max
assert 0 < console_page_rows <= console_csv_rows_max
assert 0 < log_page_size <= log_page_size_max
assert gc_young_threshold > 0 and gc_middle_threshold > 0 and gc_old_threshold > 0
assert batch_size_max <= group_commit_queue_length_max
assert 1 <= group_commit_groups_in_flight_default <= group_commit_groups_in_flight_max
assert 1 <= group_commit_overlap_commands_min <= batch_size_max
assert 1 <= group_commit_window_skip_commands_min <= batch_size_max
assert 0 < autobatch_commands_max <= batch_size_max
assert autobatch_linger_ms >= 0 and autobatch_frames_in_flight_max >= 1
assert checkpoint_interval_s_min <= checkpoint_interval_s_default <= checkpoint_interval_s_max
assert checkpoint_overdue_intervals >= 1
assert 0 < metrics_request_timeout_s <= shutdown_grace_s
assert health_probe_timeout_ms >= 2000
assert health_probe_interval_ms > 0
assert 0 < projection_retry_wait_ms_min <= projection_retry_wait_ms_max
assert 0 < overload_retry_delay_ms <= contention_retry_delay_ms <= store_retry_delay_ms
# The wire's timestamp bounds are exactly datetime's range: a Timestamp inside them converts.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
assert _EPOCH + timedelta(seconds=timestamp_seconds_min) == datetime.min.replace(tzinfo=UTC)
assert _EPOCH + timedelta(seconds=timestamp_seconds_max) == datetime.max.replace(
    microsecond=0, tzinfo=UTC
)
