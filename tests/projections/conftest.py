"""A store with a realistic history, made by the demo, for projection and audit tests."""

import pytest
from click.testing import CliRunner

from ledger.cli.main import main


def make_history(database_url: str, players: int = 40, rounds: int = 6) -> None:
    """Fills the store with the demo's seeded casino history."""
    result = CliRunner().invoke(
        main,
        [
            "demo",
            "--database-url",
            database_url,
            "--players",
            str(players),
            "--rounds",
            str(rounds),
        ],
    )
    assert result.exit_code == 0, result.output


@pytest.fixture
def history(database_url) -> str:
    make_history(database_url)
    return database_url
