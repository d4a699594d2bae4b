"""Conversion of wire requests into engine commands: a Timestamp outside what a datetime can
hold is refused naming its field, whichever command carries it, and the bounds convert."""

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ledger.api.convert import command_from_request, to_datetime
from ledger.core import limits
from ledger.core.errors import InvalidArgument
from ledger.core.money import CurrencyRegistry
from ledger.v1 import ledger_pb2 as pb

REGISTRY = CurrencyRegistry()
WALLET = {"idempotency_key": "k-1", "player_id": "p-1", "currency": "EUR"}
DEPOSIT = {**WALLET, "amount": "1", "rail": "psp", "rail_id": "stripe"}
SECONDS_ABOVE = Timestamp(seconds=limits.timestamp_seconds_max + 1)
SECONDS_BELOW = Timestamp(seconds=limits.timestamp_seconds_min - 1)


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        (
            "Deposit",
            pb.DepositRequest(**DEPOSIT, occurred_at=Timestamp(seconds=2**62)),
            "occurred_at",
        ),
        ("Deposit", pb.DepositRequest(**DEPOSIT, occurred_at=SECONDS_ABOVE), "occurred_at"),
        ("Deposit", pb.DepositRequest(**DEPOSIT, occurred_at=SECONDS_BELOW), "occurred_at"),
        ("Deposit", pb.DepositRequest(**DEPOSIT, occurred_at=Timestamp(nanos=-1)), "occurred_at"),
        (
            "Deposit",
            pb.DepositRequest(**DEPOSIT, occurred_at=Timestamp(nanos=10**9)),
            "occurred_at",
        ),
        (
            "GrantBonus",
            pb.GrantBonusRequest(**WALLET, amount="1", expires_at=SECONDS_ABOVE),
            "expires_at",
        ),
        (
            "SetLimits",
            pb.SetLimitsRequest(**WALLET, self_excluded_until=Timestamp(nanos=-1)),
            "self_excluded_until",
        ),
        (
            "ForfeitBonus",
            pb.ForfeitBonusRequest(**WALLET, occurred_at=SECONDS_BELOW),
            "occurred_at",
        ),
    ],
    ids=[
        "seconds-2**62",
        "seconds-above",
        "seconds-below",
        "nanos-negative",
        "nanos-above",
        "bonus-expiry",
        "self-exclusion",
        "any-command",
    ],
)
def test_out_of_range_timestamps_are_refused_naming_the_field(method, request_, field):
    """Seconds or nanos a datetime cannot hold are InvalidArgument naming the field."""
    with pytest.raises(InvalidArgument) as caught:
        command_from_request(method, request_, REGISTRY)
    assert caught.value.field == field


def test_the_timestamp_bounds_convert_to_the_first_and_last_datetime():
    """The lowest and highest accepted Timestamps are datetime's own range, in UTC."""
    lowest = pb.DepositRequest(occurred_at=Timestamp(seconds=limits.timestamp_seconds_min))
    highest = pb.DepositRequest(
        occurred_at=Timestamp(
            seconds=limits.timestamp_seconds_max,
            nanos=limits.timestamp_nanos_max,
        )
    )
    assert to_datetime(lowest, "occurred_at") == datetime.min.replace(tzinfo=UTC)
    assert to_datetime(highest, "occurred_at") == datetime.max.replace(tzinfo=UTC)


def test_an_unset_timestamp_converts_to_none():
    """A Timestamp field left unset is None, not the epoch."""
    assert to_datetime(pb.DepositRequest(), "occurred_at") is None
