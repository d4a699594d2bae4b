"""The console over HTTP: sign-in and roles, the pages, CSRF, cookies, escaping, actions."""

import csv
import io
import re
from urllib.parse import quote

from ledger.core import accounts
from ledger.core import commands as c
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from tests.console.conftest import (
    DEMO_PLAYER,
    SUSPENSE_AMOUNT,
    SUSPENSE_KEY,
    csrf_of,
    form_fields,
    sign_in,
)

PAGES = ("/players", f"/players/{DEMO_PLAYER}", "/accounts", "/suspense", "/withdrawals", "/status")


def _eur_player(console) -> str:
    """A demo player with a EUR wallet."""
    players = console.context.store.player_ids("", "", 100)
    for player_id in players:
        if any(w["currency"] == "EUR" for w in console.context.store.wallets_of(player_id)):
            return player_id
    raise AssertionError("the demo made no EUR wallet")


def _cash(console, player_id: str) -> int:
    return console.context.store.balance_of(accounts.player_cash(player_id, "EUR"))


def test_console_roles_sign_in_and_see_every_page(console, auth):
    """backoffice, auditor and admin tokens sign in and every page answers 200."""
    for role in ("backoffice", "auditor", "admin"):
        client = console.client()
        assert sign_in(client, auth[1][role]).headers["location"] == "/players"
        for page in PAGES:
            response = client.get(page)
            assert response.status_code == 200, (role, page, response.text[:300])
            assert f"({role}" in response.text


def test_other_roles_and_strangers_see_nothing(console, auth):
    """game_provider, payments and chain tokens, bad tokens and no session see no page."""
    for role in ("game_provider", "payments", "chain"):
        client = console.client()
        response = sign_in(client, auth[1][role])
        assert response.status_code == 403
        assert f"Role {role} may not use the console" in response.text
        for page in PAGES:
            assert client.get(page).headers["location"] == "/signin"
    client = console.client()
    assert sign_in(client, "not-a-token").status_code == 401
    for page in (*PAGES, f"/players/{DEMO_PLAYER}/statement.csv?currency=EUR"):
        response = client.get(page)
        assert response.status_code == 303 and response.headers["location"] == "/signin"
        assert DEMO_PLAYER not in response.text


def test_session_cookie_is_httponly_strict_and_signed(console, auth):
    """The session cookie is HttpOnly and SameSite=Strict, and a forged one is ignored."""
    client = console.client()
    response = sign_in(client, auth[1]["backoffice"])
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert auth[1]["backoffice"] not in cookie  # the token never leaves the sign-in form
    value = client.cookies.get("ledger_console")
    client.cookies.set(
        "ledger_console", value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    )
    assert client.get("/players").headers["location"] == "/signin"


def test_pages_carry_a_strict_content_security_policy(console, auth):
    """Every answer forbids scripts, framing and foreign form targets."""
    client = console.client()
    sign_in(client, auth[1]["auditor"])
    for page in ("/signin", *PAGES):
        policy = client.get(page).headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert "frame-ancestors 'none'" in policy


def test_players_search_and_pagination(console, auth):
    """The players page finds a demo player by id prefix and pages the rest."""
    client = console.client()
    sign_in(client, auth[1]["backoffice"])
    found = client.get("/players", params={"q": DEMO_PLAYER})
    assert re.findall(r'href="/players/([^"/]+)"', found.text) == [DEMO_PLAYER]
    everyone = client.get("/players", params={"q": "s7-"}).text
    assert len(re.findall(r'href="/players/([^"/]+)"', everyone)) == 12
    assert "No player matches." in client.get("/players", params={"q": "nobody"}).text


def test_player_page_shows_wallets_and_statement_with_csv(console, auth):
    """A player's wallet shows cash/bonus/held; the statement and its CSV list the lines."""
    client = console.client()
    sign_in(client, auth[1]["backoffice"])
    player_id = _eur_player(console)
    page = client.get(f"/players/{player_id}").text
    assert 'id="wallet-EUR"' in page and "Self-excluded until" in page
    statement = client.get(f"/players/{player_id}/statement", params={"currency": "EUR"}).text
    assert "Deposited" in statement and f"player:{player_id}:cash:EUR" in statement
    download = client.get(f"/players/{player_id}/statement.csv", params={"currency": "EUR"})
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0][:4] == ["position", "line", "event", "idempotency_key"]
    lines = console.context.store.statement(player_id, "EUR", after=0, limit=100_000)
    wallet = str(wallet_id(player_id, "EUR"))
    notes = console.context.store.notes(wallet, 0, 2**62, 100_000)
    assert len(rows) - 1 == len(lines) + len(notes)


def test_output_is_escaped(console, auth):
    """Text from a request (a search, a player id in the path) is shown as text, never markup."""
    hostile = "<img src=x onerror=alert(1)>\"'&"
    client = console.client()
    sign_in(client, auth[1]["auditor"])
    for page in (
        client.get("/players", params={"q": hostile}),
        client.get(f"/players/{quote(hostile, safe='')}"),
    ):
        assert "<img" not in page.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_attribute_suspense_moves_money_once(console, auth):
    """Attributing the held item credits the player once; the same form again is DUPLICATE."""
    client = console.client()
    sign_in(client, auth[1]["backoffice"])
    player_id = _eur_player(console)
    before = _cash(console, player_id)
    queue = client.get("/suspense").text
    [fields] = [
        f
        for f in form_fields(queue, "/actions/attribute-suspense")
        if f["item_key"] == SUSPENSE_KEY
    ]
    form = {**fields, "player_id": player_id}
    first = client.post("/actions/attribute-suspense", data=form)
    assert first.status_code == 200 and 'id="outcome" class="ok">OK<' in first.text
    assert fields["idempotency_key"] in first.text
    again = client.post("/actions/attribute-suspense", data=form)
    assert ">DUPLICATE<" in again.text
    assert _cash(console, player_id) == before + SUSPENSE_AMOUNT
    statement = client.get(f"/players/{player_id}/statement", params={"currency": "EUR"})
    assert statement.text.count(fields["idempotency_key"]) == 1  # one line on the player
    assert SUSPENSE_KEY not in client.get("/suspense").text


def test_a_form_without_the_session_csrf_token_does_nothing(console, auth):
    """A POST with a missing or foreign CSRF token is refused and moves no money."""
    client = console.client()
    sign_in(client, auth[1]["backoffice"])
    player_id = _eur_player(console)
    before = _cash(console, player_id)
    [fields] = form_fields(client.get("/suspense").text, "/actions/attribute-suspense")
    for csrf in (None, "forged"):
        form = {**fields, "player_id": player_id}
        form.pop("csrf")
        if csrf:
            form["csrf"] = csrf
        response = client.post("/actions/attribute-suspense", data=form)
        assert response.status_code == 403 and "nothing was done" in response.text
    assert _cash(console, player_id) == before


def test_auditor_pages_are_read_only(console, auth):
    """An auditor sees no action form, and a forged action POST is refused by the role table."""
    client = console.client()
    sign_in(client, auth[1]["auditor"])
    queue = client.get("/suspense").text
    assert "/actions/" not in queue and "read-only" in queue
    form = {
        "csrf": csrf_of(queue),
        "idempotency_key": "console-x",
        "currency": "EUR",
        "item_key": SUSPENSE_KEY,
        "player_id": DEMO_PLAYER,
    }
    response = client.post("/actions/attribute-suspense", data=form)
    assert response.status_code == 403 and "may not call AttributeSuspense" in response.text
    assert SUSPENSE_KEY in client.get("/suspense").text


def test_bad_action_input_names_the_field(console, auth):
    """A malformed limit is refused with the field named, and nothing is written."""
    client = console.client()
    sign_in(client, auth[1]["backoffice"])
    page = client.get(f"/players/{DEMO_PLAYER}").text
    fields = form_fields(page, "/actions/set-limits")[0]
    response = client.post("/actions/set-limits", data={**fields, "deposit_limit_24h": "1e3"})
    assert response.status_code == 400 and "deposit_limit_24h" in response.text


def test_set_limits_shows_on_the_player_page_and_statement(console, auth):
    """A limit set through the console is in force on the wallet page afterwards."""
    client = console.client()
    sign_in(client, auth[1]["backoffice"])
    player_id = _eur_player(console)
    page = client.get(f"/players/{player_id}").text
    fields = next(f for f in form_fields(page, "/actions/set-limits") if f["currency"] == "EUR")
    response = client.post("/actions/set-limits", data={**fields, "deposit_limit_24h": "25"})
    assert ">OK<" in response.text and fields["idempotency_key"] in response.text
    wallet = client.get(f"/players/{player_id}").text
    assert re.search(r"Deposit 24 h</td><td class=\"amount\">25<", wallet)
    statement = client.get(f"/players/{player_id}/statement", params={"currency": "EUR"})
    assert "LimitsChanged" in statement.text and fields["idempotency_key"] in statement.text


def test_admin_settles_a_pending_withdrawal_backoffice_cannot(console, auth, console_history):
    """Withdrawal actions follow the role table: admin completes, backoffice sees no form."""
    with Ledger(console_history) as ledger:
        result = ledger.execute(
            c.RequestWithdrawal(
                idempotency_key="wd-console",
                player_id=_eur_player(console),
                currency="EUR",
                amount=1,
                rail="psp",
                rail_id="stripe",
            )
        )
        assert result.outcome.is_success, result.outcome
    assert console.context.wait_for_views()
    backoffice = console.client()
    sign_in(backoffice, auth[1]["backoffice"])
    listed = backoffice.get("/withdrawals").text
    assert "wd-console" in listed and "/actions/complete-withdrawal" not in listed
    admin = console.client()
    sign_in(admin, auth[1]["admin"])
    forms = form_fields(admin.get("/withdrawals").text, "/actions/complete-withdrawal")
    fields = next(f for f in forms if f["withdrawal_key"] == "wd-console")
    assert ">OK<" in admin.post("/actions/complete-withdrawal", data=fields).text
    assert "wd-console" not in admin.get("/withdrawals").text
