"""Back-office actions: a submitted form becomes the same command a gRPC call would send.

Each action names its gRPC method, so the role table of the gRPC server decides who may use
it (`ledger.api.auth.authorize`), and the command goes through `Ledger.execute`, which
validates and applies it as the servicer's path does. Every form carries an idempotency key
generated when the form was drawn: submitting it twice moves money once (the second answer
is DUPLICATE), and the key is shown on the result.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ledger.api.auth import PermissionDenied, Principal, authorize
from ledger.console.reads import LIMIT_LABELS
from ledger.core import commands as c
from ledger.core.errors import InvalidArgument
from ledger.core.money import CurrencyRegistry, parse_amount

KEY_PREFIX = "console-"
LIMIT_FIELDS = tuple(name for name, _ in LIMIT_LABELS)


def new_idempotency_key() -> str:
    """A fresh key for one drawn form: unguessable, so two forms never share one."""
    return KEY_PREFIX + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Action:
    method: str  # the gRPC method: what the role table knows it by
    build: Callable[[dict[str, str], CurrencyRegistry], c.Command]


def _common(form: dict[str, str], registry: CurrencyRegistry) -> dict:
    currency = form.get("currency", "")
    registry.get(currency)  # InvalidArgument naming the field for an unknown currency
    return {
        "idempotency_key": form.get("idempotency_key", ""),
        "player_id": form.get("player_id", ""),
        "currency": currency,
    }


def _withdrawal(command_type: type[c.Command]):
    def build(form: dict[str, str], registry: CurrencyRegistry) -> c.Command:
        key = form.get("withdrawal_key", "")
        return command_type(**_common(form, registry), withdrawal_key=key)

    return build


def _attribute(form: dict[str, str], registry: CurrencyRegistry) -> c.Command:
    return c.AttributeSuspense(**_common(form, registry), item_key=form.get("item_key", ""))


def _return(form: dict[str, str], registry: CurrencyRegistry) -> c.Command:
    common = {**_common(form, registry), "player_id": ""}
    return c.ReturnSuspense(**common, item_key=form.get("item_key", ""))


def _forfeit(form: dict[str, str], registry: CurrencyRegistry) -> c.Command:
    return c.ForfeitBonus(**_common(form, registry))


def _set_limits(form: dict[str, str], registry: CurrencyRegistry) -> c.Command:
    common = _common(form, registry)
    currency = registry.get(common["currency"])
    amounts = {
        name: parse_amount(form[name].strip(), currency, field=name)
        if form.get(name, "").strip()
        else None
        for name in LIMIT_FIELDS
    }
    return c.SetLimits(**common, **amounts, self_excluded_until=_moment(form))


def _moment(form: dict[str, str]) -> datetime | None:
    text = form.get("self_excluded_until", "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument("self_excluded_until", "is not an ISO 8601 date and time") from None
    if moment.utcoffset() is None:
        raise InvalidArgument("self_excluded_until", "must carry a time zone, e.g. +00:00")
    return moment


ACTIONS: dict[str, Action] = {
    "attribute-suspense": Action("AttributeSuspense", _attribute),
    "return-suspense": Action("ReturnSuspense", _return),
    "complete-withdrawal": Action("CompleteWithdrawal", _withdrawal(c.CompleteWithdrawal)),
    "cancel-withdrawal": Action("CancelWithdrawal", _withdrawal(c.CancelWithdrawal)),
    "fail-withdrawal": Action("FailWithdrawal", _withdrawal(c.FailWithdrawal)),
    "forfeit-bonus": Action("ForfeitBonus", _forfeit),
    "set-limits": Action("SetLimits", _set_limits),
}


def allowed_actions(principal: Principal) -> frozenset[str]:
    """The actions the principal's role may take, by the gRPC server's role table."""
    allowed = set()
    for name, action in ACTIONS.items():
        try:
            authorize(principal, action.method, None)
        except PermissionDenied:
            continue
        allowed.add(name)
    return frozenset(allowed)
