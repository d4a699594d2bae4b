"""The fault suite's figures: each scenario records what it sent and what the faults did, and
the run's terminal summary prints one line per scenario, so a CI log shows how hard the
suite pushed (commands, kills, restarts) and that nothing was lost or doubled."""

import pytest

_FIGURES: list[tuple[str, dict[str, int | float]]] = []


@pytest.fixture
def fault_figures(request):
    """Records a scenario's figures (name -> number) for the run's summary."""

    def record(**figures: int | float) -> None:
        _FIGURES.append((request.node.nodeid, figures))

    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.write_sep("-", "fault suite figures")
    for nodeid, figures in _FIGURES:
        shown = " ".join(f"{name}={value}" for name, value in figures.items())
        terminalreporter.write_line(f"{nodeid}: {shown}")
