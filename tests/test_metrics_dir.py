"""bot.metrics_dir: the workers' prometheus multiprocess directory made fresh per service (a
killed service's removed), and an operator's directory cleared of an earlier run's files only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.metrics_dir import clear_metrics_dir, fresh_metrics_dir


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(proc.stdout)


def test_a_fresh_directory_removes_what_killed_services_left_and_keeps_a_running_ones(tmp_path: Path) -> None:
    root = tmp_path / "prometheus"
    killed, running = root / str(_dead_pid()), root / str(os.getppid())
    for left in (killed, running, root / str(os.getpid()), root / "notes"):
        left.mkdir(parents=True)
        (left / "counter_1.db").write_bytes(b"x")
    made = fresh_metrics_dir(root)
    assert made == root / str(os.getpid()) and list(made.iterdir()) == []  # its own, emptied
    assert not killed.exists() and running.exists() and (root / "notes").exists()


def test_with_a_prefix_only_its_own_names_are_looked_at(tmp_path: Path) -> None:
    """gunicorn's directories share the temporary directory with everything else there."""
    dead = _dead_pid()
    killed, other = tmp_path / f"communitybot-metrics-{dead}", tmp_path / str(dead)
    for left in (killed, other):
        left.mkdir()
    made = fresh_metrics_dir(tmp_path, "communitybot-metrics-")
    assert made.name == f"communitybot-metrics-{os.getpid()}"
    assert not killed.exists() and other.exists()


def test_clearing_an_operators_directory_removes_only_metrics_files(tmp_path: Path) -> None:
    names = ["counter_12.db", "gauge_livemostrecent_12.db", "gauge_all_7.db", "histogram_12.db", "summary_3.db"]
    kept = ["notes.txt", "app.db", "counter_x.db"]
    for name in names + kept:
        (tmp_path / name).write_bytes(b"x")
    assert clear_metrics_dir(tmp_path) == len(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
