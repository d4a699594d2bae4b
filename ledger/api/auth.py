"""Who may call what: bearer tokens, roles and the permission table (docs/contract.md, Roles).

The rules this module keeps:

- A client presents `authorization: Bearer <token>`. The server knows tokens only by their
  SHA-256 (hex in the TOML, bytes in memory); a token is never stored, logged or compared in
  the clear. A 256-bit random token needs no slow password hash: its SHA-256 cannot be
  inverted, and a guess costs the attacker a network round trip.
- Each client has exactly one role. The permission table maps roles to the gRPC method names
  they may call; a method missing from the table is denied to everyone (default deny), so a
  new method stays closed until someone decides who may call it.
- `SubmitBatch` is a method like any other here, but the servicer must also authorize each
  command inside a batch by that command's own method name (and provider), so a batch can
  never carry what its sender could not send one command at a time.
- A `game_provider` client is bound to one provider id and may only act for it. Bet, Win and
  Rollback carry a provider, and so does a GetTransaction that reads back one of them, so the
  binding is checked on those: a provider reads only its own commands' records (a game
  adapter uses this to find what a rollback names), never another provider's or a cashier's.
  A provider's GetBalance names a player and currency only.
- Without an auth config the server still refuses anonymous calls: the first start mints an
  admin token, writes it to a 0600 file for the operator, and from then on keeps only its hash.

No gRPC import here: the interceptor reads the metadata and maps the two errors below to
UNAUTHENTICATED and PERMISSION_DENIED (in `ledger.api.status`), so this module is testable
without a server.
"""

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal, get_args

import msgspec

from ledger.core import limits
from ledger.core.errors import InvalidArgument, LedgerError
from ledger.files import read_bounded

# Bounds, with the qualifier last. They are local to authentication, so they live here rather
# than in ledger/core/limits.py, which holds the engine's own bounds.
auth_config_size_max = 1_000_000  # bytes of TOML
auth_client_count_max = 1_000
client_name_length_max = 64
# gRPC caps all metadata at 8 KiB by default; a header longer than this is not a token of ours.
authorization_length_max = 4_096
admin_token_entropy_bytes = 32  # 256 bits, as secrets.token_urlsafe counts them
admin_token_hash_file_size_max = 1_024  # bytes: 64 hex digits and a newline, with room to spare

ADMIN_TOKEN_FILE = "admin-token"
ADMIN_TOKEN_HASH_FILE = "admin-token.sha256"

Role = Literal["game_provider", "payments", "chain", "backoffice", "auditor", "admin"]
ROLES = ("game_provider", "payments", "chain", "backoffice", "auditor", "admin")
assert get_args(Role) == ROLES

# Method classes: the gRPC method names of LedgerService, grouped by what they touch.
GAME_COMMANDS = frozenset({"Bet", "Win", "Rollback"})
DEPOSIT_COMMANDS = frozenset({"Deposit", "ReverseDeposit"})
WITHDRAWAL_COMMANDS = frozenset(
    {"RequestWithdrawal", "CompleteWithdrawal", "CancelWithdrawal", "FailWithdrawal"}
)
BACKOFFICE_COMMANDS = frozenset({"GrantBonus", "ForfeitBonus", "SetLimits"})
# Rails park unattributable money and give it back (a refund, a reorg); attributing it to a
# player is an operations decision, so it belongs to the back office.
SUSPENSE_RAIL_COMMANDS = frozenset({"HoldInSuspense", "ReturnSuspense"})
SUSPENSE_RESOLUTION = frozenset({"AttributeSuspense", "ReturnSuspense"})
BATCH = frozenset({"SubmitBatch"})
WALLET_READS = frozenset({"GetBalance"})
TRANSACTION_READS = frozenset({"GetTransaction"})
LEDGER_READS = frozenset({"ListTransactions", "GetAccountBalance", "GetTrialBalance"})
EVENT_STREAM = frozenset({"SubscribeEvents", "GetLogHeads"})
# Moving a test store's clock changes what every later decision sees, for every player: an
# operator's act, so admin only (and only on a test store, which the ledger checks).
TEST_CLOCK = frozenset({"AdvanceClock"})

METHODS = (
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
)

# The methods whose request names a provider: a game_provider client may only send its own.
PROVIDER_SCOPED_METHODS = GAME_COMMANDS | TRANSACTION_READS

PERMISSIONS: dict[str, frozenset[str]] = {
    "game_provider": GAME_COMMANDS | WALLET_READS | TRANSACTION_READS | BATCH,
    "payments": DEPOSIT_COMMANDS
    | WITHDRAWAL_COMMANDS
    | SUSPENSE_RAIL_COMMANDS
    | WALLET_READS
    | TRANSACTION_READS
    | BATCH,
    "chain": DEPOSIT_COMMANDS | SUSPENSE_RAIL_COMMANDS | TRANSACTION_READS | BATCH,
    "backoffice": BACKOFFICE_COMMANDS
    | SUSPENSE_RESOLUTION
    | WALLET_READS
    | TRANSACTION_READS
    | LEDGER_READS
    | BATCH,
    "auditor": WALLET_READS | TRANSACTION_READS | LEDGER_READS | EVENT_STREAM,
    "admin": frozenset(METHODS),
}

# The table is checked when the module loads, so a typo in a method name fails the first import.
assert len(set(METHODS)) == len(METHODS)
assert tuple(PERMISSIONS) == ROLES
assert all(methods <= PERMISSIONS["admin"] for methods in PERMISSIONS.values())
assert "SubmitBatch" not in PERMISSIONS["auditor"]
assert all(not TEST_CLOCK & methods for role, methods in PERMISSIONS.items() if role != "admin")

_TOKEN_SHA256_PATTERN = r"^[0-9a-f]{64}$"


class Unauthenticated(LedgerError):
    """The call carries no valid bearer token. The reason goes to the client: it names no client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermissionDenied(LedgerError):
    """The authenticated client's role, or its provider binding, does not allow this call."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated client: its configured name, its role and, for game providers, its id."""

    name: str
    role: str
    provider: str | None = None


ClientName = Annotated[str, msgspec.Meta(min_length=1, max_length=client_name_length_max)]
ProviderId = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.provider_id_length_max)]
TokenSha256 = Annotated[str, msgspec.Meta(pattern=_TOKEN_SHA256_PATTERN)]


class ClientConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One `[[clients]]` table: who the client is and the SHA-256 (hex) of its token."""

    name: ClientName
    role: Role
    token_sha256: TokenSha256
    provider: ProviderId | None = None


class AuthConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The auth config file: a list of `[[clients]]` tables.

    Example:

        [[clients]]
        name = "acme-games"
        role = "game_provider"
        provider = "acme"
        token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    """

    clients: Annotated[
        list[ClientConfig], msgspec.Meta(min_length=1, max_length=auth_client_count_max)
    ]


def token_sha256(token: str) -> str:
    """The lowercase hex SHA-256 of a token's UTF-8 bytes: what the config stores for it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Authenticator:
    """Turns an `authorization` header into the Principal it belongs to, knowing only hashes."""

    def __init__(self, clients: Iterable[ClientConfig]) -> None:
        self._clients: tuple[tuple[bytes, Principal], ...] = tuple(
            (bytes.fromhex(client.token_sha256), _principal(client)) for client in clients
        )
        digests = [digest for digest, _ in self._clients]
        # Config validation refuses duplicates; two clients on one hash here would be a bug.
        assert len(set(digests)) == len(digests)
        assert all(len(digest) == hashlib.sha256().digest_size for digest in digests)

    def authenticate(self, authorization_header: str | None) -> Principal:
        """The client whose token the header carries; Unauthenticated if there is none.

        Args:
            authorization_header: the `authorization` metadata value, None when absent.
        """
        token = _bearer_token(authorization_header)
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        # Compare against every client, with no early exit, in constant time per comparison:
        # the work done is the same whichever client matches or whether none does. A dict
        # keyed by hash would also be safe (timing could at most reveal a prefix of a stored
        # hash, and a hash does not lead back to its token), but the loop needs no argument
        # and client lists are short (auth_client_count_max).
        matched: Principal | None = None
        for digest, principal in self._clients:
            if hmac.compare_digest(digest, presented):
                matched = principal
        if matched is None:
            raise Unauthenticated("the bearer token is not recognised")
        return matched


def _principal(client: ClientConfig) -> Principal:
    return Principal(name=client.name, role=client.role, provider=client.provider)


def _bearer_token(authorization_header: str | None) -> str:
    """The token of a `Bearer <token>` header, refusing anything else with Unauthenticated."""
    if authorization_header is None:
        raise Unauthenticated("missing authorization metadata: send 'Bearer <token>'")
    if len(authorization_header) > authorization_length_max:
        raise Unauthenticated(f"authorization is longer than {authorization_length_max} chars")
    parts = authorization_header.split(" ")
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    token = parts[1]
    if not token:
        raise Unauthenticated("the bearer token is empty")
    # RFC 6750 tokens are printable ASCII, as is all text gRPC metadata; refusing the rest
    # here keeps encoding errors out of the hashing below.
    if not (token.isascii() and token.isprintable()):
        raise Unauthenticated("the bearer token is not printable ASCII")
    return token


def authorize(principal: Principal, method: str, provider: str | None = None) -> None:
    """Raise PermissionDenied unless the principal may call this method for this provider.

    Args:
        principal: the authenticated client.
        method: the gRPC method name; for a command inside SubmitBatch, that command's method.
        provider: the request's provider field, for methods that carry one.
    """
    allowed = PERMISSIONS.get(principal.role, frozenset())
    if method not in allowed:
        raise PermissionDenied(f"role {principal.role} may not call {method}")
    if principal.role != "game_provider" or method not in PROVIDER_SCOPED_METHODS:
        return
    assert principal.provider  # a game_provider principal is always bound to a provider
    if provider != principal.provider:
        raise PermissionDenied(f"client {principal.name} may act only for its own provider")


def load_auth_config(path: str | Path) -> Authenticator:
    """The authenticator for the clients of a TOML auth config file (`serve --auth-config`)."""
    text = read_bounded(path, auth_config_size_max, field="auth_config")
    return Authenticator(auth_config_from_toml(text).clients)


def auth_config_from_toml(text: bytes) -> AuthConfig:
    """The decoded, cross-checked auth config; InvalidArgument names the TOML path at fault."""
    try:
        config = msgspec.toml.decode(text, type=AuthConfig)
    except msgspec.ValidationError as error:
        # msgspec ends its message with " - at `$.clients[2].role`" when the fault is nested.
        reason, _, path = str(error).rpartition(" - at `$")
        if not reason:
            raise InvalidArgument("auth", str(error)) from None
        raise InvalidArgument(f"auth{path.rstrip('`')}", reason) from None
    except msgspec.DecodeError as error:
        raise InvalidArgument("auth_config", f"is not valid TOML: {error}") from None
    _check_clients(config.clients)
    return config


def _check_clients(clients: list[ClientConfig]) -> None:
    """Refuse what msgspec's per-field checks cannot see: provider rules and duplicates."""
    names: dict[str, int] = {}
    hashes: dict[str, int] = {}
    for index, client in enumerate(clients):
        field = f"auth.clients[{index}]"
        _check_provider(client, f"{field}.provider")
        if client.name in names:
            raise InvalidArgument(
                f"{field}.name", f"repeats the name of auth.clients[{names[client.name]}]"
            )
        if client.token_sha256 in hashes:
            raise InvalidArgument(
                f"{field}.token_sha256",
                f"repeats the token hash of auth.clients[{hashes[client.token_sha256]}]",
            )
        names[client.name] = index
        hashes[client.token_sha256] = index


def _check_provider(client: ClientConfig, field: str) -> None:
    if client.role == "game_provider" and client.provider is None:
        raise InvalidArgument(field, "is required for role game_provider")
    if client.role != "game_provider" and client.provider is not None:
        raise InvalidArgument(field, f"is only for role game_provider, not {client.role}")


def bootstrap_admin(state_dir: Path) -> tuple[Authenticator, Path | None]:
    """An admin-only authenticator for a server started without an auth config.

    On first start a random token is written to `state_dir/admin-token` (mode 0600) and its
    hash to `state_dir/admin-token.sha256`; the token file's path is returned so the server
    can print it. Later starts load the hash alone and return None for the path. The process
    keeps only the hash: the operator may delete the token file once it is copied somewhere.

    Args:
        state_dir: the server's state directory; created with mode 0700 if missing.
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    hash_path = state_dir / ADMIN_TOKEN_HASH_FILE
    token_path = state_dir / ADMIN_TOKEN_FILE
    if hash_path.exists():
        return _admin_authenticator(_read_admin_hash(hash_path)), None
    token = secrets.token_urlsafe(admin_token_entropy_bytes)
    digest = token_sha256(token)
    try:
        _write_new_file(token_path, token + "\n")
    except FileExistsError:
        # A token without its hash is an interrupted first start or a hand-deleted hash file.
        # Someone may hold that token, so it is not silently replaced: the operator decides.
        raise InvalidArgument(
            "state_dir",
            f"{token_path} exists without {hash_path.name}; remove it to mint a new admin token",
        ) from None
    # The hash is published last and atomically: its presence means the token file is whole.
    _replace_file(hash_path, digest + "\n")
    return _admin_authenticator(digest), token_path


def _admin_authenticator(digest: str) -> Authenticator:
    assert re.fullmatch(_TOKEN_SHA256_PATTERN, digest)
    return Authenticator([ClientConfig(name="admin", role="admin", token_sha256=digest)])


def _read_admin_hash(hash_path: Path) -> str:
    raw = read_bounded(hash_path, admin_token_hash_file_size_max, field="state_dir")
    digest = raw.decode("ascii", errors="replace").strip()
    if not re.fullmatch(_TOKEN_SHA256_PATTERN, digest):
        raise InvalidArgument("state_dir", f"{hash_path} does not hold a SHA-256 hex digest")
    return digest


def _write_new_file(path: Path, text: str) -> None:
    """Create path with mode 0600 and write text; FileExistsError if it is already there.

    O_EXCL with the mode given to os.open means the file is never readable by others, not even
    between creation and a chmod, and never follows a symlink planted in its place.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def _replace_file(path: Path, text: str) -> None:
    """Write text to path atomically: a temporary file, fsynced, then renamed over path."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    _write_new_file(temporary, text)
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is; without this a crash could
    # leave the token file written and the hash file missing.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
