"""Each currency's scale is part of the store: recorded at the first start, checked at every
later one.

Amounts are stored as integers of minor units, which mean nothing without their scale: a
configuration that said EUR has 2 decimals on a store written at 6 would show 44.066859 EUR
as 440668.59 EUR. So the first start records every configured currency's scale as a
`CurrenciesRecorded` event, and a start whose configuration changes a recorded scale or
drops a recorded currency is refused, naming the currency and both values. A configuration
that adds a currency appends the extended set. The record is an event, so it is inside the
audited, checkpointed history like everything else. A store that already holds events but no
record (written before scales were recorded) is refused too: its amounts' scale is unknown,
and recording whatever the configuration says would make a wrong scale permanent; the
operator checks it and adopts the configuration's scales once, explicitly.
"""

from collections.abc import Iterable
from datetime import datetime
from uuid import uuid5

from ledger.core import limits
from ledger.core.errors import InvalidArgument
from ledger.core.events import CurrenciesRecorded, CurrencyScale
from ledger.core.money import Currency
from ledger.event_log import AppendConflict, EventLog
from ledger.service.wallets import LEDGER_NAMESPACE

CURRENCIES_STREAM_ID = uuid5(LEDGER_NAMESPACE, "currencies")


def recorded_scales(log: EventLog) -> tuple[int, dict]:
    """The newest recorded set: (its version, scale by currency code); (0, {}) if none."""
    stored = log.read_stream(CURRENCIES_STREAM_ID, newest_first=True, limit=1)
    if not stored:
        return 0, {}
    event = stored[0][0]
    assert isinstance(event, CurrenciesRecorded), type(event)
    return event.originator_version, {c.code: c.scale for c in event.currencies}


def scale_problems(recorded: dict[str, int], configured: Iterable[Currency]) -> list[str]:
    """How the configuration disagrees with the recorded scales, one line per currency."""
    scales = {currency.code: currency.scale for currency in configured}
    problems = []
    for code, scale in sorted(recorded.items()):
        if code not in scales:
            problems.append(f"{code} is in the store (scale {scale}) but not in the configuration")
        elif scales[code] != scale:
            problems.append(
                f"{code} has scale {scales[code]} in the configuration but {scale} in the store"
            )
    return problems


def reconcile_currencies(
    log: EventLog,
    configured: Iterable[Currency],
    now: datetime,
    *,
    record: bool = True,
    adopt: bool = False,
) -> None:
    """Refuses a configuration that contradicts the store; records what it adds (if record).
    A store with events but no recorded scales is refused unless adopt says the operator
    checked that the configuration's scales are those its amounts were written in.

    Two processes starting at once may both append the same version: the loser reads
    again and checks against what the winner recorded.
    """
    configured = tuple(configured)
    for _ in range(limits.concurrency_retry_count_max):
        version, recorded = recorded_scales(log)
        problems = scale_problems(recorded, configured)
        if problems:
            raise InvalidArgument("config.currencies", "; ".join(problems))
        wanted = recorded | {currency.code: currency.scale for currency in configured}
        if not record or wanted == recorded:
            return
        if version == 0 and not adopt and any(log.heads()):
            raise InvalidArgument("config.currencies", _UNRECORDED)
        try:
            log.append([_recorded(version + 1, wanted, now)])
            return
        except AppendConflict:
            continue
    raise InvalidArgument("config.currencies", "the store's currencies kept changing during start")


_UNRECORDED = (
    "the store holds events but no recorded currency scales (it was written before scales "
    "were recorded): check that the configuration's scales are those its amounts were written "
    "in, then start once with --adopt-currency-scales to record them"
)


def _recorded(version: int, scales: dict[str, int], now: datetime) -> CurrenciesRecorded:
    return CurrenciesRecorded(
        originator_id=CURRENCIES_STREAM_ID,
        originator_version=version,
        recorded_at=now,
        currencies=tuple(CurrencyScale(code, scales[code]) for code in sorted(scales)),
    )
