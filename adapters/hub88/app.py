"""The Hub88 operator Wallet API as a FastAPI app that talks to the engine over gRPC.

Each request goes: signature check on the raw body (a bad one never reaches the engine),
then one parse of the body that refuses a repeated key (WRONG_SYNTAX), then pydantic
validation of that document (WRONG_SYNTAX / WRONG_TYPES), then one engine call through the
asyncio `AsyncLedgerClient`, whose bounded retries make a resend safe because every command
is keyed by (provider, transaction_uuid). The wallet routes are FastAPI routes for their
OpenAPI description, but `SignedRoute` runs them itself: the body is parsed once, by
`strict_json`, not again by FastAPI, and the endpoint is awaited on the event loop, with no
worker thread (the client auto-batches the commands of concurrent requests into frames).
Every answer is HTTP 200 with a Hub88 status; each request logs exactly one structured line.

Hub88 ids map to engine fields like this: `user` → player_id, `round` → round_id, and
`transaction_uuid` → idempotency_key scoped by the call's kind (`bet:{id}`, `win:{id}`,
`rollback:{id}`; `protocol.engine_key`). A win's `reference_transaction_uuid` is its bet_key
(`bet:{ref}`); a rollback's may name a bet or a win, so the rollback first reads back which
of the two the engine holds (`_rollback_target`).

Balance and bet calls must carry a live game-session token of their user
(`adapters.hub88.sessions`; the operator opens sessions at game launch through the
bearer-protected, unsigned `POST /operator/sessions`), and a bet must name a game of the
operator's catalogue, whose category sets the bet's wagering weight. Wins and rollbacks are
checked for neither: Hub88 says they must succeed whatever the token's state.
"""

import hashlib
import hmac
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, FastAPI, Header, HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from adapters import limits, strict_json
from adapters.body_size import BodySizeLimit
from adapters.hub88 import protocol as p
from adapters.hub88.sessions import SessionStore
from ledger.client import AsyncLedgerClient, InvalidRequest, LedgerCallError, NotFound, Reply

_log = structlog.get_logger("adapters.hub88")
_encoder = msgspec.json.Encoder()

# Validation error types that mean the body is not this endpoint's message at all (not JSON,
# a field missing, or a field the endpoint does not have, as when one endpoint's signed body
# is sent to another), rather than its message with a field of the wrong type or range.
_SYNTAX_ERROR_TYPES = frozenset(
    {"json_invalid", "missing", "model_attributes_type", "extra_forbidden"}
)


@dataclass(frozen=True)
class Settings:
    """What the adapter needs besides the engine client, the provider's key and sessions."""

    games: Mapping[str, str]  # the catalogue: game code -> engine game category
    operator_token_sha256: str  # the operator platform's bearer token, hashed
    provider: str = "hub88"
    default_currency: str = "EUR"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class Engine:
    """The wallet routes' engine client, made inside the server's event loop (grpc.aio binds
    a channel to the loop that makes it): `serve_on(..., within=engine.open)`."""

    def __init__(self, make_client: Callable[[], AsyncLedgerClient]) -> None:
        self._make_client = make_client
        self._client: AsyncLedgerClient | None = None

    @property
    def client(self) -> AsyncLedgerClient:
        assert self._client is not None, "the engine client is made by Engine.open"
        return self._client

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        self._client = self._make_client()
        try:
            yield
        finally:
            await self._client.close()
            self._client = None


@dataclass
class _Envelope:
    """The echo fields of a response, as far as they are known."""

    request_uuid: str | None = None
    user: str | None = None
    currency: str | None = None

    def reply(self, status: str, balance: int | None = None) -> p.WalletResponse:
        return p.WalletResponse(
            status=status,
            request_uuid=self.request_uuid,
            user=self.user,
            currency=self.currency,
            balance=balance,
        )


def _envelope_of(message: p.BetRequest | p.WinRequest | p.RollbackRequest) -> _Envelope:
    return _Envelope(message.request_uuid, message.user, message.currency)


def _envelope_from_raw(body: bytes) -> _Envelope:
    """Best-effort echo fields from a body that failed its signature or its parse."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return _Envelope()
    return _envelope_from_document(document)


def _envelope_from_document(document: object) -> _Envelope:
    """Best-effort echo fields from a parsed body that failed validation."""
    if not isinstance(document, dict):
        return _Envelope()
    fields = ("request_uuid", "user", "currency")
    values = {name: document.get(name) for name in fields}
    return _Envelope(**{k: v for k, v in values.items() if isinstance(v, str)})


def _status_for_validation(error: ValidationError) -> str:
    types = {detail.get("type") for detail in error.errors()}
    return p.RS_ERROR_WRONG_SYNTAX if types & _SYNTAX_ERROR_TYPES else p.RS_ERROR_WRONG_TYPES


def _status_for_engine_error(error: LedgerCallError) -> str:
    """An engine refusal as a Hub88 status; anything unexpected is RS_ERROR_UNKNOWN.

    RS_ERROR_UNKNOWN is what makes a Hub88 provider retry, or roll a bet back, which is the
    right response to an engine that stayed unreachable through the client's retries.
    """
    if not isinstance(error, InvalidRequest):
        return p.RS_ERROR_UNKNOWN
    # The engine names the bad field; an unknown currency code is the one Hub88 has a name for.
    return p.RS_ERROR_WRONG_CURRENCY if error.field == "currency" else p.RS_ERROR_WRONG_TYPES


def _json(response: p.WalletResponse) -> Response:
    # The same bytes as FastAPI's JSONResponse (compact, UTF-8), from msgspec.
    return Response(_encoder.encode(response.model_dump()), media_type="application/json")


def _message_model(endpoint: Callable) -> type[BaseModel]:
    """The model of a wallet endpoint's `message` parameter: what its body must be."""
    model = inspect.signature(endpoint).parameters["message"].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel), model
    return model


def _signed_route_class(public_key: rsa.RSAPublicKey) -> type[APIRoute]:
    """A route class that checks the signature, parses and validates the body once, awaits
    the endpoint, turns errors into statuses, and logs."""

    class SignedRoute(APIRoute):
        def get_route_handler(self) -> Callable:
            endpoint, model = self.endpoint, _message_model(self.endpoint)

            async def verified_handler(request: Request) -> Response:
                started = time.perf_counter()
                body = await request.body()
                path = request.scope["path"]
                header = request.headers.get(p.SIGNATURE_HEADER)
                if not p.signature_is_valid(public_key, body, header):
                    answer = _envelope_from_raw(body).reply(p.RS_ERROR_INVALID_SIGNATURE)
                else:
                    answer = await _answer_checked(endpoint, model, request, path, body)
                _log_request(request, path, answer, started)
                return _json(answer)

            return verified_handler

    return SignedRoute


async def _answer_checked(
    endpoint: Callable, model: type[BaseModel], request: Request, path: str, body: bytes
) -> p.WalletResponse:
    """A signed body's answer: refused if it does not parse or validate, else the endpoint's."""
    try:
        document = strict_json.loads(body)
    except strict_json.RepeatedKey as error:
        # `json.loads` (so any ordinary reader) would drop one of the two: refused, not guessed.
        status = p.RS_ERROR_WRONG_SYNTAX
        _log.warning("hub88_request_refused", path=path, status=status, repeated_key=error.key[:64])
        return _envelope_from_raw(body).reply(status)
    except (ValueError, RecursionError) as error:
        # Not JSON, or nested past the parser's depth: a malformed request, which the provider
        # does not retry.
        status = p.RS_ERROR_WRONG_SYNTAX
        reason = type(error).__name__
        _log.warning("hub88_request_refused", path=path, status=status, reason=reason)
        return _Envelope().reply(status)
    try:
        # As FastAPI validates a body model (python mode, from attributes), so the statuses
        # below are those its errors gave.
        message = model.model_validate(document, from_attributes=True)
    except ValidationError as error:
        status = _status_for_validation(error)
        # Which fields, never their values: a body may carry a session token.
        fields = [(".".join(map(str, e["loc"])), e["type"]) for e in error.errors()]
        _log.warning("hub88_request_refused", path=path, status=status, fields=fields)
        return _envelope_from_document(document).reply(status)
    try:
        return await endpoint(message, request)
    except Exception:
        _log.exception("hub88_request_failed", path=path)
        return _envelope_from_document(document).reply(p.RS_ERROR_UNKNOWN)


def _log_request(request: Request, path: str, answer: p.WalletResponse, started: float) -> None:
    _log.info(
        "hub88_request",
        path=path,
        status=answer.status,
        request_uuid=answer.request_uuid,
        user=answer.user,
        engine_outcome=getattr(request.state, "engine_outcome", None),
        balance=answer.balance,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


def _balance_units(cash: str, bonus: str, user: str) -> int:
    units, exact = p.spendable_units(cash, bonus)
    if not exact:
        # Flagged, not hidden: the provider is shown the floor, never more than is there.
        _log.warning("hub88_balance_floored", user=user, cash=cash, bonus=bonus, units=units)
    return units


async def _answer_command(request: Request, envelope: _Envelope, call) -> p.WalletResponse:
    """One engine command's reply (`call`, awaitable) as a Hub88 answer, with the player's
    current balance."""
    try:
        reply = await call
    except LedgerCallError as error:
        request.state.engine_outcome = f"grpc:{error.status}"
        return envelope.reply(_status_for_engine_error(error))
    request.state.engine_outcome = reply.outcome
    status = p.STATUS_FOR_OUTCOME.get(reply.outcome, p.RS_ERROR_UNKNOWN)
    balances = reply.balances
    return envelope.reply(status, _balance_units(balances.cash, balances.bonus, envelope.user))


def _add_balance_route(
    app: FastAPI, engine: Engine, settings: Settings, sessions: SessionStore
) -> None:
    @app.post("/user/balance", response_model=p.WalletResponse)
    async def user_balance(message: p.BalanceRequest, request: Request) -> p.WalletResponse:
        """The player's stakeable balance in the request's (or the default) currency."""
        currency = message.currency or settings.default_currency
        envelope = _Envelope(message.request_uuid, message.user, currency)
        refusal = sessions.refusal(message.token, message.user, settings.clock())
        if refusal is not None:
            request.state.engine_outcome = None
            return envelope.reply(refusal)
        try:
            balances, _ = await engine.client.get_balance(player_id=message.user, currency=currency)
        except LedgerCallError as error:
            request.state.engine_outcome = f"grpc:{error.status}"
            return envelope.reply(_status_for_engine_error(error))
        request.state.engine_outcome = "OK"
        units = _balance_units(balances.cash, balances.bonus, message.user)
        return envelope.reply(p.RS_OK, units)


def _add_transaction_routes(
    app: FastAPI, engine: Engine, settings: Settings, sessions: SessionStore
) -> None:
    provider = settings.provider

    @app.post("/transaction/bet", response_model=p.WalletResponse)
    async def transaction_bet(message: p.BetRequest, request: Request) -> p.WalletResponse:
        """Debit a stake; a replay of the same transaction_uuid is RS_OK with no new debit."""
        refusal = sessions.refusal(message.token, message.user, settings.clock())
        category = settings.games.get(message.game_code or "")
        if refusal is not None or category is None:
            return _envelope_of(message).reply(refusal or p.RS_ERROR_INVALID_GAME)
        command = engine.client.bet(
            idempotency_key=p.engine_key(p.BET, message.transaction_uuid),
            provider=provider,
            player_id=message.user,
            currency=message.currency,
            amount=p.units_to_decimal(message.amount),
            round_id=message.round,
            game_category=category,
        )
        return await _answer_command(request, _envelope_of(message), command)

    @app.post("/transaction/win", response_model=p.WalletResponse)
    async def transaction_win(message: p.WinRequest, request: Request) -> p.WalletResponse:
        """Credit a win for the referenced bet; amount 0 just closes the round."""
        command = engine.client.win(
            idempotency_key=p.engine_key(p.WIN, message.transaction_uuid),
            provider=provider,
            player_id=message.user,
            currency=message.currency,
            amount=p.units_to_decimal(message.amount),
            bet_key=p.engine_key(p.BET, message.reference_transaction_uuid),
            round_closed=message.round_closed,
        )
        return await _answer_command(request, _envelope_of(message), command)

    @app.post("/transaction/rollback", response_model=p.WalletResponse)
    async def transaction_rollback(
        message: p.RollbackRequest, request: Request
    ) -> p.WalletResponse:
        """Undo the referenced transaction; an unknown one is RS_OK and voids it if it comes."""
        command = _roll_back(engine.client, provider, message)
        return await _answer_command(request, _envelope_of(message), command)


async def _roll_back(ledger: AsyncLedgerClient, provider: str, message: p.RollbackRequest) -> Reply:
    target = await _rollback_target(ledger, provider, message.reference_transaction_uuid)
    return await ledger.rollback(
        idempotency_key=p.engine_key(p.ROLLBACK, message.transaction_uuid),
        provider=provider,
        player_id=message.user,
        currency=message.currency,
        target_key=target,
    )


async def _rollback_target(ledger: AsyncLedgerClient, provider: str, reference: str) -> str:
    """The engine key of what a rollback names: the bet's if the engine holds one under the
    id, else the win's, else the bet's.

    Hub88 names the target by id alone, while the engine keys bets and wins apart, so the
    engine is asked. An id it holds neither of is a bet still to come (a provider rolls back a
    bet whose answer it lost; it does not roll back a win it has not sent): the rollback then
    leaves its tombstone under the bet's key, which voids that bet when it arrives.
    """
    for kind in (p.BET, p.WIN):
        key = p.engine_key(kind, reference)
        if await _is_recorded(ledger, provider, key):
            return key
    return p.engine_key(p.BET, reference)


async def _is_recorded(ledger: AsyncLedgerClient, provider: str, key: str) -> bool:
    """True when the engine recorded a command (applied or refused) under this provider's key."""
    try:
        await ledger.get_transaction(idempotency_key=key, provider=provider)
    except NotFound:
        return False
    # Any other LedgerCallError (unreachable, refused) goes up: the rollback answers
    # RS_ERROR_UNKNOWN and is retried.
    return True


def _add_operator_routes(app: FastAPI, settings: Settings, sessions: SessionStore) -> None:
    """The operator platform's side: unsigned (Hub88 never calls it), bearer-protected."""
    router = APIRouter(route_class=APIRoute)

    @router.post("/operator/sessions", response_model=p.SessionResponse, status_code=201)
    def open_session(
        body: p.SessionRequest, authorization: str | None = Header(default=None)
    ) -> p.SessionResponse:
        """Opens a game session at game launch; its token goes into the Hub88 game URL."""
        presented = (authorization or "").removeprefix("Bearer ").encode()
        digest = hashlib.sha256(presented).hexdigest()
        if not authorization or not hmac.compare_digest(digest, settings.operator_token_sha256):
            raise HTTPException(status_code=401, detail="a valid operator bearer token is required")
        session = sessions.open(body.user, body.currency, settings.clock())
        _log.info("hub88_session_opened", user=body.user, expires_at=session.expires_at.isoformat())
        return p.SessionResponse(token=session.token, expires_at=session.expires_at)

    app.include_router(router)


def create_app(
    engine: Engine, public_key: rsa.RSAPublicKey, settings: Settings, sessions: SessionStore
) -> FastAPI:
    """The wallet app. The caller owns the session store and closes it, and serves the app
    within `engine.open`."""
    app = FastAPI(
        title="Casino ledger: Hub88 operator Wallet API",
        version="1.0",
        description="Signed (X-Hub88-Signature) seamless-wallet calls; amounts are value × 100000.",
        # The signed body is JSON by contract; a missing Content-Type must not refuse it.
        strict_content_type=False,
    )
    # Outermost: an oversized body is refused before it is read whole or its signature checked.
    app.add_middleware(BodySizeLimit, body_size_max=limits.body_size_max)
    app.router.route_class = _signed_route_class(public_key)
    _add_balance_route(app, engine, settings, sessions)
    _add_transaction_routes(app, engine, settings, sessions)
    _add_operator_routes(app, settings, sessions)
    return app
