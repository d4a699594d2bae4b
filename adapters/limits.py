"""Every bound the adapters' HTTP faces enforce, in one place, with the qualifier last.

The engine's own bounds live in `ledger/core/limits.py`, which adapters may not import (they
reach the engine only through `ledger.client`); these are the bounds of what a provider or a
payment processor may send an adapter.
"""

# A request body, in bytes. Hub88 wallet calls and CoinsPaid callbacks are a few hundred bytes
# to a few KiB; 64 KiB leaves room for verbose `meta` objects and long fee lists while keeping
# what an adapter buffers before it can check a signature small.
body_size_max = 64 * 1024

# The engine's `idempotency_key_length_max`, mirrored here because adapters may not import the
# core (a test keeps the two equal). Keys an adapter derives from provider ids must fit.
engine_key_length_max = 128

# Mirrored from the engine too: what a player id and a currency code may be at most.
player_id_length_max = 64
currency_code_length_max = 12
# A chain transaction id as a payment processor reports it (hex hashes are 64 or 66
# characters, base58 signatures up to 88), and the processor's name (`--processor`). The
# payments adapter's longest key is `{processor}:{txid}:suspense`.
txid_length_max = 96
# A processor's id of one callback, as the adapter's dedupe table keeps it.
callback_id_length_max = 128
processor_length_max = 16

# Operator endpoints (`/healthz`, `/metrics`). A health check of the engine gets 500 ms: a
# loopback or LAN engine answers in about a millisecond, and a probe (Kubernetes' default
# timeout is 1 s) must get its answer in time. Its result is reused for a second, so a storm
# of probes costs the engine at most one check a second per adapter.
engine_health_timeout_ms = 500
engine_health_cache_ms = 1000
# The longest wait between the adapter's attempts to reconnect to a lost engine. gRPC's own
# default grows to 120 s, so an adapter whose engine came back would go on failing wallet
# calls and /healthz for up to two minutes (measured: 8 s after a 20 s outage); an attempt a
# second costs a lost engine one refused connection a second per adapter.
engine_reconnect_backoff_max_ms = 1000
# How long a stopping adapter waits for its operator HTTP server (the chain's `--listen`) to
# finish the requests in flight.
http_shutdown_grace_s = 5
# Worker processes of one HTTP adapter (`--workers`): one per core is the useful most; the
# bound keeps a typo from forking hundreds of processes, each with its own engine channel.
http_workers_max = 64

assert 4 * 1024 <= body_size_max <= 1024 * 1024
assert processor_length_max + len(":") + txid_length_max + len(":suspense") <= (
    engine_key_length_max
)
assert 0 < engine_health_timeout_ms <= engine_health_cache_ms <= 10_000
assert 0 < http_shutdown_grace_s <= 30
assert 1 <= http_workers_max <= 1024
assert 100 <= engine_reconnect_backoff_max_ms <= 10_000
