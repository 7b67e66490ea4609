"""Bar charts as plain geometry, drawn by templates as inline SVG (no JavaScript library)."""

from __future__ import annotations

from dataclasses import dataclass

ROW_HEIGHT = 30
BAR_HEIGHT = 9
LABEL_WIDTH = 150
BAR_WIDTH = 380


@dataclass(frozen=True)
class Bar:
    """One bar: its series, value, shown text and geometry."""

    series: int
    value: float
    text: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Group:
    """One labelled row of bars (a grid, a worker)."""

    label: str
    y: float
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Chart:
    """A horizontal grouped bar chart: rows of bars, the legend, and the drawing size."""

    groups: tuple[Group, ...]
    legend: tuple[str, ...]
    width: int
    height: int
    label_width: int = LABEL_WIDTH


def bar_chart(
    rows: list[tuple[str, list[float | None]]], legend: list[str], *, maximum: float | None = None,
    percent: bool = False,
) -> Chart:
    """Lay out rows of values (None: no bar, shown as '—') against a common scale."""
    values = [v for _, vs in rows for v in vs if v is not None]
    top = maximum if maximum is not None else max(values, default=0.0)
    top = top or 1.0
    groups = []
    series_count = max(1, len(legend))
    for i, (label, vs) in enumerate(rows):
        y0 = 20 + i * (ROW_HEIGHT + (series_count - 1) * BAR_HEIGHT)
        bars = []
        for j, v in enumerate(vs):
            text = "—" if v is None else (f"{v * 100:.0f}%" if percent else f"{v:g}")
            width = 0.0 if v is None else max(1.0, BAR_WIDTH * v / top) if v > 0 else 0.0
            bars.append(Bar(j, v or 0.0, text, LABEL_WIDTH, y0 + j * (BAR_HEIGHT + 2), width, BAR_HEIGHT))
        groups.append(Group(label, y0, tuple(bars)))
    height = 30 + len(rows) * (ROW_HEIGHT + (series_count - 1) * BAR_HEIGHT)
    return Chart(tuple(groups), tuple(legend), LABEL_WIDTH + BAR_WIDTH + 60, int(height))
