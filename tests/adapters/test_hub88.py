"""End to end: signed Hub88 wallet calls → adapter process → gRPC engine process → sqlite store.

Each test uses its own player, funded through the engine with the admin token (a deposit is
not a provider operation), so the tests share the two processes but no balances.
"""

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters import limits
from adapters.hub88 import protocol
from ledger.core import limits as core_limits
from tests.adapters.conftest import oversized_requests, raw_exchange, self_exclude
from tests.grpc.conftest import RunningServer, start_announcing, stop_process

CURRENCY = "EUR"
FUNDING = "10"  # EUR; 1 000 000 Hub88 units.
FUNDING_UNITS = 1_000_000
OPERATOR_TOKEN = "operator-platform-token"
GAMES = '[games]\n"clt_dragonrising" = "slots"\n"evo_roulette" = "table"\n'
_TOKENS: dict[str, str] = {}  # player -> the game-session token opened for them


@dataclass
class Adapter:
    process: subprocess.Popen
    http: httpx.Client
    key: rsa.RSAPrivateKey


def _start_adapter(
    workdir: Path, engine: str, token: str, key: rsa.RSAPrivateKey, *extra: str
) -> tuple[subprocess.Popen, str]:
    (workdir / "hub88.token").write_text(token)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (workdir / "hub88-public.pem").write_bytes(pem)
    (workdir / "games.toml").write_text(GAMES)
    (workdir / "operator.token").write_text(OPERATOR_TOKEN)
    command = [
        sys.executable,
        "-m",
        "adapters.hub88",
        "--listen",
        "127.0.0.1:0",
        "--engine",
        engine,
        "--token-file",
        str(workdir / "hub88.token"),
        "--provider",
        "hub88",
        "--public-key",
        str(workdir / "hub88-public.pem"),
        "--games",
        str(workdir / "games.toml"),
        "--operator-token-file",
        str(workdir / "operator.token"),
        "--sessions-file",
        str(workdir / "sessions.sqlite3"),
        *extra,
    ]
    return start_announcing(command, workdir / "adapter.log")


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    """The provider's key pair; the adapter gets only the public half."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def adapter(engine, signing_key, tmp_path_factory) -> Iterator[Adapter]:
    """The adapter process in front of the engine, with an HTTP client pointed at it."""
    workdir = tmp_path_factory.mktemp("hub88")
    process, address = _start_adapter(workdir, engine.target, engine.tokens["hub88"], signing_key)
    with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
        yield Adapter(process, http, signing_key)
    assert stop_process(process) == 0


def _sign(key: rsa.RSAPrivateKey, body: bytes) -> str:
    signature = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def _send(adapter: Adapter, path: str, body, *, signature: str | None = None) -> httpx.Response:
    """Posts body (bytes, or an iterator of bytes to send it chunked) signed by the provider."""
    whole = body if isinstance(body, bytes) else b"".join(body.chunks)
    header = _sign(adapter.key, whole) if signature is None else signature
    content = body if isinstance(body, bytes) else iter(body.chunks)
    headers = {"Content-Type": "application/json", protocol.SIGNATURE_HEADER: header}
    return adapter.http.post(path, content=content, headers=headers)


@dataclass
class _Chunked:
    """A body to send in these pieces, with Transfer-Encoding: chunked and no Content-Length."""

    chunks: list[bytes]


def _post(adapter: Adapter, path: str, message: dict, *, signature: str | None = None) -> dict:
    response = _send(adapter, path, json.dumps(message).encode(), signature=signature)
    assert response.status_code == 200, response.text
    return response.json()


def _open_session(adapter: Adapter, player: str, bearer: str = OPERATOR_TOKEN) -> httpx.Response:
    return adapter.http.post(
        "/operator/sessions",
        json={"user": player, "currency": CURRENCY},
        headers={"Authorization": f"Bearer {bearer}"},
    )


def _funded_player(engine: RunningServer, adapter: Adapter, amount: str = FUNDING) -> str:
    """A new player with money in the engine and a game session open at the adapter."""
    player = f"player-{uuid.uuid4().hex[:12]}"
    session = _open_session(adapter, player)
    assert session.status_code == 201, session.text
    _TOKENS[player] = session.json()["token"]
    with engine.client() as admin:
        reply = admin.deposit(
            idempotency_key=f"dep-{player}",
            player_id=player,
            currency=CURRENCY,
            amount=amount,
            rail="psp",
            rail_id="test",
        )
    assert reply.outcome == "OK"
    return player


def _engine_cash(engine: RunningServer, player: str) -> str:
    with engine.client() as admin:
        balances, _ = admin.get_balance(player_id=player, currency=CURRENCY)
    return balances.cash


def _bet(player: str, transaction: str, amount: int, round_id: str = "r-1") -> dict:
    return {
        "user": player,
        "transaction_uuid": transaction,
        "request_uuid": str(uuid.uuid4()),
        "round": round_id,
        "round_closed": False,
        "currency": CURRENCY,
        "amount": amount,
        "token": _TOKENS.get(player, "no-session"),
        "game_code": "clt_dragonrising",
        "is_free": False,
    }


def _win(player: str, transaction: str, bet: str, amount: int, round_id: str = "r-1") -> dict:
    return {**_bet(player, transaction, amount, round_id), "reference_transaction_uuid": bet}


def _rollback(player: str, transaction: str, target: str, round_id: str = "r-1") -> dict:
    message = {**_bet(player, transaction, 0, round_id), "reference_transaction_uuid": target}
    del message["amount"]
    return message


def test_amounts_convert_exactly_both_ways():
    """Hub88 units become exact decimal strings and balances come back floored and flagged."""
    assert protocol.units_to_decimal(356_000) == "3.56"
    assert protocol.units_to_decimal(1) == "0.00001"
    assert protocol.units_to_decimal(200_000) == "2"
    assert protocol.decimal_to_units("3.56") == (356_000, True)
    assert protocol.decimal_to_units("0.000019") == (1, False)
    assert protocol.spendable_units("1.5", "-2") == (150_000, True)


def test_balance_reports_the_funded_amount(engine, adapter):
    """A balance call answers RS_OK with the player's money in Hub88 units, echoing ids."""
    player = _funded_player(engine, adapter)
    message = {"user": player, "request_uuid": "req-1", "token": _TOKENS[player]}
    answer = _post(adapter, "/user/balance", message)
    assert answer == {
        "status": "RS_OK",
        "request_uuid": "req-1",
        "user": player,
        "currency": CURRENCY,
        "balance": FUNDING_UNITS,
    }


def test_bet_debits_the_exact_amount(engine, adapter):
    """A bet answers RS_OK with the balance after the debit, and the engine agrees."""
    player = _funded_player(engine, adapter)
    answer = _post(adapter, "/transaction/bet", _bet(player, "bet-1", 356_000))
    assert answer["status"] == "RS_OK"
    assert answer["balance"] == FUNDING_UNITS - 356_000
    assert _engine_cash(engine, player) == "6.44"


def test_identical_replay_is_ok_without_a_second_debit(engine, adapter):
    """Resending the same bet answers RS_OK and the same balance; money moves once."""
    player = _funded_player(engine, adapter)
    message = _bet(player, "bet-replayed", 100_000)
    first = _post(adapter, "/transaction/bet", message)
    second = _post(adapter, "/transaction/bet", message)
    assert first["status"] == second["status"] == "RS_OK"
    assert first["balance"] == second["balance"] == FUNDING_UNITS - 100_000
    assert _engine_cash(engine, player) == "9"


def test_same_transaction_with_other_amount_is_a_duplicate(engine, adapter):
    """A transaction_uuid reused with a different amount is refused and nothing moves."""
    player = _funded_player(engine, adapter)
    _post(adapter, "/transaction/bet", _bet(player, "bet-reused", 100_000))
    answer = _post(adapter, "/transaction/bet", _bet(player, "bet-reused", 200_000))
    assert answer["status"] == "RS_ERROR_DUPLICATE_TRANSACTION"
    assert _engine_cash(engine, player) == "9"


def test_insufficient_funds_reports_the_unchanged_balance(engine, adapter):
    """A bet above the balance answers NOT_ENOUGH_MONEY with the actual balance."""
    player = _funded_player(engine, adapter)
    answer = _post(adapter, "/transaction/bet", _bet(player, "bet-too-big", FUNDING_UNITS + 1))
    assert answer["status"] == "RS_ERROR_NOT_ENOUGH_MONEY"
    assert answer["balance"] == FUNDING_UNITS
    assert _engine_cash(engine, player) == FUNDING


def test_win_for_an_unknown_bet_does_not_exist(engine, adapter):
    """A win referencing a bet the engine never saw answers TRANSACTION_DOES_NOT_EXIST."""
    player = _funded_player(engine, adapter)
    answer = _post(adapter, "/transaction/win", _win(player, "win-orphan", "bet-never", 50_000))
    assert answer["status"] == "RS_ERROR_TRANSACTION_DOES_NOT_EXIST"
    assert answer["balance"] == FUNDING_UNITS


def test_rollback_before_its_bet_voids_the_late_bet(engine, adapter):
    """A rollback that overtakes its bet is RS_OK, and the late bet is RS_OK but moves nothing."""
    player = _funded_player(engine, adapter)
    rolled = _post(adapter, "/transaction/rollback", _rollback(player, "rb-early", "bet-late"))
    assert rolled["status"] == "RS_OK"
    assert rolled["balance"] == FUNDING_UNITS
    late = _post(adapter, "/transaction/bet", _bet(player, "bet-late", 300_000))
    assert late["status"] == "RS_OK"
    assert late["balance"] == FUNDING_UNITS
    assert _engine_cash(engine, player) == FUNDING


def test_win_after_rollback_is_refused(engine, adapter):
    """A win for a bet that was rolled back answers TRANSACTION_ROLLED_BACK and pays nothing."""
    player = _funded_player(engine, adapter)
    _post(adapter, "/transaction/bet", _bet(player, "bet-undone", 200_000))
    rolled = _post(adapter, "/transaction/rollback", _rollback(player, "rb-1", "bet-undone"))
    assert rolled["status"] == "RS_OK"
    assert rolled["balance"] == FUNDING_UNITS
    answer = _post(adapter, "/transaction/win", _win(player, "win-late", "bet-undone", 900_000))
    assert answer["status"] == "RS_ERROR_TRANSACTION_ROLLED_BACK"
    assert _engine_cash(engine, player) == FUNDING


def test_bad_or_missing_signature_applies_nothing(engine, adapter):
    """Unsigned, forged or tampered requests answer INVALID_SIGNATURE and never reach the engine."""
    player = _funded_player(engine, adapter)
    message = _bet(player, "bet-forged", 100_000)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = _sign(other_key, json.dumps(message).encode())
    tampered = _sign(adapter.key, json.dumps({**message, "amount": 1}).encode())
    for signature in ("", "not base64!", forged, tampered):
        answer = _post(adapter, "/transaction/bet", message, signature=signature)
        assert answer["status"] == "RS_ERROR_INVALID_SIGNATURE"
        assert answer["request_uuid"] == message["request_uuid"]
    assert _engine_cash(engine, player) == FUNDING
    # Nothing was recorded under the key either: the properly signed bet now applies once.
    assert _post(adapter, "/transaction/bet", message)["balance"] == FUNDING_UNITS - 100_000


def test_sub_cent_amounts_are_exact(engine, adapter):
    """One Hub88 unit (0.00001) bets and wins without rounding, down to the engine's store."""
    player = _funded_player(engine, adapter, "0.00002")
    bet = _post(adapter, "/transaction/bet", _bet(player, "bet-tiny", 1, "r-tiny"))
    assert (bet["status"], bet["balance"]) == ("RS_OK", 1)
    win = _win(player, "win-tiny", "bet-tiny", 3, "r-tiny") | {"round_closed": True}
    paid = _post(adapter, "/transaction/win", win)
    assert (paid["status"], paid["balance"]) == ("RS_OK", 4)
    assert _engine_cash(engine, player) == "0.00004"


def test_win_on_a_settled_round_is_a_terminal_duplicate(engine, adapter):
    """A second win after the round closed answers DUPLICATE_TRANSACTION and pays nothing."""
    player = _funded_player(engine, adapter)
    _post(adapter, "/transaction/bet", _bet(player, "bet-s", 100_000, "r-s"))
    closing = _win(player, "win-s1", "bet-s", 0, "r-s") | {"round_closed": True}
    assert _post(adapter, "/transaction/win", closing)["status"] == "RS_OK"
    extra = _post(adapter, "/transaction/win", _win(player, "win-s2", "bet-s", 500_000, "r-s"))
    assert extra["status"] == "RS_ERROR_DUPLICATE_TRANSACTION"
    assert _engine_cash(engine, player) == "9"


def test_self_excluded_player_is_disabled_for_bets_only(engine, adapter):
    """A blocked player's bet answers USER_DISABLED, while the win for an earlier bet pays."""
    player = _funded_player(engine, adapter)
    _post(adapter, "/transaction/bet", _bet(player, "bet-before", 100_000))
    self_exclude(engine, player, CURRENCY)
    refused = _post(adapter, "/transaction/bet", _bet(player, "bet-after", 100_000))
    assert refused["status"] == "RS_ERROR_USER_DISABLED"
    paid = _post(adapter, "/transaction/win", _win(player, "win-1", "bet-before", 250_000))
    assert (paid["status"], paid["balance"]) == ("RS_OK", FUNDING_UNITS + 150_000)


def test_bets_and_balances_need_a_live_session_of_their_user(engine, adapter):
    """No token, an unknown one or another user's is INVALID_TOKEN, and nothing is debited."""
    player, other = _funded_player(engine, adapter), _funded_player(engine, adapter)
    for token in (None, "forged", _TOKENS[other]):
        bet = _bet(player, f"bet-{token}", 100_000) | {"token": token}
        assert _post(adapter, "/transaction/bet", bet)["status"] == "RS_ERROR_INVALID_TOKEN"
        balance = {"user": player, "request_uuid": "r", "token": token}
        answer = _post(adapter, "/user/balance", balance)
        assert (answer["status"], answer["balance"]) == ("RS_ERROR_INVALID_TOKEN", None)
    assert _engine_cash(engine, player) == FUNDING


def test_a_superseded_session_expires_bets_but_not_wins_or_rollbacks(engine, adapter):
    """After a newer session, the old token's bet is TOKEN_EXPIRED; its win and rollback pay."""
    player = _funded_player(engine, adapter)
    old = _TOKENS[player]
    _post(adapter, "/transaction/bet", _bet(player, "bet-a", 100_000, "r-a"))
    _post(adapter, "/transaction/bet", _bet(player, "bet-b", 100_000, "r-b"))
    _TOKENS[player] = _open_session(adapter, player).json()["token"]
    stale = _bet(player, "bet-c", 100_000) | {"token": old}
    assert _post(adapter, "/transaction/bet", stale)["status"] == "RS_ERROR_TOKEN_EXPIRED"
    win = _win(player, "win-a", "bet-a", 300_000, "r-a") | {"token": old}
    assert _post(adapter, "/transaction/win", win)["status"] == "RS_OK"
    rollback = _rollback(player, "rb-b", "bet-b", "r-b") | {"token": old}
    assert _post(adapter, "/transaction/rollback", rollback)["status"] == "RS_OK"
    assert _engine_cash(engine, player) == "12"  # 10 - 1 - 1 + 3 + 1


def test_a_bet_on_a_game_outside_the_catalogue_is_invalid_game(engine, adapter):
    """Unknown or missing game codes are INVALID_GAME; a table game from the catalogue bets."""
    player = _funded_player(engine, adapter)
    for code in ("unknown_game", None):
        bet = _bet(player, f"bet-{code}", 100_000) | {"game_code": code}
        assert _post(adapter, "/transaction/bet", bet)["status"] == "RS_ERROR_INVALID_GAME"
    table = _bet(player, "bet-table", 100_000) | {"game_code": "evo_roulette"}
    assert _post(adapter, "/transaction/bet", table)["status"] == "RS_OK"
    assert _engine_cash(engine, player) == "9"


def test_only_the_operator_platform_opens_sessions(adapter):
    """Opening a session without the operator's bearer token is 401 and opens nothing."""
    assert _open_session(adapter, "p-x", bearer="wrong").status_code == 401
    response = adapter.http.post("/operator/sessions", json={"user": "p-x", "currency": "EUR"})
    assert response.status_code == 401
    assert _open_session(adapter, "p-x").status_code == 201


def test_malformed_bodies_are_syntax_or_type_errors(engine, adapter):
    """Broken JSON or a missing field is WRONG_SYNTAX; a string amount is WRONG_TYPES."""
    player = _funded_player(engine, adapter)
    body = b"{not json"
    headers = {protocol.SIGNATURE_HEADER: _sign(adapter.key, body)}
    broken = adapter.http.post("/transaction/bet", content=body, headers=headers).json()
    assert broken["status"] == "RS_ERROR_WRONG_SYNTAX"
    missing = {k: v for k, v in _bet(player, "bet-m", 1).items() if k != "transaction_uuid"}
    assert _post(adapter, "/transaction/bet", missing)["status"] == "RS_ERROR_WRONG_SYNTAX"
    typed = _bet(player, "bet-t", 1) | {"amount": "1"}
    assert _post(adapter, "/transaction/bet", typed)["status"] == "RS_ERROR_WRONG_TYPES"
    assert _engine_cash(engine, player) == FUNDING


def test_a_signed_win_replayed_at_bet_and_rollback_is_refused_and_the_win_still_pays(
    engine, adapter
):
    """A win's signed body sent to /transaction/bet (a 30 EUR debit) and to
    /transaction/rollback (a refund of the stake) is WRONG_SYNTAX and moves nothing; the win
    then pays once at its own endpoint, and the balance is exact."""
    player = _funded_player(engine, adapter, "50")
    _post(adapter, "/transaction/bet", _bet(player, "bet-w", 100_000, "r-w"))
    win = _win(player, "win-replayed", "bet-w", 3_000_000, "r-w")
    for path in ("/transaction/bet", "/transaction/rollback"):
        answer = _post(adapter, path, win)
        assert answer["status"] == "RS_ERROR_WRONG_SYNTAX", path
        assert answer["request_uuid"] == win["request_uuid"]
        assert _engine_cash(engine, player) == "49"
    paid = _post(adapter, "/transaction/win", win)
    assert (paid["status"], paid["balance"]) == ("RS_OK", 7_900_000)
    assert _post(adapter, "/transaction/win", win)["balance"] == 7_900_000
    assert _engine_cash(engine, player) == "79"


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("bet", "/transaction/win"),
        ("bet", "/transaction/rollback"),
        ("bet", "/user/balance"),
        ("rollback", "/transaction/bet"),
        ("rollback", "/transaction/win"),
    ],
)
def test_a_body_is_refused_at_any_endpoint_but_its_own(engine, adapter, kind, path):
    """A signed bet or rollback body sent to another endpoint is WRONG_SYNTAX; nothing moves."""
    player = _funded_player(engine, adapter)
    placed = f"bet-{player}"
    _post(adapter, "/transaction/bet", _bet(player, placed, 100_000))
    bodies = {
        "bet": _bet(player, f"bet-elsewhere-{player}", 200_000),
        "rollback": _rollback(player, f"rb-elsewhere-{player}", placed),
    }
    assert _post(adapter, path, bodies[kind])["status"] == "RS_ERROR_WRONG_SYNTAX"
    assert _engine_cash(engine, player) == "9"


def test_an_unknown_field_is_wrong_syntax_and_documented_ones_are_accepted(engine, adapter):
    """A bet with a field Hub88 does not define is WRONG_SYNTAX and debits nothing; a bet with
    every optional field Hub88 documents debits normally."""
    player = _funded_player(engine, adapter)
    unknown = _bet(player, "bet-unknown", 100_000) | {"bonus_multiplier": 2}
    assert _post(adapter, "/transaction/bet", unknown)["status"] == "RS_ERROR_WRONG_SYNTAX"
    assert _engine_cash(engine, player) == FUNDING
    documented = _bet(player, "bet-documented", 100_000) | {
        "supplier_user": "sup-1",
        "game_id": 42,
        "supplier_transaction_id": "s-1",
        "reward_uuid": None,
        "bet": "red",
        "meta": {"odds": "2.5"},
        "is_aggregated": False,
        "is_supplier_promo": False,
    }
    assert _post(adapter, "/transaction/bet", documented)["status"] == "RS_OK"
    assert _engine_cash(engine, player) == "9"


@pytest.mark.parametrize("flag", ["is_free", "is_supplier_promo"])
def test_a_free_round_bet_is_refused_not_charged(engine, adapter, flag):
    """A bet flagged as a free round or a supplier promotion is WRONG_TYPES and debits nothing."""
    player = _funded_player(engine, adapter)
    free = _bet(player, f"bet-{flag}-{player}", 100_000) | {flag: True}
    assert _post(adapter, "/transaction/bet", free)["status"] == "RS_ERROR_WRONG_TYPES"
    assert _engine_cash(engine, player) == FUNDING


def test_a_repeated_key_is_wrong_syntax_not_a_guess(engine, adapter):
    """A signed bet naming `amount` twice (or any key twice, nested too) is WRONG_SYNTAX and
    debits nothing, where a JSON parser would silently keep one of the two."""
    player = _funded_player(engine, adapter)
    body = json.dumps(_bet(player, f"bet-twice-{player}", 100)).encode()
    for extra in (b', "amount": 900000}', b', "meta": {"a": 1, "a": 2}}'):
        answer = _send(adapter, "/transaction/bet", body[:-1] + extra)
        assert (answer.status_code, answer.json()["status"]) == (200, "RS_ERROR_WRONG_SYNTAX")
    assert _engine_cash(engine, player) == FUNDING


def test_json_nested_past_the_parsers_depth_is_wrong_syntax(engine, adapter):
    """A signed body nested deeper than the JSON parser goes is WRONG_SYNTAX, not UNKNOWN."""
    player = _funded_player(engine, adapter)
    deep = b'{"meta": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    answer = _send(adapter, "/transaction/bet", deep)
    assert (answer.status_code, answer.json()["status"]) == (200, "RS_ERROR_WRONG_SYNTAX")
    assert _engine_cash(engine, player) == FUNDING


def _engine_record(engine: RunningServer, key: str):
    with engine.client() as admin:
        return admin.get_transaction(idempotency_key=key, provider="hub88")


def test_engine_keys_are_scoped_by_kind(engine, adapter):
    """A bet and a win reusing one transaction_uuid are two engine transactions, keyed
    `bet:{id}` and `win:{id}`, so neither is taken for a replay or a conflict of the other."""
    player = _funded_player(engine, adapter)
    shared = f"tx-{player}"
    _post(adapter, "/transaction/bet", _bet(player, shared, 100_000, "r-k"))
    paid = _post(adapter, "/transaction/win", _win(player, shared, shared, 250_000, "r-k"))
    assert (paid["status"], paid["balance"]) == ("RS_OK", FUNDING_UNITS + 150_000)
    assert _engine_record(engine, f"bet:{shared}").command_type == "Bet"
    assert _engine_record(engine, f"win:{shared}").command_type == "Win"
    assert _engine_cash(engine, player) == "11.5"


def test_a_rollback_finds_a_win_by_its_id_and_takes_it_back(engine, adapter):
    """A rollback naming a paid win (not a bet) reverses that win, once, with exact balances."""
    player = _funded_player(engine, adapter)
    bet, win = f"bet-{player}", f"win-{player}"
    _post(adapter, "/transaction/bet", _bet(player, bet, 100_000, "r-rw"))
    _post(adapter, "/transaction/win", _win(player, win, bet, 400_000, "r-rw"))
    assert _engine_cash(engine, player) == "13"
    rollback = _rollback(player, f"rb-{player}", win, "r-rw")
    undone = _post(adapter, "/transaction/rollback", rollback)
    assert (undone["status"], undone["balance"]) == ("RS_OK", FUNDING_UNITS - 100_000)
    assert _engine_record(engine, f"rollback:rb-{player}").command_type == "Rollback"
    assert _post(adapter, "/transaction/rollback", rollback)["balance"] == FUNDING_UNITS - 100_000
    assert _engine_cash(engine, player) == "9"


def test_the_longest_accepted_id_still_fits_the_engine_key(engine, adapter):
    """Ids up to the length whose `rollback:` key fits the engine's bound are accepted; one
    character more is WRONG_TYPES, and the bound mirrors the engine's own."""
    assert limits.engine_key_length_max == core_limits.idempotency_key_length_max
    player = _funded_player(engine, adapter)
    longest = "b" * protocol.TRANSACTION_UUID_LENGTH_MAX
    assert _post(adapter, "/transaction/bet", _bet(player, longest, 100_000))["status"] == "RS_OK"
    rollback = _rollback(player, "r" * protocol.TRANSACTION_UUID_LENGTH_MAX, longest)
    assert _post(adapter, "/transaction/rollback", rollback)["status"] == "RS_OK"
    too_long = _bet(player, "c" * (protocol.TRANSACTION_UUID_LENGTH_MAX + 1), 100_000)
    assert _post(adapter, "/transaction/bet", too_long)["status"] == "RS_ERROR_WRONG_TYPES"
    assert _engine_cash(engine, player) == FUNDING


def test_openapi_lists_the_four_wallet_paths(adapter):
    """The adapter publishes an OpenAPI description naming every wallet endpoint."""
    paths = adapter.http.get("/openapi.json").json()["paths"]
    expected = {"/user/balance", "/transaction/bet", "/transaction/win", "/transaction/rollback"}
    assert expected <= set(paths)
    schema = paths["/transaction/bet"]["post"]["requestBody"]["content"]["application/json"]
    assert schema["schema"]["$ref"].endswith("/BetRequest")


def _address(adapter: Adapter) -> str:
    return f"{adapter.http.base_url.host}:{adapter.http.base_url.port}"


@pytest.mark.parametrize("kind", ["declared", "chunked"])
def test_an_oversized_body_is_413_before_it_is_read_or_verified(adapter, kind):
    """A body over the bound is 413 with the connection closed: a declared length before any
    of the body is sent, a chunked body as soon as it passes the bound, neither signed."""
    request = oversized_requests("/transaction/bet", limits.body_size_max)[kind]
    answer = raw_exchange(_address(adapter), request)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"\r\nconnection: close\r\n" in answer.lower()


def test_a_body_at_the_bound_is_applied_and_one_byte_more_is_413(engine, adapter):
    """A signed bet padded to exactly the bound debits; the same bet one byte longer is 413."""
    player = _funded_player(engine, adapter)
    body = json.dumps(_bet(player, "bet-at-bound", 100_000)).encode()
    padded = body + b" " * (limits.body_size_max - len(body))
    refused = _send(adapter, "/transaction/bet", padded + b" ")
    assert refused.status_code == 413
    assert _engine_cash(engine, player) == FUNDING
    applied = _send(adapter, "/transaction/bet", padded)
    assert (applied.status_code, applied.json()["status"]) == (200, "RS_OK")
    assert applied.json()["balance"] == FUNDING_UNITS - 100_000


def test_a_chunked_body_within_the_bound_is_applied(engine, adapter):
    """A signed bet sent chunked, without a Content-Length, is counted and applied normally."""
    player = _funded_player(engine, adapter)
    body = json.dumps(_bet(player, "bet-chunked", 100_000)).encode()
    answer = _send(adapter, "/transaction/bet", _Chunked([body[:40], body[40:]]))
    assert (answer.status_code, answer.json()["status"]) == (200, "RS_OK")
    assert _engine_cash(engine, player) == "9"


def test_unreachable_engine_answers_unknown(signing_key, tmp_path):
    """With no engine behind it the adapter answers RS_ERROR_UNKNOWN, so the provider retries."""
    import socket

    with socket.socket() as probe:  # A port nothing listens on once the probe closes.
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    process, address = _start_adapter(
        tmp_path, dead, "token", signing_key, "--engine-retries", "2", "--engine-timeout-s", "1"
    )
    try:
        with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
            adapter = Adapter(process, http, signing_key)
            _TOKENS["nobody"] = _open_session(adapter, "nobody").json()["token"]
            answer = _post(adapter, "/transaction/bet", _bet("nobody", "bet-lost", 100))
        assert answer["status"] == "RS_ERROR_UNKNOWN"
        assert answer["balance"] is None
    finally:
        assert stop_process(process) == 0


def _children(pid: int) -> list[int]:
    """The live processes whose parent is pid (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_processes_share_one_port_and_the_sessions(engine, signing_key, tmp_path):
    """With --workers 2 two processes serve one port: a session opened through one
    connection is live on every other, its superseding session expires it on every other,
    bets apply exactly once each, and SIGTERM stops both workers and exits 0."""
    process, address = _start_adapter(
        tmp_path, engine.target, engine.tokens["hub88"], signing_key, "--workers", "2"
    )
    try:
        assert len(_children(process.pid)) == 2
        with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
            adapter = Adapter(process, http, signing_key)
            player = _funded_player(engine, adapter)
        old_token = _TOKENS[player]
        for n in range(8):  # a connection each, so the kernel spreads them over the workers
            with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
                adapter = Adapter(process, http, signing_key)
                answer = _post(
                    adapter, "/transaction/bet", _bet(player, f"bet-{player}-{n}", 100_000)
                )
                assert answer["status"] == "RS_OK", answer
        assert _engine_cash(engine, player) == "2"
        with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
            assert _open_session(Adapter(process, http, signing_key), player).status_code == 201
        for n in range(4):
            with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
                adapter = Adapter(process, http, signing_key)
                stale = _bet(player, f"bet-stale-{player}-{n}", 100_000) | {"token": old_token}
                answer = _post(adapter, "/transaction/bet", stale)
                assert answer["status"] == "RS_ERROR_TOKEN_EXPIRED", answer
        workers = _children(process.pid)
    finally:
        assert stop_process(process) == 0
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_balances_convert_like_exact_fractions():
    """Engine decimals become the same floored units, with the same exactness flag, as exact
    rational arithmetic gives, for plain decimals and any other form alike."""
    from fractions import Fraction

    texts = ["0", "3.56", "-2", "-0.000019", "0.000019", "12.345678", "1E+3", "7.10", "99999999"]
    for cash in texts:
        scaled = Fraction(cash) * protocol.UNITS_PER_MAJOR
        assert protocol.decimal_to_units(cash) == (
            scaled.numerator // scaled.denominator,
            scaled.denominator == 1,
        )
        for bonus in texts:
            total = (max(Fraction(cash), 0) + max(Fraction(bonus), 0)) * protocol.UNITS_PER_MAJOR
            expected = (total.numerator // total.denominator, total.denominator == 1)
            assert protocol.spendable_units(cash, bonus) == expected, (cash, bonus)
