"""Bar charts as plain geometry, drawn by templates as inline SVG (no JavaScript library)."""

from __future__ import annotations

from dataclasses import dataclass

BAR_HEIGHT = 12
BAR_GAP = 4
GROUP_GAP = 14
TOP = 28  # room for the legend
LABEL_WIDTH = 110
BAR_WIDTH = 300


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
    series_count = max(1, len(legend), *(len(vs) for _, vs in rows))
    stride = series_count * (BAR_HEIGHT + BAR_GAP) + GROUP_GAP
    groups = []
    for i, (label, vs) in enumerate(rows):
        y0 = TOP + i * stride
        bars = []
        for j, v in enumerate(vs):
            text = "—" if v is None else (f"{v * 100:.0f}%" if percent else f"{v:g}")
            width = 0.0 if v is None or v <= 0 else max(1.0, BAR_WIDTH * v / top)
            bars.append(Bar(j, v or 0.0, text, LABEL_WIDTH, y0 + j * (BAR_HEIGHT + BAR_GAP), width, BAR_HEIGHT))
        label_y = y0 + (series_count * (BAR_HEIGHT + BAR_GAP) - BAR_GAP) / 2
        groups.append(Group(label, label_y, tuple(bars)))
    # with no rows, one row's room is kept for the template's empty line (it was cut off by the frame)
    return Chart(tuple(groups), tuple(legend), LABEL_WIDTH + BAR_WIDTH + 60, TOP + max(1, len(rows)) * stride)
