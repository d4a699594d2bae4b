"""End to end: signed CoinsPaid-style callbacks → adapter process → gRPC engine → sqlite store.

Each test uses its own player and its own txids, so the tests share the two processes (and
the adapter's state file) but no balances. Balances are read with the admin token.
"""

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters import limits
from adapters.payments import protocol
from ledger.core import limits as core_limits
from tests.adapters.conftest import oversized_requests, postings, raw_exchange, self_exclude
from tests.grpc.conftest import RunningServer, start_announcing, stop_process

CURRENCY = "BTC"
SECRET = b"coinspaid-test-secret"


@dataclass
class Adapter:
    process: subprocess.Popen
    http: httpx.Client
    log: Path | None = None


def _start_adapter(workdir: Path, engine: str, token: str, *extra: str):
    (workdir / "payments.token").write_text(token)
    (workdir / "coinspaid.secret").write_bytes(SECRET + b"\n")
    command = [
        sys.executable,
        "-m",
        "adapters.payments",
        "--listen",
        "127.0.0.1:0",
        "--engine",
        engine,
        "--token-file",
        str(workdir / "payments.token"),
        "--secret-file",
        str(workdir / "coinspaid.secret"),
        "--state-file",
        str(workdir / "payments.sqlite3"),
        "--processor",
        "coinspaid",
        *extra,
    ]
    return start_announcing(command, workdir / "adapter.log")


@pytest.fixture(scope="module")
def adapter(engine, tmp_path_factory) -> Iterator[Adapter]:
    """The payments adapter process in front of the engine, with an HTTP client for it."""
    workdir = tmp_path_factory.mktemp("payments")
    process, address = _start_adapter(workdir, engine.target, engine.tokens["payments"])
    with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
        yield Adapter(process, http, workdir / "adapter.log")
    assert stop_process(process) == 0


def _send(adapter: Adapter, message: dict | bytes, signature: str | None = None):
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    header = hmac.new(SECRET, body, hashlib.sha512).hexdigest() if signature is None else signature
    headers = {"Content-Type": "application/json", protocol.SIGNATURE_HEADER: header}
    return adapter.http.post("/callbacks", content=body, headers=headers)


def _post(adapter: Adapter, message: dict) -> dict:
    response = _send(adapter, message)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ok"] is True
    return answer


def _deposit(player: str, txid: str, status: str, amount: str = "0.01000000", callback=None):
    return {
        "id": callback or f"cb-{uuid.uuid4().hex[:10]}",
        "type": "deposit",
        "crypto_address": {
            "id": 1,
            "currency": CURRENCY,
            "address": "bc1q-test",
            "foreign_id": player,
            "tag": None,
        },
        "currency_sent": {"currency": CURRENCY, "amount": amount},
        "currency_received": {"currency": CURRENCY, "amount": amount, "amount_minus_fee": amount},
        "transactions": [
            {
                "id": 7,
                "currency": CURRENCY,
                "transaction_type": "blockchain",
                "type": "deposit",
                "txid": txid,
                "confirmations": 1,
            }
        ],
        "fees": [],
        "error": "",
        "status": status,
    }


def _withdrawal(player: str, withdrawal_key: str, status: str, callback=None) -> dict:
    return {
        "id": callback or f"cb-{uuid.uuid4().hex[:10]}",
        "type": "withdrawal",
        "foreign_id": withdrawal_key,
        "end_user_reference": player,
        "currency_sent": {"currency": CURRENCY, "amount": "0.5"},
        "currency_received": {"currency": CURRENCY, "amount": "0.5"},
        "transactions": [{"txid": f"out-{withdrawal_key}", "confirmations": 0}],
        "status": status,
    }


def _player() -> str:
    return f"player-{uuid.uuid4().hex[:12]}"


def _balances(engine: RunningServer, player: str):
    with engine.client() as admin:
        balances, _ = admin.get_balance(player_id=player, currency=CURRENCY)
    return balances


def _cash(engine: RunningServer, player: str) -> str:
    return _balances(engine, player).cash


def test_signature_is_hex_hmac_sha512_of_the_raw_body():
    """The verifier accepts exactly the hex HMAC-SHA512 of the raw bytes, in any hex case."""
    body = b'{"id": 1}'
    good = hmac.new(SECRET, body, hashlib.sha512).hexdigest()
    assert protocol.signature_is_valid(SECRET, body, good)
    assert protocol.signature_is_valid(SECRET, body, good.upper())
    assert not protocol.signature_is_valid(SECRET, body + b" ", good)
    assert not protocol.signature_is_valid(b"other", body, good)
    assert not protocol.signature_is_valid(SECRET, body, None)


def test_the_adapters_id_bounds_mirror_the_engines():
    """The player-id and currency-code bounds the adapter checks are the engine's own."""
    assert limits.player_id_length_max == core_limits.player_id_length_max
    assert limits.currency_code_length_max == core_limits.currency_code_length_max


def test_pending_then_confirmed_credits_once_with_the_exact_amount(engine, adapter):
    """`not_confirmed` records a pending deposit only; `confirmed` credits the exact amount."""
    player, txid = _player(), uuid.uuid4().hex
    pending = _post(adapter, _deposit(player, txid, "not_confirmed", "0.12345678", "cb-p1"))
    assert (pending["outcome"], pending["deposit_status"]) == ("PENDING", "pending")
    assert _cash(engine, player) == "0"
    confirmed = _post(adapter, _deposit(player, txid, "confirmed", "0.12345678", "cb-p1"))
    assert (confirmed["outcome"], confirmed["deposit_status"]) == ("OK", "credited")
    assert confirmed["key"] == f"coinspaid:{txid}"
    assert _cash(engine, player) == "0.12345678"


def test_replays_and_a_second_callback_id_for_the_txid_credit_once(engine, adapter):
    """A replayed `confirmed` and another callback id reporting the same txid move nothing."""
    player, txid = _player(), uuid.uuid4().hex
    message = _deposit(player, txid, "confirmed", "0.5")
    assert _post(adapter, message)["outcome"] == "OK"
    assert _post(adapter, message)["outcome"] == "REPLAY"
    other = _post(adapter, _deposit(player, txid, "confirmed", "0.5"))
    assert (other["outcome"], other["deposit_status"]) == ("UNCHANGED", "credited")
    assert _cash(engine, player) == "0.5"


def test_confirmed_before_not_confirmed_credits_once(engine, adapter):
    """An early `confirmed` credits; the late `not_confirmed` changes nothing."""
    player, txid = _player(), uuid.uuid4().hex
    assert _post(adapter, _deposit(player, txid, "confirmed", "0.2", "cb-o"))["outcome"] == "OK"
    late = _post(adapter, _deposit(player, txid, "not_confirmed", "0.2", "cb-o"))
    assert (late["outcome"], late["deposit_status"]) == ("UNCHANGED", "credited")
    assert _cash(engine, player) == "0.2"


def test_engine_credit_without_local_commit_is_not_repeated(engine, adapter):
    """A credit the engine applied before a crash lost the local commit is DUPLICATE on retry."""
    player, txid = _player(), uuid.uuid4().hex
    # The engine call of a first delivery succeeded, then the adapter died before committing.
    with engine.client() as admin:
        first = admin.deposit(
            idempotency_key=f"coinspaid:{txid}",
            player_id=player,
            currency=CURRENCY,
            amount="0.7",
            rail="psp",
            rail_id="coinspaid",
        )
    assert first.outcome == "OK"
    retried = _post(adapter, _deposit(player, txid, "confirmed", "0.70000000"))
    assert (retried["outcome"], retried["deposit_status"]) == ("DUPLICATE", "credited")
    assert _cash(engine, player) == "0.7"


def test_cancelled_before_confirmation_credits_nothing(engine, adapter):
    """A deposit cancelled while pending fails, and a later `confirmed` does not credit it."""
    player, txid = _player(), uuid.uuid4().hex
    _post(adapter, _deposit(player, txid, "not_confirmed", "0.3"))
    cancelled = _post(adapter, _deposit(player, txid, "cancelled", "0.3"))
    assert (cancelled["outcome"], cancelled["deposit_status"]) == ("FAILED", "failed")
    late = _post(adapter, _deposit(player, txid, "confirmed", "0.3"))
    assert late["deposit_status"] == "failed"
    assert _cash(engine, player) == "0"


def test_chargeback_after_confirmation_reverses_once(engine, adapter):
    """A chargeback reverses the credited amount once, leaving cash negative after a bet."""
    player, txid = _player(), uuid.uuid4().hex
    _post(adapter, _deposit(player, txid, "confirmed", "1"))
    with engine.client() as admin:
        bet = admin.bet(
            idempotency_key=f"bet-{player}",
            provider="hub88",
            player_id=player,
            currency=CURRENCY,
            amount="0.6",
            round_id="r-1",
        )
    assert bet.outcome == "OK"
    chargeback = _post(adapter, _deposit(player, txid, "chargeback", "1"))
    assert (chargeback["outcome"], chargeback["deposit_status"]) == ("OK", "reversed")
    assert _cash(engine, player) == "-0.6"
    again = _post(adapter, _deposit(player, txid, "cancelled", "1"))
    assert (again["outcome"], again["deposit_status"]) == ("UNCHANGED", "reversed")
    assert _cash(engine, player) == "-0.6"


def test_a_refused_deposit_is_held_in_suspense_and_returned_on_chargeback(engine, adapter):
    """A self-excluded player's confirmed deposit goes to suspense, not to the player, and a
    later chargeback returns it to the processor once."""
    player, txid = _player(), uuid.uuid4().hex
    self_exclude(engine, player, CURRENCY)
    refused = _post(adapter, _deposit(player, txid, "confirmed", "0.25"))
    assert (refused["outcome"], refused["deposit_status"]) == ("PLAYER_BLOCKED", "refused")
    assert _cash(engine, player) == "0"
    key = f"coinspaid:{txid}"
    assert postings(engine, f"{key}:suspense") == {
        "psp:coinspaid:BTC": "-0.25",
        "suspense:BTC": "0.25",
    }
    back = _post(adapter, _deposit(player, txid, "chargeback", "0.25"))
    assert (back["outcome"], back["deposit_status"]) == ("OK", "reversed")
    assert postings(engine, f"{key}:reversal") == {
        "suspense:BTC": "-0.25",
        "psp:coinspaid:BTC": "0.25",
    }
    again = _post(adapter, _deposit(player, txid, "cancelled", "0.25"))
    assert again["outcome"] == "UNCHANGED"


def test_bad_or_missing_signature_is_401_and_applies_nothing(engine, adapter):
    """Unsigned, forged or tampered callbacks are 401; the signed one then credits once."""
    player, txid = _player(), uuid.uuid4().hex
    message = _deposit(player, txid, "confirmed", "0.4", "cb-sig")
    body = json.dumps(message).encode()
    forged = hmac.new(b"wrong", body, hashlib.sha512).hexdigest()
    tampered_body = json.dumps({**message, "status": "cancelled"}).encode()
    tampered = hmac.new(SECRET, tampered_body, hashlib.sha512).hexdigest()
    for signature in ("", "zz", forged, tampered):
        response = _send(adapter, body, signature=signature)
        assert response.status_code == 401, response.text
    assert _cash(engine, player) == "0"
    # Nothing was recorded under the callback id either: the genuine delivery still applies.
    assert _post(adapter, message)["outcome"] == "OK"
    assert _cash(engine, player) == "0.4"


def _fund_and_request(engine: RunningServer, adapter: Adapter, player: str, key: str) -> None:
    _post(adapter, _deposit(player, uuid.uuid4().hex, "confirmed", "0.5"))
    with engine.client() as admin:
        reply = admin.request_withdrawal(
            idempotency_key=key,
            player_id=player,
            currency=CURRENCY,
            amount="0.5",
            rail="psp",
            rail_id="coinspaid",
        )
    assert reply.outcome == "OK"
    held = _balances(engine, player)
    assert (held.cash, held.held) == ("0", "0.5")


def test_withdrawal_confirmed_completes_it_once(engine, adapter):
    """A `confirmed` withdrawal callback pays the hold out; replays change nothing."""
    player, key = _player(), f"wd-{uuid.uuid4().hex[:10]}"
    _fund_and_request(engine, adapter, player, key)
    message = _withdrawal(player, key, "confirmed")
    assert _post(adapter, message)["outcome"] == "OK"
    assert _post(adapter, message)["outcome"] == "REPLAY"
    assert _post(adapter, _withdrawal(player, key, "confirmed"))["outcome"] == "DUPLICATE"
    after = _balances(engine, player)
    assert (after.cash, after.held) == ("0", "0")


def test_withdrawal_declined_returns_the_hold_to_cash(engine, adapter):
    """A `declined` withdrawal callback fails it, and the held amount is cash again."""
    player, key = _player(), f"wd-{uuid.uuid4().hex[:10]}"
    _fund_and_request(engine, adapter, player, key)
    assert _post(adapter, _withdrawal(player, key, "pending"))["outcome"] == "PENDING"
    assert _post(adapter, _withdrawal(player, key, "declined"))["outcome"] == "OK"
    after = _balances(engine, player)
    assert (after.cash, after.held) == ("0.5", "0")


def test_malformed_bodies_are_400_naming_the_field(engine, adapter):
    """Broken JSON, a missing nested field or a float amount is a 400 that names the field."""
    player, txid = _player(), uuid.uuid4().hex
    broken = _send(adapter, b"{not json")
    assert (broken.status_code, broken.json()["error"]) == (400, "body: is not valid JSON")
    missing = _deposit(player, txid, "confirmed")
    del missing["crypto_address"]["foreign_id"]
    answer = _send(adapter, missing)
    assert answer.status_code == 400
    assert "crypto_address.foreign_id" in answer.json()["error"]
    floating = _deposit(player, txid, "confirmed")
    floating["currency_received"]["amount"] = 0.1
    assert "currency_received.amount" in _send(adapter, floating).json()["error"]
    no_tx = _deposit(player, txid, "confirmed") | {"transactions": []}
    assert "transactions.0.txid" in _send(adapter, no_tx).json()["error"]
    assert _cash(engine, player) == "0"


def _refusals(adapter: Adapter) -> list[dict]:
    """The adapter's `payments_callback_refused` log lines so far."""
    lines = adapter.log.read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    return [event for event in events if event["event"] == "payments_callback_refused"]


@pytest.mark.parametrize("amount", ["1e3", "+1", " 1", "1.000000001", "NaN", "", "1.", "0"])
def test_amounts_are_read_with_the_engines_exact_rules(engine, adapter, amount):
    """A signed `confirmed` whose amount the engine's parser refuses (an exponent, a sign, a
    blank, a ninth BTC decimal, NaN, nothing, zero) is a logged 400 that credits nothing and
    records nothing: the corrected callback with the same id and status then credits."""
    player, txid, callback = _player(), uuid.uuid4().hex, f"cb-{uuid.uuid4().hex[:10]}"
    response = _send(adapter, _deposit(player, txid, "confirmed", amount, callback))
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("currency_received.amount: ")
    assert _cash(engine, player) == "0"
    assert _refusals(adapter)[-1]["callback"] == {
        "type": "deposit",
        "id": callback,
        "status": "confirmed",
    }
    corrected = _post(adapter, _deposit(player, txid, "confirmed", "1.00000000", callback))
    assert (corrected["outcome"], corrected["deposit_status"]) == ("OK", "credited")
    assert _cash(engine, player) == "1"


def test_a_pending_deposit_with_a_bad_amount_is_refused_too(engine, adapter):
    """A `not_confirmed` callback is held to the same amount rules: `1e3` is a 400 and no
    pending deposit is recorded that a later `confirmed` could build on."""
    player, txid = _player(), uuid.uuid4().hex
    assert _send(adapter, _deposit(player, txid, "not_confirmed", "1e3")).status_code == 400
    confirmed = _post(adapter, _deposit(player, txid, "confirmed", "0.001"))
    assert (confirmed["outcome"], confirmed["deposit_status"]) == ("OK", "credited")
    assert _cash(engine, player) == "0.001"


def test_an_unknown_currency_is_refused_naming_it(engine, adapter):
    """A currency the adapter was not configured with is a 400 naming the currency field."""
    message = _deposit(_player(), uuid.uuid4().hex, "confirmed")
    message["currency_received"]["currency"] = "DOGE"
    response = _send(adapter, message)
    assert response.status_code == 400
    assert response.json()["error"] == "currency_received.currency: unknown currency 'DOGE'"


@pytest.mark.parametrize(
    ("where", "field"),
    [((), "bonus"), (("crypto_address",), "colour"), (("transactions", 0), "memo")],
)
def test_an_undocumented_field_is_refused_and_logged(engine, adapter, where, field):
    """A signed callback with a field CoinsPaid does not document, at the top or nested, is a
    logged 400 naming it, and credits nothing."""
    player, txid = _player(), uuid.uuid4().hex
    message = _deposit(player, txid, "confirmed", "0.2")
    target = message
    for step in where:
        target = target[step]
    target[field] = "x"
    response = _send(adapter, message)
    path = ".".join(map(str, (*where, field)))
    assert (response.status_code, response.json()["error"]) == (
        400,
        f"{path}: is not a field of this callback",
    )
    assert _refusals(adapter)[-1]["field"] == path
    assert _cash(engine, player) == "0"


def test_the_documented_sample_callback_is_accepted(engine, adapter):
    """CoinsPaid's documented deposit shape (a numeric id, end_user_reference, riskscore,
    confirmations as text, several fees, amount_minus_fee) passes the strict schema and
    credits `amount`."""
    player, txid = _player(), uuid.uuid4().hex
    message = _deposit(player, txid, "confirmed", "0.01000000", uuid.uuid4().int % 10**12)
    message["end_user_reference"] = player
    message["transactions"][0] |= {
        "address": "bc1q-test",
        "tag": None,
        "amount": "0.01",
        "riskscore": "0.5",
        "confirmations": "9",
    }
    message["fees"] = [
        {"type": "transfer", "currency": CURRENCY, "amount": "0.000105"},
        {"type": "deposit", "currency": CURRENCY, "amount": "0.0005"},
    ]
    assert _post(adapter, message)["outcome"] == "OK"
    assert _cash(engine, player) == "0.01"


def test_a_txid_with_a_key_separator_is_refused(engine, adapter):
    """A txid containing ":" is a 400: as `T:reversal` it would credit a deposit under the
    reversal key of deposit `T`, and that chargeback could then never be applied."""
    player, txid = _player(), uuid.uuid4().hex
    _post(adapter, _deposit(player, txid, "confirmed", "0.5"))
    forged = _send(adapter, _deposit(player, f"{txid}:reversal", "confirmed", "0.5"))
    assert forged.status_code == 400
    assert forged.json()["error"].startswith("transactions.0.txid: ")
    back = _post(adapter, _deposit(player, txid, "chargeback", "0.5"))
    assert (back["outcome"], back["deposit_status"]) == ("OK", "reversed")
    assert _cash(engine, player) == "0"


def test_a_deposit_callback_id_does_not_hide_a_withdrawal_callback(engine, adapter):
    """Callback ids are deduplicated per type: a withdrawal callback reusing a deposit
    callback's id and status completes its withdrawal instead of being taken for a replay."""
    player, key = _player(), f"wd-{uuid.uuid4().hex[:10]}"
    shared = f"cb-{uuid.uuid4().hex[:10]}"
    _post(adapter, _deposit(_player(), uuid.uuid4().hex, "confirmed", "0.1", shared))
    _fund_and_request(engine, adapter, player, key)
    assert _post(adapter, _withdrawal(player, key, "confirmed", shared))["outcome"] == "OK"
    after = _balances(engine, player)
    assert (after.cash, after.held) == ("0", "0")


def test_a_repeated_key_is_refused_not_a_guess(engine, adapter):
    """A signed callback naming `amount` twice in one object is a 400 that credits nothing,
    where a JSON parser would silently keep one of the two."""
    player, txid = _player(), uuid.uuid4().hex
    body = json.dumps(_deposit(player, txid, "confirmed", "0.01")).encode()
    twice = body.replace(b'"amount_minus_fee"', b'"amount": "100", "amount_minus_fee"')
    response = _send(adapter, twice)
    assert (response.status_code, response.json()["error"]) == (
        400,
        "body: repeats the key 'amount'",
    )
    assert _cash(engine, player) == "0"


def test_a_deposit_listing_two_chain_transactions_is_refused(engine, adapter):
    """A deposit callback reporting two chain transactions is a 400: it is keyed by one txid,
    so the second payment would be neither credited nor deduplicated."""
    player = _player()
    message = _deposit(player, uuid.uuid4().hex, "confirmed", "0.02")
    message["transactions"].append({**message["transactions"][0], "txid": uuid.uuid4().hex})
    response = _send(adapter, message)
    assert (response.status_code, response.json()["error"]) == (
        400,
        "transactions: lists 2, a deposit pays one",
    )
    assert _cash(engine, player) == "0"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"type": ["deposit"]}, "type: unsupported value \"['deposit']\""),
        ({"type": "deposit_exchange"}, "type: unsupported value 'deposit_exchange'"),
        ({"id": ""}, "id: must be an integer or 1 to 128 characters"),
        ({"id": True}, "id: must be an integer or 1 to 128 characters"),
    ],
)
def test_a_callback_without_a_usable_type_or_id_is_400(engine, adapter, change, error):
    """A type that is not text or not handled, or an empty or boolean callback id (which
    could not be deduplicated), is a 400 naming the field; nothing is credited."""
    player = _player()
    response = _send(adapter, _deposit(player, uuid.uuid4().hex, "confirmed") | change)
    assert (response.status_code, response.json()["error"]) == (400, error)
    assert _cash(engine, player) == "0"


def test_json_nested_past_the_parsers_depth_is_400(engine, adapter):
    """A signed body nested deeper than the JSON parser goes is a 400, not a server error."""
    response = _send(adapter, b"[" * 20_000 + b"]" * 20_000)
    assert (response.status_code, response.json()["error"]) == (400, "body: is nested too deeply")


@pytest.mark.parametrize("kind", ["declared", "chunked"])
def test_an_oversized_body_is_413_before_it_is_read_or_verified(adapter, kind):
    """A body over the bound is 413 with the connection closed: a declared length before any
    of the body is sent, a chunked body as soon as it passes the bound, neither signed."""
    request = oversized_requests("/callbacks", limits.body_size_max)[kind]
    address = f"{adapter.http.base_url.host}:{adapter.http.base_url.port}"
    answer = raw_exchange(address, request)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"\r\nconnection: close\r\n" in answer.lower()


def test_a_callback_at_the_bound_credits_and_one_byte_more_is_413(engine, adapter):
    """A signed callback padded to exactly the bound credits; one byte longer is 413 and
    records nothing, so the same callback id still applies."""
    player, txid = _player(), uuid.uuid4().hex
    body = json.dumps(_deposit(player, txid, "confirmed", "0.3")).encode()
    padded = body + b" " * (limits.body_size_max - len(body))
    assert _send(adapter, padded + b" ").status_code == 413
    assert _cash(engine, player) == "0"
    response = _send(adapter, padded)
    assert (response.status_code, response.json()["outcome"]) == (200, "OK")
    assert _cash(engine, player) == "0.3"


def test_configured_currencies_replace_the_defaults(engine, tmp_path):
    """`--currency BTC:2` makes the adapter read BTC with 2 decimals (0.001 is refused, 0.01
    credits) and refuse the default currencies it no longer lists."""
    process, address = _start_adapter(
        tmp_path, engine.target, engine.tokens["payments"], "--currency", "BTC:2"
    )
    try:
        with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
            adapter, player = Adapter(process, http), _player()
            refused = _send(adapter, _deposit(player, uuid.uuid4().hex, "confirmed", "0.001"))
            assert (
                refused.json()["error"] == "currency_received.amount: has 3 decimals, BTC allows 2"
            )
            assert _post(adapter, _deposit(player, uuid.uuid4().hex, "confirmed", "0.01"))
            eth = _deposit(player, uuid.uuid4().hex, "confirmed", "1")
            eth["currency_received"]["currency"] = "ETH"
            assert _send(adapter, eth).json()["error"].startswith("currency_received.currency:")
        assert _cash(engine, player) == "0.01"
    finally:
        assert stop_process(process) == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--processor", "coins:paid"),
        ("--processor", "p" * 17),
        ("--currency", "btc:8"),
        ("--currency", "BTC:19"),
        ("--currency", "BTC"),
    ],
)
def test_the_command_line_refuses_names_that_would_break_keys_or_amounts(tmp_path, option, value):
    """A processor name with ":" or too long for its keys, or a currency not CODE:SCALE, stops
    the adapter at startup with a usage error naming the option."""
    (tmp_path / "token").write_text("t")
    (tmp_path / "secret").write_text("s")
    command = [
        sys.executable,
        "-m",
        "adapters.payments",
        "--engine",
        "127.0.0.1:1",
        "--token-file",
        str(tmp_path / "token"),
        "--secret-file",
        str(tmp_path / "secret"),
        "--state-file",
        str(tmp_path / "state.sqlite3"),
        option,
        value,
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert f"Invalid value for '{option}'" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_unreachable_engine_answers_503(tmp_path):
    """With no engine behind it the adapter answers 503, so the processor retries."""
    with socket.socket() as probe:  # A port nothing listens on once the probe closes.
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    process, address = _start_adapter(
        tmp_path, dead, "token", "--engine-retries", "2", "--engine-timeout-s", "1"
    )
    try:
        with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
            response = _send(Adapter(process, http), _deposit("p", "tx-lost", "confirmed"))
        assert response.status_code == 503, response.text
    finally:
        assert stop_process(process) == 0
