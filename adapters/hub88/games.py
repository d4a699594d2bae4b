"""The operator's game catalogue: the Hub88 game codes players may stake on, and the
engine's game category each one counts as for bonus wagering (slots 100 %, table 10 %, ...).

A bet naming a game outside the catalogue is RS_ERROR_INVALID_GAME and never reaches the
engine. The file is TOML:

    [games]
    "pragmatic_sweetbonanza" = "slots"
    "evo_lightningroulette" = "table"
"""

import re
import tomllib
from pathlib import Path

GAME_COUNT_MAX = 100_000
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


def load_catalogue(path: Path) -> dict[str, str]:
    """game code -> game category; a malformed file is refused naming the entry."""
    games = tomllib.loads(path.read_text()).get("games")
    if not isinstance(games, dict) or not games:
        raise ValueError(f"{path}: needs a non-empty [games] table")
    if len(games) > GAME_COUNT_MAX:
        raise ValueError(f"{path}: more than {GAME_COUNT_MAX} games")
    for code, category in games.items():
        if not _IDENTIFIER.fullmatch(code):
            raise ValueError(f"{path}: game code {code[:64]!r} is not an identifier")
        if not isinstance(category, str) or not _IDENTIFIER.fullmatch(category):
            raise ValueError(f"{path}: games.{code} must name a game category")
    return dict(games)
