"""Read models and the event stream over gRPC: any account's balance, the trial balance,
and SubscribeEvents from a position, following new events live; auditors only read; a
stream ended by its deadline or by the client is logged with that status."""

import hashlib
import json
import threading
import time
import uuid

import grpc
import pytest

from ledger.client import InvalidRequest, LedgerCallError, PermissionDenied
from ledger.core.partition import partition_of
from ledger.service.wallets import wallet_id
from ledger.v1 import ledger_pb2 as pb
from tests.grpc.conftest import log_lines

pytestmark = pytest.mark.slow
CATCH_UP_TIMEOUT_S = 10
LOG_TIMEOUT_S = 10


def _wait_for_views(client, position: int) -> None:
    """The follower projects in the background: wait until it holds `position`."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while client.get_trial_balance().as_of_position < position:
        assert time.monotonic() < deadline, "projections did not catch up"
        time.sleep(0.05)


def _play(client, player: str) -> None:
    wallet = {"player_id": player, "currency": "EUR"}
    client.deposit(
        idempotency_key=f"{player}-d", amount="20", rail="psp", rail_id="adyen", **wallet
    )
    client.bet(idempotency_key=f"{player}-b", provider="hub88", amount="5", round_id="r", **wallet)
    client.win(
        idempotency_key=f"{player}-w",
        provider="hub88",
        bet_key=f"{player}-b",
        amount="1.25",
        round_closed=True,
        **wallet,
    )


def _log_size(client) -> int:
    """The sum of the log's partition heads: what the views' as_of_position reaches."""
    return sum(client.get_log_heads())


def _partition(client, player: str) -> int:
    """The log partition that holds the player's EUR wallet."""
    return partition_of(wallet_id(player, "EUR"), len(client.get_log_heads()))


def _take(stream, idle_s: float = 0.5):
    """Events from a live stream until it goes quiet for idle_s."""
    events, done = [], threading.Event()

    def read():
        try:
            for event in stream:
                events.append(event)
        except LedgerCallError:
            pass
        done.set()

    threading.Thread(target=read, daemon=True).start()
    seen = -1
    while seen != len(events):
        seen = len(events)
        time.sleep(idle_s)
    stream.cancel()
    done.wait(timeout=5)
    return list(events)


def test_any_account_balance_and_the_trial_balance_come_from_the_views(server):
    """House and PSP accounts have balances; every currency's trial balance is balanced."""
    c, auditor = server.client(), server.client("auditor")
    before_games = auditor.get_account_balance(account="house:games:hub88:EUR").balance
    _play(c, f"rm-{uuid.uuid4().hex[:8]}")
    _wait_for_views(auditor, _log_size(auditor))
    after_games = auditor.get_account_balance(account="house:games:hub88:EUR").balance
    from decimal import Decimal

    assert Decimal(after_games) - Decimal(before_games) == Decimal("3.75")
    trial = auditor.get_trial_balance()
    assert trial.currencies and all(totals.balanced for totals in trial.currencies)
    never = auditor.get_account_balance(account="house:bonus:TON")
    assert never.balance == "0"


def test_a_malformed_account_is_invalid_argument(server):
    """An account that is not a ledger account name is refused, naming the field."""
    with pytest.raises(InvalidRequest) as caught:
        server.client("auditor").get_account_balance(account="nonsense")
    assert caught.value.field == "account"
    assert caught.value.message.startswith("account:")


def test_the_event_stream_carries_verifiable_stored_bytes(server):
    """Each streamed event's digest is SHA-256 of its payload, and streams chain."""
    player, auditor = f"st-{uuid.uuid4().hex[:8]}", server.client("auditor")
    _play(server.client(), player)
    partition = _partition(auditor, player)
    events = _take(auditor.subscribe_events(after_position=0, partition=partition))
    assert {event.partition for event in events} == {partition}
    heads: dict[str, str] = {}
    for event in events:
        assert hashlib.sha256(event.payload).hexdigest() == event.digest
        body = json.loads(event.payload)
        if "previous_hash" in body:  # wallet events chain; idempotency records do not
            if event.stream_id in heads:
                assert body["previous_hash"] == heads[event.stream_id]
            heads[event.stream_id] = event.digest
    positions = [event.position for event in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


def test_a_subscriber_receives_new_events_live(server):
    """After catching up, the stream delivers an event written later, without polling by us."""
    auditor, player = server.client("auditor"), f"live-{uuid.uuid4().hex[:8]}"
    partition = _partition(auditor, player)
    last = auditor.get_log_heads()[partition]
    stream = auditor.subscribe_events(after_position=last, partition=partition)
    threading.Timer(
        0.3,
        lambda: server.client().deposit(
            idempotency_key=f"{player}-d",
            player_id=player,
            currency="EUR",
            amount="1",
            rail="psp",
            rail_id="adyen",
        ),
    ).start()
    events = _take(stream, idle_s=1.0)
    assert [e.event_type for e in events][:2] == ["WalletOpened", "Deposited"]
    assert events[0].position > last


def test_the_log_heads_count_the_partitions_and_a_stream_follows_one_of_them(server):
    """GetLogHeads gives each partition's newest position; a partition past the count is
    refused, naming the field."""
    auditor = server.client("auditor")
    _play(server.client(), f"lh-{uuid.uuid4().hex[:8]}")
    heads = auditor.get_log_heads()
    assert heads and sum(heads) > 0 and all(head >= 0 for head in heads)
    stream = auditor.subscribe_events(after_position=0, partition=len(heads))
    with pytest.raises(InvalidRequest) as caught:
        next(iter(stream))
    assert caught.value.field == "partition"


def test_subscribing_needs_a_reading_role(server):
    """A game provider's token may not follow the event stream."""
    stream = server.client("hub88").subscribe_events(after_position=0)
    with pytest.raises(PermissionDenied) as caught:
        next(iter(stream))
    assert isinstance(caught.value.__cause__, grpc.RpcError)


def _logged_call(server, request_id: str) -> dict:
    """The canonical log line of the call with request_id, once the server has written it."""
    deadline = time.monotonic() + LOG_TIMEOUT_S
    while True:
        lines = [
            line
            for line in log_lines(server)
            if line.get("event") == "call" and line.get("request_id") == request_id
        ]
        if lines:
            [line] = lines
            return line
        assert time.monotonic() < deadline, f"no log line for {request_id}"
        time.sleep(0.05)


def _stream(client, request_id: str, partition: int = 0, **options):
    metadata = (*client.metadata, ("x-request-id", request_id))
    request = pb.SubscribeEventsRequest(partition=partition)
    return client.stub.SubscribeEvents(request, metadata=metadata, **options)


def test_a_stream_past_its_deadline_or_cancelled_is_logged_with_that_status(server):
    """The call's log line says DEADLINE_EXCEEDED or CANCELLED, as the client saw it, not OK."""
    auditor, player = server.client("auditor"), f"dl-{uuid.uuid4().hex[:8]}"
    _play(server.client(), player)  # something to stream
    timed_out, cancelled = f"deadline-{uuid.uuid4().hex}", f"cancel-{uuid.uuid4().hex}"
    with pytest.raises(grpc.RpcError) as caught:
        for _ in _stream(auditor, timed_out, _partition(auditor, player), timeout=1.0):
            pass
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    stream = _stream(auditor, cancelled, _partition(auditor, player), timeout=30)
    next(iter(stream))
    stream.cancel()
    line = _logged_call(server, timed_out)
    assert line["method"] == "SubscribeEvents" and line["status"] == "DEADLINE_EXCEEDED"
    assert line["events"] > 0
    assert _logged_call(server, cancelled)["status"] == "CANCELLED"
