"""Conversion between the wire contract (ledger.v1 protobuf) and the engine's types.

The only module besides the servicer that touches generated code. Amounts arrive as
decimal strings and are parsed exactly with the currency's scale; every refusal names the
request field (prefixed with its position inside a batch).
"""

from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ledger.core import commands as c
from ledger.core import limits
from ledger.core.errors import InvalidArgument
from ledger.core.events import CommandRefused, WalletEvent, event_tag
from ledger.core.money import Currency, CurrencyRegistry, format_amount, parse_amount
from ledger.core.outcomes import Outcome
from ledger.core.state import Balances
from ledger.service.results import CommandResult
from ledger.v1 import ledger_pb2 as pb

_TIMESTAMP_RANGE = (
    f"seconds must be between {limits.timestamp_seconds_min} and {limits.timestamp_seconds_max}"
    " (0001-01-01 to 9999-12-31 UTC)"
)


def to_datetime(message, field: str) -> datetime | None:
    """The timestamp field as an aware UTC datetime, or None when unset; a Timestamp outside
    what a datetime holds (the range Timestamp itself defines) is refused naming the field."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    if not limits.timestamp_seconds_min <= stamp.seconds <= limits.timestamp_seconds_max:
        raise InvalidArgument(field, _TIMESTAMP_RANGE)
    if not 0 <= stamp.nanos <= limits.timestamp_nanos_max:
        raise InvalidArgument(field, f"nanos must be between 0 and {limits.timestamp_nanos_max}")
    return stamp.ToDatetime(tzinfo=UTC)


def _amount(message, field: str, currency: Currency, *, zero_allowed: bool = False) -> int:
    return parse_amount(getattr(message, field), currency, field=field, zero_allowed=zero_allowed)


def _optional_amount(message, field: str, currency: Currency) -> int | None:
    if not message.HasField(field):
        return None
    return parse_amount(getattr(message, field), currency, field=field, zero_allowed=True)


def _common(message) -> dict:
    """The fields every request shares; suspense holds and returns carry no player."""
    return {
        "idempotency_key": message.idempotency_key,
        "player_id": getattr(message, "player_id", ""),
        "currency": message.currency,
        "occurred_at": to_datetime(message, "occurred_at"),
    }


def _deposit(m, currency: Currency) -> c.Deposit:
    amount = _amount(m, "amount", currency)
    return c.Deposit(**_common(m), amount=amount, rail=m.rail, rail_id=m.rail_id)


def _reverse_deposit(m, currency: Currency) -> c.ReverseDeposit:
    return c.ReverseDeposit(
        **_common(m),
        amount=_amount(m, "amount", currency),
        rail=m.rail,
        rail_id=m.rail_id,
        deposit_key=m.deposit_key or None,
    )


def _bet(m, currency: Currency) -> c.Bet:
    return c.Bet(
        **_common(m),
        provider=m.provider,
        amount=_amount(m, "amount", currency),
        round_id=m.round_id,
        game_category=m.game_category or "slots",
    )


def _win(m, currency: Currency) -> c.Win:
    return c.Win(
        **_common(m),
        provider=m.provider,
        bet_key=m.bet_key,
        round_closed=m.round_closed,
        amount=_amount(m, "amount", currency, zero_allowed=True),
    )


def _rollback(m, currency: Currency) -> c.Rollback:
    return c.Rollback(**_common(m), provider=m.provider, target_key=m.target_key)


def _request_withdrawal(m, currency: Currency) -> c.RequestWithdrawal:
    amount = _amount(m, "amount", currency)
    return c.RequestWithdrawal(**_common(m), amount=amount, rail=m.rail, rail_id=m.rail_id)


def _withdrawal_step(command_type: type[c.Command]) -> Callable:
    def build(m, currency: Currency) -> c.Command:
        return command_type(**_common(m), withdrawal_key=m.withdrawal_key)

    return build


def _grant_bonus(m, currency: Currency) -> c.GrantBonus:
    return c.GrantBonus(
        **_common(m),
        amount=_amount(m, "amount", currency),
        wagering_multiplier=m.wagering_multiplier,
        max_conversion=_optional_amount(m, "max_conversion", currency),
        max_bet=_optional_amount(m, "max_bet", currency),
        expires_at=to_datetime(m, "expires_at"),
    )


def _forfeit_bonus(m, currency: Currency) -> c.ForfeitBonus:
    return c.ForfeitBonus(**_common(m))


_LIMIT_FIELDS = (
    "deposit_limit_24h",
    "deposit_limit_7d",
    "deposit_limit_30d",
    "loss_limit_24h",
    "loss_limit_7d",
    "loss_limit_30d",
)


def _set_limits(m, currency: Currency) -> c.SetLimits:
    limits = {field: _optional_amount(m, field, currency) for field in _LIMIT_FIELDS}
    until = to_datetime(m, "self_excluded_until")
    return c.SetLimits(**_common(m), **limits, self_excluded_until=until)


def _hold_in_suspense(m, currency: Currency) -> c.HoldInSuspense:
    return c.HoldInSuspense(
        **_common(m),
        amount=_amount(m, "amount", currency),
        rail=m.rail,
        rail_id=m.rail_id,
        reason=m.reason,
    )


def _attribute_suspense(m, currency: Currency) -> c.AttributeSuspense:
    return c.AttributeSuspense(**_common(m), item_key=m.item_key)


def _return_suspense(m, currency: Currency) -> c.ReturnSuspense:
    return c.ReturnSuspense(**_common(m), item_key=m.item_key)


# gRPC method name -> (builder, batch oneof field name).
COMMAND_METHODS: dict[str, tuple[Callable, str]] = {
    "Deposit": (_deposit, "deposit"),
    "ReverseDeposit": (_reverse_deposit, "reverse_deposit"),
    "Bet": (_bet, "bet"),
    "Win": (_win, "win"),
    "Rollback": (_rollback, "rollback"),
    "RequestWithdrawal": (_request_withdrawal, "request_withdrawal"),
    "CompleteWithdrawal": (_withdrawal_step(c.CompleteWithdrawal), "complete_withdrawal"),
    "CancelWithdrawal": (_withdrawal_step(c.CancelWithdrawal), "cancel_withdrawal"),
    "FailWithdrawal": (_withdrawal_step(c.FailWithdrawal), "fail_withdrawal"),
    "GrantBonus": (_grant_bonus, "grant_bonus"),
    "ForfeitBonus": (_forfeit_bonus, "forfeit_bonus"),
    "SetLimits": (_set_limits, "set_limits"),
    "HoldInSuspense": (_hold_in_suspense, "hold_in_suspense"),
    "AttributeSuspense": (_attribute_suspense, "attribute_suspense"),
    "ReturnSuspense": (_return_suspense, "return_suspense"),
}
METHOD_BY_ONEOF = {oneof: method for method, (_, oneof) in COMMAND_METHODS.items()}


def command_from_request(method: str, message, registry: CurrencyRegistry) -> c.Command:
    """Builds the engine command for a unary request; refusals name the request field."""
    builder, _ = COMMAND_METHODS[method]
    currency = registry.get(message.currency, field="currency")
    return builder(message, currency)


def batch_item(item: pb.Command, index: int) -> tuple[str, object]:
    """(method name, inner request) of a batch entry; an empty entry is refused."""
    which = item.WhichOneof("command")
    if which is None:
        raise InvalidArgument(f"commands[{index}]", "holds no command")
    return METHOD_BY_ONEOF[which], getattr(item, which)


def prefixed(error: InvalidArgument, prefix: str) -> InvalidArgument:
    return InvalidArgument(f"{prefix}.{error.field}", error.reason)


def balances_message(balances: Balances, currency: Currency) -> pb.Balances:
    message = pb.Balances()
    _fill_balances(message, balances, currency)
    return message


def _fill_balances(message: pb.Balances, balances: Balances, currency: Currency) -> None:
    message.cash = format_amount(balances.cash, currency)
    message.bonus = format_amount(balances.bonus, currency)
    message.held = format_amount(balances.held, currency)


_OUTCOME_VALUES = {outcome: pb.Outcome.Value(f"OUTCOME_{outcome.value}") for outcome in Outcome}


def outcome_value(outcome: Outcome) -> int:
    return _OUTCOME_VALUES[outcome]


def command_response(result: CommandResult, currency: Currency) -> pb.CommandResponse:
    # The nested balances are filled in place: building them apart and passing them in would
    # copy each into the response, once per command (measured: benchmarks/README.md).
    response = pb.CommandResponse(
        outcome=outcome_value(result.outcome),
        original_outcome=outcome_value(result.original_outcome),
        journal_id=str(result.journal_id) if result.journal_id else "",
        wallet_version=result.wallet_version,
    )
    _fill_balances(response.balances, result.balances, currency)
    # Outside replays the balances after the command are the current ones: formatted once.
    if result.balances_after == result.balances:
        response.balances_after.CopyFrom(response.balances)
    else:
        _fill_balances(response.balances_after, result.balances_after, currency)
    return response


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def entry_message(event: WalletEvent, currency: Currency) -> pb.Entry:
    entry = pb.Entry(
        wallet_version=event.originator_version,
        event_type=event_tag(type(event)),
        journal_id=str(event.journal_id),
        idempotency_key=event.key,
        recorded_at=timestamp(event.recorded_at),
        postings=[
            pb.Posting(account=p.account, amount=format_amount(p.amount, currency))
            for p in event.postings
        ],
    )
    if event.occurred_at is not None:
        entry.occurred_at.CopyFrom(timestamp(event.occurred_at))
    if isinstance(event, CommandRefused):
        entry.refused_outcome = outcome_value(Outcome(event.outcome))
    return entry
