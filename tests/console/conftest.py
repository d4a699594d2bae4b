"""A demo history with one unattributed deposit in suspense, an auth config with a client of
every role, and the console over them (in process, through Starlette's test client)."""

import re
import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledger.api.auth import ROLES, load_auth_config, token_sha256
from ledger.api.server import Projections
from ledger.console.app import create_app
from ledger.console.context import ConsoleContext
from ledger.core import commands as c
from ledger.service.application import Ledger
from tests.projections.conftest import make_history

SUSPENSE_KEY = "unmatched-psp-1"
SUSPENSE_AMOUNT = 12_500_000  # 12.5 EUR at six decimals
DEMO_PLAYER = "s7-p00003"


def hold_in_suspense(database_url: str, key: str = SUSPENSE_KEY) -> None:
    """A payment with no reference: parked in suspense until the back office attributes it."""
    with Ledger(database_url) as ledger:
        result = ledger.execute(
            c.HoldInSuspense(
                idempotency_key=key,
                currency="EUR",
                amount=SUSPENSE_AMOUNT,
                rail="psp",
                rail_id="stripe",
                reason="no_reference",
            )
        )
        assert result.outcome.is_success, result.outcome


def write_auth_config(directory: Path) -> tuple[Path, dict[str, str]]:
    """An auth config with one client per role; returns it and each role's token."""
    tokens = {role: secrets.token_urlsafe(32) for role in ROLES}
    tables = []
    for role, token in tokens.items():
        provider = 'provider = "hub88"\n' if role == "game_provider" else ""
        tables.append(
            f'[[clients]]\nname = "{role}-client"\nrole = "{role}"\n{provider}'
            f'token_sha256 = "{token_sha256(token)}"\n'
        )
    path = directory / "clients.toml"
    path.write_text("\n".join(tables))
    return path, tokens


@pytest.fixture
def console_history(tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/console.sqlite3"
    make_history(url, players=12, rounds=4)
    hold_in_suspense(url)
    return url


@pytest.fixture
def auth(tmp_path) -> tuple[Path, dict[str, str]]:
    return write_auth_config(tmp_path)


class Console:
    """The console app over a store, with its projections followed as `ledger console` does."""

    def __init__(self, database_url: str, auth_path: Path) -> None:
        self.ledger = Ledger(database_url, currency_scales="check", store_kind="either")
        self.projections = Projections(self.ledger, database_url, on_lag=lambda lag: None)
        self.context = ConsoleContext(
            self.ledger, self.projections.reads, load_auth_config(auth_path)
        )
        self.projections.follower.start()
        assert self.context.wait_for_views()
        self.app = create_app(self.context)

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://127.0.0.1", follow_redirects=False)

    def close(self) -> None:
        self.projections.close()
        self.ledger.close()


@pytest.fixture
def console(console_history, auth):
    console = Console(console_history, auth[0])
    yield console
    console.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def sign_in(client: TestClient, token: str):
    """Signs in with a token through the form; returns the sign-in POST's response."""
    page = client.get("/signin")
    return client.post("/signin", data={"csrf": csrf_of(page.text), "token": token})


def form_fields(html: str, action: str) -> list[dict[str, str]]:
    """The hidden fields of every form posting to `action`, in page order."""
    forms = re.findall(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html, flags=re.S
    )
    return [
        dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', body)) for body in forms
    ]
