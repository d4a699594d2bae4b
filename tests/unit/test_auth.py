"""Auth: bearer tokens known only by hash, the role permission table, provider binding, the
auth config file and the first-start admin token."""

import itertools
import re
import stat
from pathlib import Path

import pytest

from ledger.api.auth import (
    METHODS,
    ROLES,
    Authenticator,
    ClientConfig,
    PermissionDenied,
    Principal,
    Unauthenticated,
    auth_config_from_toml,
    auth_config_size_max,
    authorize,
    bootstrap_admin,
    load_auth_config,
    token_sha256,
)
from ledger.core.errors import InvalidArgument

ROOT = Path(__file__).resolve().parents[2]

# The permission matrix of docs/contract.md (Roles), written out independently of the module's
# table so that a change to either one fails this test.
EXPECTED_ALLOWED = {
    "game_provider": {"Bet", "Win", "Rollback", "GetBalance", "GetTransaction", "SubmitBatch"},
    "payments": {
        "Deposit",
        "ReverseDeposit",
        "RequestWithdrawal",
        "CompleteWithdrawal",
        "CancelWithdrawal",
        "FailWithdrawal",
        "HoldInSuspense",
        "ReturnSuspense",
        "GetBalance",
        "GetTransaction",
        "SubmitBatch",
    },
    "chain": {
        "Deposit",
        "ReverseDeposit",
        "HoldInSuspense",
        "ReturnSuspense",
        "GetTransaction",
        "SubmitBatch",
    },
    "backoffice": {
        "GrantBonus",
        "ForfeitBonus",
        "SetLimits",
        "AttributeSuspense",
        "ReturnSuspense",
        "GetBalance",
        "GetTransaction",
        "ListTransactions",
        "GetAccountBalance",
        "GetTrialBalance",
        "SubmitBatch",
    },
    "auditor": {
        "GetBalance",
        "GetTransaction",
        "ListTransactions",
        "GetAccountBalance",
        "GetTrialBalance",
        "SubscribeEvents",
        "GetLogHeads",
    },
    "admin": {
        "Deposit",
        "ReverseDeposit",
        "Bet",
        "Win",
        "Rollback",
        "RequestWithdrawal",
        "CompleteWithdrawal",
        "CancelWithdrawal",
        "FailWithdrawal",
        "GrantBonus",
        "ForfeitBonus",
        "SetLimits",
        "HoldInSuspense",
        "AttributeSuspense",
        "ReturnSuspense",
        "SubmitBatch",
        "GetBalance",
        "GetTransaction",
        "ListTransactions",
        "GetAccountBalance",
        "GetTrialBalance",
        "SubscribeEvents",
        "GetLogHeads",
        "AdvanceClock",
    },
}

HASH_A = token_sha256("token-a")
HASH_B = token_sha256("token-b")


def _principal(role: str) -> Principal:
    provider = "acme" if role == "game_provider" else None
    return Principal(name=f"{role}-client", role=role, provider=provider)


def _client_toml(name: str, role: str, token_hash: str, provider: str | None = None) -> str:
    lines = ["[[clients]]", f'name = "{name}"', f'role = "{role}"']
    lines.append(f'token_sha256 = "{token_hash}"')
    if provider is not None:
        lines.append(f'provider = "{provider}"')
    return "\n".join(lines) + "\n"


def test_expected_matrix_covers_every_role_and_method():
    """The test's matrix names exactly the module's roles and every method of the service."""
    assert tuple(EXPECTED_ALLOWED) == ROLES
    assert EXPECTED_ALLOWED["admin"] == set(METHODS)
    assert len(METHODS) == 24


def test_every_rpc_of_the_proto_is_in_the_table():
    """Every rpc the proto declares has a row in the permission table, so none is unreachable."""
    proto = (ROOT / "protos" / "ledger" / "v1" / "ledger.proto").read_text()
    declared = set(re.findall(r"^\s*rpc\s+(\w+)\s*\(", proto, re.MULTILINE))
    assert declared
    assert declared <= set(METHODS)


@pytest.mark.parametrize(
    ("role", "method"),
    list(itertools.product(ROLES, METHODS)),
    ids=[f"{role}-{method}" for role, method in itertools.product(ROLES, METHODS)],
)
def test_role_against_method(role, method):
    """Each role may call exactly the methods docs/contract.md grants it and no other."""
    principal = _principal(role)
    if method in EXPECTED_ALLOWED[role]:
        authorize(principal, method, provider=principal.provider)
    else:
        with pytest.raises(PermissionDenied):
            authorize(principal, method, provider=principal.provider)


@pytest.mark.parametrize("role", ROLES)
def test_unknown_method_is_denied_to_every_role(role):
    """A method missing from the table is denied, even to admin (default deny)."""
    with pytest.raises(PermissionDenied):
        authorize(_principal(role), "DropAllTables")


@pytest.mark.parametrize("method", ["Bet", "Win", "Rollback", "GetTransaction"])
def test_game_provider_acts_for_its_own_provider(method):
    """A game_provider client may send game commands, and read them back, naming its own
    provider."""
    authorize(_principal("game_provider"), method, provider="acme")


@pytest.mark.parametrize("method", ["Bet", "Win", "Rollback", "GetTransaction"])
@pytest.mark.parametrize("provider", ["other", "", None, "ACME"])
def test_game_provider_cannot_act_for_another_provider(method, provider):
    """A game_provider client is denied game commands and transaction reads for another, empty
    or missing provider (a missing one would read the cashier's client scope)."""
    with pytest.raises(PermissionDenied):
        authorize(_principal("game_provider"), method, provider=provider)


def test_game_provider_reads_a_balance_without_naming_a_provider():
    """GetBalance carries no provider, so a game_provider client may call it without one."""
    authorize(_principal("game_provider"), "GetBalance")


def test_admin_acts_for_any_provider():
    """The provider binding applies to game_provider clients only; admin may name any."""
    authorize(_principal("admin"), "Bet", provider="other")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic dG9rZW4tYQ==",
        "token-a",
        "Bearer",
        "Bearer ",
        "Bearer token-a extra",
        "Bearer  token-a",
        "Bearer token-a ",
        "Bearer\ttoken-a",
        "Bearer token-unknown",
        "Bearer " + "x" * 5000,
        "Bearer tøken-a",
    ],
    ids=[
        "missing",
        "empty",
        "wrong-scheme",
        "no-scheme",
        "scheme-only",
        "empty-token",
        "extra-part",
        "double-space",
        "trailing-space",
        "tab",
        "unknown-token",
        "too-long",
        "non-ascii",
    ],
)
def test_authentication_failures(header):
    """A missing, malformed or unrecognised authorization header raises Unauthenticated."""
    authenticator = Authenticator([ClientConfig(name="a", role="admin", token_sha256=HASH_A)])
    with pytest.raises(Unauthenticated):
        authenticator.authenticate(header)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_valid_token_authenticates_to_its_client(scheme):
    """A known token, under any case of the Bearer scheme, yields its own client's principal."""
    authenticator = Authenticator(
        [
            ClientConfig(name="a", role="admin", token_sha256=HASH_A),
            ClientConfig(name="b", role="game_provider", provider="acme", token_sha256=HASH_B),
        ]
    )
    assert authenticator.authenticate(f"{scheme} token-b") == Principal(
        name="b", role="game_provider", provider="acme"
    )
    assert authenticator.authenticate(f"{scheme} token-a") == Principal(name="a", role="admin")


def test_token_sha256_is_hex_of_utf8_sha256():
    """token_sha256 gives the lowercase hex digest operators put in the config."""
    assert token_sha256("test") == (
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    )


def test_load_auth_config_accepts_a_valid_file(tmp_path):
    """A well-formed config file yields an authenticator for each of its clients."""
    path = tmp_path / "auth.toml"
    path.write_text(
        _client_toml("acme-games", "game_provider", HASH_A, provider="acme")
        + _client_toml("cashier", "payments", HASH_B)
    )
    authenticator = load_auth_config(path)
    assert authenticator.authenticate("Bearer token-a") == Principal(
        name="acme-games", role="game_provider", provider="acme"
    )
    assert authenticator.authenticate("Bearer token-b").role == "payments"


GOOD = _client_toml("ok", "admin", HASH_A)


@pytest.mark.parametrize(
    ("toml", "field", "reason_part"),
    [
        (GOOD + _client_toml("x", "croupier", HASH_B), "auth.clients[1].role", "enum"),
        (_client_toml("p", "game_provider", HASH_A), "auth.clients[0].provider", "required"),
        (
            _client_toml("p", "payments", HASH_A, provider="acme"),
            "auth.clients[0].provider",
            "only for role game_provider",
        ),
        (
            _client_toml("p", "game_provider", HASH_A, provider=""),
            "auth.clients[0].provider",
            "length",
        ),
        (
            GOOD + GOOD + _client_toml("h", "auditor", HASH_A[:63]),
            "auth.clients[2].token_sha256",
            "regex",
        ),
        (_client_toml("h", "auditor", HASH_A.upper()), "auth.clients[0].token_sha256", "regex"),
        (_client_toml("h", "auditor", "g" * 64), "auth.clients[0].token_sha256", "regex"),
        (_client_toml("", "auditor", HASH_A), "auth.clients[0].name", "length"),
        (
            GOOD + _client_toml("ok", "auditor", HASH_B),
            "auth.clients[1].name",
            "repeats the name of auth.clients[0]",
        ),
        (
            GOOD + _client_toml("other", "auditor", HASH_A),
            "auth.clients[1].token_sha256",
            "repeats the token hash of auth.clients[0]",
        ),
        (GOOD + 'colour = "red"\n', "auth.clients[0]", "unknown field `colour`"),
        ("surprise = 1\n" + GOOD, "auth", "unknown field `surprise`"),
        ("", "auth", "missing required field `clients`"),
        ('[[clients]]\nname = "x"\nrole = "admin"\n', "auth.clients[0]", "token_sha256"),
        ("[[clients]\nname = ", "auth_config", "not valid TOML"),
    ],
    ids=[
        "bad-role",
        "provider-missing",
        "provider-on-non-provider",
        "provider-empty",
        "hash-too-short",
        "hash-uppercase",
        "hash-not-hex",
        "name-empty",
        "duplicate-name",
        "duplicate-hash",
        "unknown-client-field",
        "unknown-top-level-field",
        "no-clients",
        "hash-missing",
        "invalid-toml",
    ],
)
def test_config_errors_name_the_field(toml, field, reason_part):
    """Each malformed config is refused with InvalidArgument naming its TOML path and fault."""
    with pytest.raises(InvalidArgument) as caught:
        auth_config_from_toml(toml.encode())
    assert caught.value.field == field
    assert reason_part in caught.value.reason


def test_config_file_errors_name_the_file_setting(tmp_path):
    """A missing, unreadable-as-file or oversized config file is refused as auth_config."""
    for path in (tmp_path / "missing.toml", tmp_path):
        with pytest.raises(InvalidArgument) as caught:
            load_auth_config(path)
        assert caught.value.field == "auth_config"
        assert "cannot read" in caught.value.reason
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * (auth_config_size_max + 1))
    with pytest.raises(InvalidArgument) as caught:
        load_auth_config(huge)
    assert caught.value.field == "auth_config"
    assert "larger" in caught.value.reason


def test_bootstrap_admin_mints_a_private_token_then_reloads_its_hash(tmp_path):
    """The first start writes a 0600 token and its hash; a restart loads the hash alone."""
    state_dir = tmp_path / "state"
    authenticator, token_path = bootstrap_admin(state_dir)
    assert token_path == state_dir / "admin-token"
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    token = token_path.read_text().strip()
    hash_text = (state_dir / "admin-token.sha256").read_text()
    assert hash_text.strip() == token_sha256(token)
    assert token not in hash_text
    assert authenticator.authenticate(f"Bearer {token}") == Principal(name="admin", role="admin")

    again, again_path = bootstrap_admin(state_dir)
    assert again_path is None
    assert again.authenticate(f"Bearer {token}") == Principal(name="admin", role="admin")
    assert token_path.read_text().strip() == token


def test_bootstrap_admin_needs_only_the_hash_after_the_first_start(tmp_path):
    """Once the operator removes the token file, restarts still accept the token by its hash."""
    _, token_path = bootstrap_admin(tmp_path)
    token = token_path.read_text().strip()
    token_path.unlink()
    again, again_path = bootstrap_admin(tmp_path)
    assert again_path is None
    assert again.authenticate(f"Bearer {token}").role == "admin"
    with pytest.raises(Unauthenticated):
        again.authenticate("Bearer guessed")


def test_bootstrap_admin_never_replaces_a_token_without_its_hash(tmp_path):
    """A token file left without its hash is refused, not silently replaced by a new token."""
    (tmp_path / "admin-token").write_text("someone-may-hold-this\n")
    with pytest.raises(InvalidArgument) as caught:
        bootstrap_admin(tmp_path)
    assert caught.value.field == "state_dir"
    assert (tmp_path / "admin-token").read_text() == "someone-may-hold-this\n"


def test_bootstrap_admin_refuses_a_corrupt_hash_file(tmp_path):
    """A hash file that does not hold a hex SHA-256 stops the start instead of locking out."""
    (tmp_path / "admin-token.sha256").write_text("not a hash\n")
    with pytest.raises(InvalidArgument) as caught:
        bootstrap_admin(tmp_path)
    assert caught.value.field == "state_dir"
