"""A server-rendered bar chart (SVG geometry only): daily GGR, deposits and withdrawals.

No script and no chart library: the page stays within a CSP that allows no script, and the
chart is the same for every browser. Amounts become floats only for the bars' heights; the
labels show the exact figures.
"""

from dataclasses import dataclass

CHART_WIDTH = 720
CHART_HEIGHT = 220
SERIES = (
    ("ggr", "GGR", "#2b6cb0"),
    ("deposits", "Deposits", "#2f855a"),
    ("withdrawals", "Withdrawals", "#c05621"),
)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    baseline_y: float
    labels: list[tuple[float, str]]  # (x, day) under each day's group
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def daily_chart(days: list[dict], describe) -> Chart:
    """Bars for each day's series; `describe(minor)` formats an amount for its tooltip."""
    values = [day[name] for day in days for name, _, _ in SERIES]
    top = max([0, *values])
    bottom = min([0, *values])
    span = (top - bottom) or 1
    plot_height = CHART_HEIGHT - 30
    baseline_y = 10 + plot_height * top / span
    group = (CHART_WIDTH - 20) / max(len(days), 1)
    bar_width = group / (len(SERIES) + 1)
    bars, labels = [], []
    for index, day in enumerate(days):
        left = 10 + index * group
        labels.append((left + group / 2, day["day"]))
        for offset, (name, label, color) in enumerate(SERIES):
            value = day[name]
            height = plot_height * abs(value) / span
            y = baseline_y - height if value >= 0 else baseline_y
            title = f"{day['day']} {label}: {describe(value)}"
            bars.append(Bar(left + offset * bar_width, y, bar_width * 0.9, height, color, title))
    return Chart(bars=bars, baseline_y=baseline_y, labels=labels)
