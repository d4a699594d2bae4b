"""Account names (docs/contract.md, Accounts). Player accounts are liabilities of the casino.

Sign convention: a posting's amount is the change of the account's balance, and a player
account's balance is what the casino owes the player. Every journal's amounts sum to zero
per currency, so house, PSP and chain accounts carry the opposite signs.
"""


def player_cash(player_id: str, currency: str) -> str:
    return f"player:{player_id}:cash:{currency}"


def player_bonus(player_id: str, currency: str) -> str:
    return f"player:{player_id}:bonus:{currency}"


def player_held(player_id: str, currency: str) -> str:
    return f"player:{player_id}:held:{currency}"


def house_games(provider: str, currency: str) -> str:
    return f"house:games:{provider}:{currency}"


def house_bonus(currency: str) -> str:
    return f"house:bonus:{currency}"


def rail_account(rail: str, rail_id: str, currency: str) -> str:
    """A payment gateway (`psp`) or blockchain network (`chain`) clearing account."""
    assert rail in RAILS, rail
    return f"{rail}:{rail_id}:{currency}"


def suspense(currency: str) -> str:
    return f"suspense:{currency}"


RAILS = ("psp", "chain")
