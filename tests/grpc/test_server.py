"""The gRPC API end to end: a real `ledger serve` process on SQLite and on PostgreSQL,
reached through the Python client over a loopback port."""

import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ledger.client import LedgerCallError
from ledger.v1 import ledger_pb2 as pb

pytestmark = pytest.mark.slow


def _player() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def _deposit_item(player: str, key: str, amount: str) -> pb.Command:
    request = pb.DepositRequest(
        idempotency_key=key,
        player_id=player,
        currency="EUR",
        amount=amount,
        rail="psp",
        rail_id="stripe",
    )
    return pb.Command(deposit=request)


def _bet_item(player: str, key: str, amount: str) -> pb.Command:
    request = pb.BetRequest(
        idempotency_key=key,
        provider="hub88",
        player_id=player,
        currency="EUR",
        amount=amount,
        round_id="r",
    )
    return pb.Command(bet=request)


def _deposit(
    client,
    player: str,
    key: str,
    amount: str,
    currency: str = "EUR",
    rail: str = "psp",
    rail_id: str = "stripe",
):
    return client.deposit(
        idempotency_key=key,
        player_id=player,
        currency=currency,
        amount=amount,
        rail=rail,
        rail_id=rail_id,
    )


def _code(call) -> tuple[grpc.StatusCode, str]:
    """The status a client call was refused with, from the client's own error."""
    with pytest.raises(LedgerCallError) as caught:
        call()
    return grpc.StatusCode[caught.value.status], caught.value.message


def test_every_command_method_applies_with_its_balances(server):
    """Each unary command method answers its outcome with the wallet's current balances."""
    p, c = _player(), server.client()
    wallet, psp = {"player_id": p, "currency": "EUR"}, {"rail": "psp", "rail_id": "stripe"}
    game = {"provider": "hub88", **wallet}
    reply = c.deposit(idempotency_key=f"{p}-d", amount="100", **psp, **wallet)
    assert reply.balances.cash == "100"
    reply = c.grant_bonus(idempotency_key=f"{p}-g", amount="10", wagering_multiplier=10, **wallet)
    assert reply.balances.bonus == "10"
    reply = c.bet(idempotency_key=f"{p}-b", amount="0.00001", round_id="r1", **game)
    assert reply.balances.cash == "99.99999"
    assert c.win(idempotency_key=f"{p}-w", bet_key=f"{p}-b", amount="2.5", **game).outcome == "OK"
    reply = c.rollback(idempotency_key=f"{p}-rb", target_key="never-seen", **game)
    assert reply.outcome == "OK"
    assert c.forfeit_bonus(idempotency_key=f"{p}-f", **wallet).balances.bonus == "0"
    reply = c.request_withdrawal(idempotency_key=f"{p}-wd", amount="10", **psp, **wallet)
    assert reply.balances.held == "10"
    reply = c.cancel_withdrawal(idempotency_key=f"{p}-wc", withdrawal_key=f"{p}-wd", **wallet)
    assert reply.balances.held == "0"
    c.request_withdrawal(idempotency_key=f"{p}-wd2", amount="5", **psp, **wallet)
    reply = c.fail_withdrawal(idempotency_key=f"{p}-wf", withdrawal_key=f"{p}-wd2", **wallet)
    assert reply.outcome == "OK"
    c.request_withdrawal(idempotency_key=f"{p}-wd3", amount="5", **psp, **wallet)
    done = c.complete_withdrawal(idempotency_key=f"{p}-wk", withdrawal_key=f"{p}-wd3", **wallet)
    assert (done.balances.cash, done.balances.held) == ("97.49999", "0")
    assert c.set_limits(idempotency_key=f"{p}-l", deposit_limit_24h="1", **wallet).outcome == "OK"
    reply = c.deposit(idempotency_key=f"{p}-d2", amount="2", **psp, **wallet)
    assert reply.outcome == "LIMIT_EXCEEDED"
    back = c.reverse_deposit(idempotency_key=f"{p}-cb", amount="100", **psp, **wallet)
    assert back.balances.cash == "-2.50001"


def test_suspense_is_held_by_a_rail_and_attributed_by_the_back_office(server):
    """A chain client parks unattributable money; the back office attributes it once."""
    p, item = _player(), f"{_player()}-tx:0"
    chain, office = server.client("chain"), server.client("backoffice")
    held = chain.hold_in_suspense(
        idempotency_key=item,
        currency="EUR",
        amount="7.5",
        rail="chain",
        rail_id="ethereum",
        reason="unknown_address",
    )
    assert (held.outcome, held.balances.cash) == ("OK", "0")
    code, _ = _code(
        lambda: chain.attribute_suspense(
            idempotency_key=f"{p}-fix", player_id=p, currency="EUR", item_key=item
        )
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    done = office.attribute_suspense(
        idempotency_key=f"{p}-fix", player_id=p, currency="EUR", item_key=item
    )
    assert (done.outcome, done.balances.cash) == ("OK", "7.5")
    again = office.return_suspense(idempotency_key=f"{p}-ret", currency="EUR", item_key=item)
    assert again.outcome == "INVALID_STATE"
    code, details = _code(
        lambda: chain.hold_in_suspense(
            idempotency_key=f"{item}-2",
            currency="EUR",
            amount="1",
            rail="chain",
            rail_id="ethereum",
            reason="no reason",
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT and details.startswith("reason:")


def test_duplicate_carries_the_original_journal_and_balance_after(server):
    """A resend is DUPLICATE with the first journal id and balance-after, current balances too."""
    p, c = _player(), server.client("payments")
    first = _deposit(c, p, f"{p}-d", "5")
    _deposit(c, p, f"{p}-d2", "7")
    again = _deposit(c, p, f"{p}-d", "5")
    assert (again.outcome, again.original_outcome) == ("DUPLICATE", "OK")
    assert again.journal_id == first.journal_id
    assert (again.balances_after.cash, again.balances.cash) == ("5", "12")
    conflict = _deposit(c, p, f"{p}-d", "6")
    assert conflict.outcome == "CONFLICT"


def test_submit_batch_answers_each_command_in_order(server):
    """A batch applies each command on its own, in order, one result each."""
    p, c = _player(), server.client()
    commands = [
        _deposit_item(p, f"{p}-d", "3"),
        _bet_item(p, f"{p}-b1", "2"),
        _bet_item(p, f"{p}-b2", "2"),
    ]
    replies = c.submit_batch(commands)
    assert [r.outcome for r in replies] == ["OK", "OK", "INSUFFICIENT_FUNDS"]
    assert replies[-1].balances.cash == "1"


def test_batch_item_errors_name_their_position_and_nothing_is_written(server):
    """A malformed command inside a batch refuses the batch, naming the item and field."""
    p, c = _player(), server.client()
    commands = [_deposit_item(p, f"{p}-d", "3"), _bet_item(p, f"{p}-b", "1e2")]
    code, details = _code(lambda: c.submit_batch(commands))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("commands[1].bet.amount:")
    assert c.get_balance(player_id=p, currency="EUR")[0].cash == "0"


def test_batch_past_the_size_bound_is_resource_exhausted(server):
    """More commands than the batch bound are refused as RESOURCE_EXHAUSTED."""
    p = _player()
    item = pb.Command(
        forfeit_bonus=pb.ForfeitBonusRequest(idempotency_key="k", player_id=p, currency="EUR")
    )
    code, _ = _code(lambda: server.client().submit_batch([item] * 1001))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": "1.0000001"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": ""}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"rail": "bank"}, "rail"),
        ({"player_id": "a:b"}, "player_id"),
    ],
)
def test_malformed_requests_are_invalid_argument_naming_the_field(server, fields, field):
    """Malformed input is INVALID_ARGUMENT whose message starts with the field's name."""
    request = {
        "idempotency_key": "k-1",
        "player_id": _player(),
        "currency": "EUR",
        "amount": "1",
        "rail": "psp",
        "rail_id": "stripe",
    }
    request.update(fields)
    code, details = _code(lambda: server.client().deposit(**request))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"{field}:")


def test_queries_return_balance_transaction_and_statement_pages(server):
    """GetBalance, GetTransaction (client and provider scope) and paged ListTransactions."""
    p, c = _player(), server.client()
    for n in range(3):
        _deposit(c, p, f"{p}-d{n}", "0.001", currency="BTC", rail="chain", rail_id="bitcoin")
    c.bet(
        idempotency_key=f"{p}-b",
        provider="hub88",
        player_id=p,
        currency="BTC",
        amount="0.0005",
        round_id="r",
    )
    balances, version = c.get_balance(player_id=p, currency="BTC")
    assert (balances.cash, version) == ("0.0025", 5)
    deposit = c.get_transaction(idempotency_key=f"{p}-d0")
    assert [e.event_type for e in deposit.entries] == ["WalletOpened", "Deposited"]
    assert {(x.account, x.amount) for x in deposit.entries[1].postings} == {
        ("chain:bitcoin:BTC", "-0.001"),
        (f"player:{p}:cash:BTC", "0.001"),
    }
    bet = c.get_transaction(idempotency_key=f"{p}-b", provider="hub88")
    assert bet.command_type == "Bet" and bet.balances_after.cash == "0.0025"
    first = c.list_transactions(player_id=p, currency="BTC", page_size=3)
    rest = c.list_transactions(
        player_id=p, currency="BTC", page_size=3, page_token=first.next_page_token
    )
    assert [e.wallet_version for e in [*first.entries, *rest.entries]] == [1, 2, 3, 4, 5]
    assert rest.next_page_token == ""
    code, _ = _code(lambda: c.get_transaction(idempotency_key="nobody-sent-this"))
    assert code is grpc.StatusCode.NOT_FOUND


def test_a_refused_bet_is_on_the_statement_with_its_outcome(server):
    """A refusal is a CommandRefused entry carrying its outcome, on GetTransaction and on the
    player's statement, and it moves nothing."""
    p, c = _player(), server.client()
    _deposit(c, p, f"{p}-d", "1")
    refused = c.bet(
        idempotency_key=f"{p}-b",
        provider="hub88",
        player_id=p,
        currency="EUR",
        amount="5",
        round_id="r",
    )
    assert refused.outcome == "INSUFFICIENT_FUNDS"
    [entry] = c.get_transaction(idempotency_key=f"{p}-b", provider="hub88").entries
    assert (entry.event_type, list(entry.postings)) == ("CommandRefused", [])
    assert entry.refused_outcome == "INSUFFICIENT_FUNDS"
    statement = c.list_transactions(player_id=p, currency="EUR").entries
    assert [e.refused_outcome for e in statement] == [None, None, "INSUFFICIENT_FUNDS"]


def test_missing_or_unknown_tokens_are_unauthenticated(server):
    """No token, a wrong token or a wrong scheme: UNAUTHENTICATED, nothing applied."""
    p = _player()
    stub_call = lambda client: client.get_balance(player_id=p, currency="EUR")  # noqa: E731
    from ledger.client import LedgerClient

    for token in ("", "not-a-token"):
        code, _ = _code(lambda token=token: stub_call(LedgerClient(server.target, token)))
        assert code is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("role", "method", "allowed"),
    [
        ("hub88", "bet", True),
        ("hub88", "deposit", False),
        ("hub88", "balance", True),
        ("hub88", "grant", False),
        ("payments", "deposit", True),
        ("payments", "bet", False),
        ("payments", "withdraw", True),
        ("chain", "deposit", True),
        ("chain", "withdraw", False),
        ("chain", "balance", False),
        ("backoffice", "grant", True),
        ("backoffice", "deposit", False),
        ("backoffice", "balance", True),
        ("auditor", "balance", True),
        ("auditor", "deposit", False),
        ("auditor", "batch", False),
        ("admin", "grant", True),
        ("admin", "bet", True),
    ],
)
def test_each_role_reaches_only_its_method_classes(server, role, method, allowed):
    """Each role against each method class: allowed calls pass, others are denied."""
    p, c = _player(), server.client(role)
    wallet, psp = {"player_id": p, "currency": "EUR"}, {"rail": "psp", "rail_id": "stripe"}
    forfeit = pb.ForfeitBonusRequest(idempotency_key=f"{p}-f", **wallet)
    calls = {
        "bet": lambda: c.bet(
            idempotency_key=f"{p}-b", provider="hub88", amount="1", round_id="r", **wallet
        ),
        "deposit": lambda: c.deposit(idempotency_key=f"{p}-d", amount="1", **wallet, **psp),
        "withdraw": lambda: c.request_withdrawal(
            idempotency_key=f"{p}-w", amount="1", **wallet, **psp
        ),
        "grant": lambda: c.grant_bonus(
            idempotency_key=f"{p}-g", amount="1", wagering_multiplier=1, **wallet
        ),
        "balance": lambda: c.get_balance(**wallet),
        "batch": lambda: c.submit_batch([pb.Command(forfeit_bonus=forfeit)]),
    }
    if allowed:
        calls[method]()
    else:
        code, _ = _code(calls[method])
        assert code is grpc.StatusCode.PERMISSION_DENIED


def test_a_game_provider_acts_only_for_its_own_provider(server):
    """A hub88 token cannot bet, win or roll back as another provider, also inside a batch."""
    p, c = _player(), server.client("hub88")
    code, _ = _code(
        lambda: c.bet(
            idempotency_key=f"{p}-b",
            provider="evolution",
            player_id=p,
            currency="EUR",
            amount="1",
            round_id="r",
        )
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    item = pb.Command(
        rollback=pb.RollbackRequest(
            idempotency_key=f"{p}-r",
            provider="evolution",
            player_id=p,
            currency="EUR",
            target_key="x",
        )
    )
    code, _ = _code(lambda: c.submit_batch([item]))
    assert code is grpc.StatusCode.PERMISSION_DENIED


def test_a_game_provider_reads_back_only_its_own_transactions(server):
    """A hub88 token reads a hub88 command's record, but not under another provider nor in the
    client scope, where cashier commands live."""
    p, c = _player(), server.client("hub88")
    _deposit(server.client(), p, f"{p}-d", "5")
    bet = c.bet(
        idempotency_key=f"{p}-b",
        provider="hub88",
        player_id=p,
        currency="EUR",
        amount="1",
        round_id="r",
    )
    assert bet.outcome == "OK"
    assert c.get_transaction(idempotency_key=f"{p}-b", provider="hub88").command_type == "Bet"
    for key, provider in ((f"{p}-b", "evolution"), (f"{p}-d", None)):
        code, _ = _code(
            lambda key=key, provider=provider: c.get_transaction(
                idempotency_key=key, provider=provider
            )
        )
        assert code is grpc.StatusCode.PERMISSION_DENIED


def test_health_and_reflection_need_no_token(server):
    """The standard health service reports SERVING and reflection lists the service, tokenless."""
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="ledger.v1.LedgerService"))
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        response = next(reflection.ServerReflectionInfo(iter([request])))
        names = {s.name for s in response.list_services_response.service}
        assert "ledger.v1.LedgerService" in names


def test_each_component_has_a_health_name_and_checkpoints_only_when_signed(server):
    """The server, the service, the store and the projections are SERVING by name; a server
    without --checkpoint-key has no checkpoints name (NOT_FOUND)."""
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in (
            "",
            "ledger.v1.LedgerService",
            "ledger.v1.LedgerService/store",
            "ledger.v1.LedgerService/projections",
        ):
            status = health.Check(health_pb2.HealthCheckRequest(service=name)).status
            assert status == health_pb2.HealthCheckResponse.SERVING, name
        unsigned = health_pb2.HealthCheckRequest(service="ledger.v1.LedgerService/checkpoints")
        with pytest.raises(grpc.RpcError) as unknown:
            health.Check(unsigned)
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
