"""Malformed requests against a real `ledger serve` on SQLite and PostgreSQL: every method of
LedgerService answers bytes it cannot decode with INVALID_ARGUMENT naming the request type,
never UNKNOWN with a Python class name, and only once the caller is authenticated; a
Timestamp a datetime cannot hold is INVALID_ARGUMENT naming its field, while the bounds
themselves are stored, listed and projected on both stores."""

import time
import uuid
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ledger.client import InvalidRequest
from ledger.v1 import ledger_pb2 as pb
from tests.grpc.raw import METHODS, SERVICE, raw_call

pytestmark = pytest.mark.slow

GARBAGE = b"\xff\xff\xff\xff"
VIEWS_TIMEOUT_S = 10


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.name)
def test_undecodable_bytes_are_invalid_argument_naming_the_request_type(server, channel, method):
    """Bytes that are no encoding of the request are INVALID_ARGUMENT on every method."""
    code, details = raw_call(channel, method, GARBAGE, server.tokens["admin"])
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == f"request: cannot be decoded as {method.input_type.full_name}"


@pytest.mark.parametrize("name", ["Bet", "GetTrialBalance", "SubscribeEvents"])
def test_an_anonymous_caller_sending_garbage_is_unauthenticated(server, channel, name):
    """Authentication comes before decoding: no token and garbage bytes give UNAUTHENTICATED."""
    code, _ = raw_call(channel, SERVICE.methods_by_name[name], GARBAGE, token=None)
    assert code is grpc.StatusCode.UNAUTHENTICATED


def _player() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def test_timestamps_at_the_bounds_are_stored_listed_and_projected(server):
    """Commands stamped 0001-01-01 and 9999-12-31 apply, list back and reach the views."""
    client, p = server.client(), _player()
    wallet = {"player_id": p, "currency": "EUR"}
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    for n, moment in enumerate((first, last)):
        reply = client.deposit(
            idempotency_key=f"{p}-d{n}",
            amount="1",
            rail="psp",
            rail_id="stripe",
            occurred_at=moment,
            **wallet,
        )
        assert reply.outcome == "OK"
    bonus = client.grant_bonus(
        idempotency_key=f"{p}-g",
        amount="1",
        wagering_multiplier=1,
        expires_at=last,
        occurred_at=first,
        **wallet,
    )
    assert bonus.outcome == "OK"
    limits_set = client.set_limits(idempotency_key=f"{p}-l", self_excluded_until=last, **wallet)
    assert limits_set.outcome == "OK"
    entries = client.list_transactions(**wallet).entries
    stamped = [(e.event_type, e.occurred_at) for e in entries if e.occurred_at is not None]
    assert stamped == [
        ("WalletOpened", first),
        ("Deposited", first),
        ("Deposited", last),
        ("BonusGranted", first),
    ]
    _wait_for_balance(server.client("auditor"), f"player:{p}:cash:EUR", "2")


def _wait_for_balance(client, account: str, balance: str) -> None:
    """The views follow the log in the background: wait until the account shows balance."""
    deadline = time.monotonic() + VIEWS_TIMEOUT_S
    while client.get_account_balance(account=account).balance != balance:
        assert time.monotonic() < deadline, "the views did not catch up"
        time.sleep(0.05)


def test_an_out_of_range_timestamp_in_a_batch_names_its_entry(server):
    """Inside SubmitBatch the refusal carries the entry's prefix and nothing is applied."""
    p, client = _player(), server.client()
    deposit = pb.DepositRequest(
        idempotency_key=f"{p}-d",
        player_id=p,
        currency="EUR",
        amount="1",
        rail="psp",
        rail_id="stripe",
    )
    late = pb.BetRequest(
        idempotency_key=f"{p}-b",
        provider="hub88",
        player_id=p,
        currency="EUR",
        amount="1",
        round_id="r",
        occurred_at=Timestamp(nanos=-1),
    )
    with pytest.raises(InvalidRequest) as caught:
        client.submit_batch([pb.Command(deposit=deposit), pb.Command(bet=late)])
    assert caught.value.field == "commands[1].bet.occurred_at"
    assert caught.value.message.startswith("commands[1].bet.occurred_at:")
    assert client.get_balance(player_id=p, currency="EUR")[1] == 0


@pytest.mark.parametrize(
    ("name", "request_", "field"),
    [
        (
            "ListTransactions",
            pb.ListTransactionsRequest(player_id="p-1", currency="EUR", page_token="\u00b2"),
            "page_token",
        ),
        (
            "ListTransactions",
            pb.ListTransactionsRequest(player_id="p-1", currency="EUR", page_token="\u0661"),
            "page_token",
        ),
        ("SubscribeEvents", pb.SubscribeEventsRequest(after_position=2**64 - 1), "after_position"),
        ("GetAccountBalance", pb.GetAccountBalanceRequest(account="a\x00:b:EUR"), "account"),
        ("GetTransaction", pb.GetTransactionRequest(idempotency_key="nul\x00"), "idempotency_key"),
        (
            "GetTransaction",
            pb.GetTransactionRequest(idempotency_key="k", provider="a\x00"),
            "provider",
        ),
    ],
    ids=[
        "superscript-digit",
        "arabic-digit",
        "position-past-64-bits",
        "account-nul",
        "key-nul",
        "provider-nul",
    ],
)
def test_malformed_query_fields_are_invalid_argument_naming_the_field(
    server, channel, name, request_, field
):
    """Query fields no store could answer for are refused naming the field, never INTERNAL."""
    method = SERVICE.methods_by_name[name]
    payload = request_.SerializeToString()
    code, details = raw_call(channel, method, payload, server.tokens["admin"])
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"{field}:")
