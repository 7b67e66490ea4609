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


def test_a_side_named_by_a_commit_is_served_from_that_commit_alone() -> None:
    """--after REV, like --before, measures a worktree of the commit: uncommitted work in the
    checkout (other people's, on a shared machine) stays out of the figures."""
    import subprocess

    from bench.compare import REPO, worktree

    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    with worktree(head) as root:
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True,
                                text=True, check=True).stdout
        at = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
        assert (root / "bench" / "compare.py").is_file()
    assert at == head and status == ""
    assert not root.exists()
