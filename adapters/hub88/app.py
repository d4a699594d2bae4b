"""The Hub88 operator Wallet API as a FastAPI app that talks to the engine over gRPC.

Each request goes: signature check on the raw body (a bad one never reaches the engine),
then pydantic validation (WRONG_SYNTAX / WRONG_TYPES), then one engine call through the
blocking `LedgerClient`, whose bounded retries make a resend safe because every command is
keyed by (provider, transaction_uuid). Endpoints are plain `def`s, so FastAPI runs the
blocking call in its threadpool. Every answer is HTTP 200 with a Hub88 status; each request
logs exactly one structured line.

Hub88 ids map to engine keys like this: `user` → player_id, `transaction_uuid` →
idempotency_key, `round` → round_id, and `reference_transaction_uuid` → bet_key for a win and
target_key for a rollback. Tokens are not checked: the engine keeps no game sessions, and
Hub88 says wins and rollbacks must succeed whatever the token's state.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import grpc
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from adapters.hub88 import protocol as p
from ledger.client import LedgerClient

_log = structlog.get_logger("adapters.hub88")

# Validation error types that mean the body is not a wallet message at all, rather than a
# wallet message with a field of the wrong type or range.
_SYNTAX_ERROR_TYPES = frozenset({"json_invalid", "missing", "model_attributes_type"})


@dataclass(frozen=True)
class Settings:
    """What the adapter needs besides the engine client and the provider's key."""

    provider: str = "hub88"
    default_currency: str = "EUR"


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
    """Best-effort echo fields from a body that failed its signature or validation."""
    try:
        document = json.loads(body)
    except ValueError:
        return _Envelope()
    if not isinstance(document, dict):
        return _Envelope()
    fields = ("request_uuid", "user", "currency")
    values = {name: document.get(name) for name in fields}
    return _Envelope(**{k: v for k, v in values.items() if isinstance(v, str)})


def _status_for_validation(error: RequestValidationError) -> str:
    types = {detail.get("type") for detail in error.errors()}
    return p.RS_ERROR_WRONG_SYNTAX if types & _SYNTAX_ERROR_TYPES else p.RS_ERROR_WRONG_TYPES


def _status_for_rpc_error(error: grpc.RpcError) -> str:
    """An engine refusal as a Hub88 status; anything unexpected is RS_ERROR_UNKNOWN.

    RS_ERROR_UNKNOWN is what makes a Hub88 provider retry, or roll a bet back, which is the
    right response to an engine that stayed unreachable through the client's retries.
    """
    if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
        return p.RS_ERROR_UNKNOWN
    # The engine names the bad field; an unknown currency code is the one Hub88 has a name for.
    details = (error.details() or "").lower()
    return p.RS_ERROR_WRONG_CURRENCY if "currency" in details else p.RS_ERROR_WRONG_TYPES


def _json(response: p.WalletResponse) -> JSONResponse:
    return JSONResponse(response.model_dump())


def _signed_route_class(public_key: rsa.RSAPublicKey) -> type[APIRoute]:
    """A route class that checks the signature, turns errors into statuses, and logs."""

    class SignedRoute(APIRoute):
        def get_route_handler(self) -> Callable:
            handler = super().get_route_handler()

            async def verified_handler(request: Request) -> Response:
                started = time.perf_counter()
                body = await request.body()
                header = request.headers.get(p.SIGNATURE_HEADER)
                if not p.signature_is_valid(public_key, body, header):
                    response = _json(_envelope_from_raw(body).reply(p.RS_ERROR_INVALID_SIGNATURE))
                else:
                    response = await _handle_checked(handler, request, body)
                _log_request(request, response, started)
                return response

            return verified_handler

    return SignedRoute


async def _handle_checked(handler: Callable, request: Request, body: bytes) -> Response:
    try:
        return await handler(request)
    except RequestValidationError as error:
        return _json(_envelope_from_raw(body).reply(_status_for_validation(error)))
    except Exception:  # noqa: BLE001 - a provider must get a status, never a stack trace.
        _log.exception("hub88_request_failed", path=request.url.path)
        return _json(_envelope_from_raw(body).reply(p.RS_ERROR_UNKNOWN))


def _log_request(request: Request, response: Response, started: float) -> None:
    answer = json.loads(response.body)
    _log.info(
        "hub88_request",
        path=request.url.path,
        status=answer.get("status"),
        request_uuid=answer.get("request_uuid"),
        user=answer.get("user"),
        engine_outcome=getattr(request.state, "engine_outcome", None),
        balance=answer.get("balance"),
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


def _balance_units(cash: str, bonus: str, user: str) -> int:
    units, exact = p.spendable_units(cash, bonus)
    if not exact:
        # Flagged, not hidden: the provider is shown the floor, never more than is there.
        _log.warning("hub88_balance_floored", user=user, cash=cash, bonus=bonus, units=units)
    return units


def _answer_command(request: Request, envelope: _Envelope, call: Callable) -> p.WalletResponse:
    """One engine command's reply as a Hub88 answer, with the player's current balance."""
    try:
        reply = call()
    except grpc.RpcError as error:
        request.state.engine_outcome = f"grpc:{error.code().name}"
        return envelope.reply(_status_for_rpc_error(error))
    request.state.engine_outcome = reply.outcome
    status = p.STATUS_FOR_OUTCOME.get(reply.outcome, p.RS_ERROR_UNKNOWN)
    balances = reply.balances
    return envelope.reply(status, _balance_units(balances.cash, balances.bonus, envelope.user))


def _add_balance_route(app: FastAPI, ledger: LedgerClient, settings: Settings) -> None:
    @app.post("/user/balance", response_model=p.WalletResponse)
    def user_balance(message: p.BalanceRequest, request: Request) -> p.WalletResponse:
        """The player's stakeable balance in the request's (or the default) currency."""
        currency = message.currency or settings.default_currency
        envelope = _Envelope(message.request_uuid, message.user, currency)
        try:
            balances, _ = ledger.get_balance(player_id=message.user, currency=currency)
        except grpc.RpcError as error:
            request.state.engine_outcome = f"grpc:{error.code().name}"
            return envelope.reply(_status_for_rpc_error(error))
        request.state.engine_outcome = "OK"
        units = _balance_units(balances.cash, balances.bonus, message.user)
        return envelope.reply(p.RS_OK, units)


def _add_transaction_routes(app: FastAPI, ledger: LedgerClient, settings: Settings) -> None:
    provider = settings.provider

    @app.post("/transaction/bet", response_model=p.WalletResponse)
    def transaction_bet(message: p.BetRequest, request: Request) -> p.WalletResponse:
        """Debit a stake; a replay of the same transaction_uuid is RS_OK with no new debit."""
        command = partial(
            ledger.bet,
            idempotency_key=message.transaction_uuid,
            provider=provider,
            player_id=message.user,
            currency=message.currency,
            amount=p.units_to_decimal(message.amount),
            round_id=message.round,
        )
        return _answer_command(request, _envelope_of(message), command)

    @app.post("/transaction/win", response_model=p.WalletResponse)
    def transaction_win(message: p.WinRequest, request: Request) -> p.WalletResponse:
        """Credit a win for the referenced bet; amount 0 just closes the round."""
        command = partial(
            ledger.win,
            idempotency_key=message.transaction_uuid,
            provider=provider,
            player_id=message.user,
            currency=message.currency,
            amount=p.units_to_decimal(message.amount),
            bet_key=message.reference_transaction_uuid,
            round_closed=message.round_closed,
        )
        return _answer_command(request, _envelope_of(message), command)

    @app.post("/transaction/rollback", response_model=p.WalletResponse)
    def transaction_rollback(message: p.RollbackRequest, request: Request) -> p.WalletResponse:
        """Undo the referenced transaction; an unknown one is RS_OK and voids it if it comes."""
        command = partial(
            ledger.rollback,
            idempotency_key=message.transaction_uuid,
            provider=provider,
            player_id=message.user,
            currency=message.currency,
            target_key=message.reference_transaction_uuid,
        )
        return _answer_command(request, _envelope_of(message), command)


def create_app(
    ledger: LedgerClient, public_key: rsa.RSAPublicKey, settings: Settings = Settings()
) -> FastAPI:
    """The wallet app. The caller owns the client and closes it after the server stops."""
    app = FastAPI(
        title="Casino ledger: Hub88 operator Wallet API",
        version="1.0",
        description="Signed (X-Hub88-Signature) seamless-wallet calls; amounts are value × 100000.",
        # The signed body is JSON by contract; a missing Content-Type must not refuse it.
        strict_content_type=False,
    )
    app.router.route_class = _signed_route_class(public_key)
    _add_balance_route(app, ledger, settings)
    _add_transaction_routes(app, ledger, settings)
    return app
