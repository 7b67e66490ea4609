"""bench/compare.py: the two sides measured in turns, and their medians."""

from __future__ import annotations

from bench.compare import Run, alternate, medians


async def test_sides_alternate_and_medians_are_per_side() -> None:
    order: list[str] = []
    figures = iter([(300.0, 3.0), (330.0, 2.8), (200.0, 4.5), (320.0, 2.9), (310.0, 3.1), (340.0, 2.7)])

    async def measure(side: str) -> Run:
        order.append(side)
        rate, cpu = next(figures)
        return Run(side, rate, cpu)

    runs = await alternate(("c1d8b42", "checkout"), 3, measure)
    assert order == ["c1d8b42", "checkout"] * 3
    assert medians(runs) == {"c1d8b42": (300.0, 3.1), "checkout": (330.0, 2.8)}
