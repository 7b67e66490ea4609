"""The benchmark's per-worker CPU budget: the quota is written, holds a busy process to it, and
leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.cpu_budget import V1_ROOT, BudgetUnavailable, CpuBudget

BUSY = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"


def test_a_budget_outside_the_machine_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        CpuBudget(0)
    with pytest.raises(ValueError, match="outside"):
        CpuBudget((os.cpu_count() or 1) + 1)


def test_v2_writes_cpu_max_and_enables_the_controller(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory\n")
    budget = CpuBudget(0.5, v1_root=tmp_path / "absent", v2_root=tmp_path)
    budget.add(4242)
    (group,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (group / "cpu.max").read_text() == "50000 100000"
    assert (group / "cgroup.procs").read_text() == "4242"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu"


def test_no_controller_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("memory io\n")
    budget = CpuBudget(0.5, v1_root=tmp_path / "absent", v2_root=tmp_path)
    with pytest.raises(BudgetUnavailable, match="no CPU cgroup controller"):
        budget.add(4242)


def test_a_busy_process_is_held_to_its_budget_and_the_group_removed() -> None:
    """On this machine's real CPU controller: a spinning process capped at 0.2 core gets about
    that, is counted as throttled, and the cgroup is gone afterwards."""
    assert (V1_ROOT / "cpu.cfs_quota_us").exists() or Path("/sys/fs/cgroup/cgroup.controllers").exists()
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        with CpuBudget(0.2) as budget:
            budget.add(proc.pid)
            groups = list(budget._groups)
            started = psutil.Process(proc.pid).cpu_times()
            time.sleep(1.5)
            ended = psutil.Process(proc.pid).cpu_times()
            used = (ended.user + ended.system) - (started.user + started.system)
            assert used < 0.6  # 0.2 core over 1.5 s is 0.3 s; an uncapped spin would use ~1.5 s
            assert budget.throttled_s() > 0
        assert groups and not any(group.exists() for group in groups)
    finally:
        proc.kill()
        proc.wait()


def test_the_workers_to_cap_are_waited_for_when_one_starts_late() -> None:
    """`serve --workers 2` answers /healthz from its first worker while the second may still be
    starting: the bench waits for both before capping them (it failed with "found 1")."""
    from bench.runner import _worker_pids

    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])]\n"
        "time.sleep(1.5)\n"
        "kids.append(subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']))\n"
        "time.sleep(30)\n"
    )])
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = _worker_pids(parent.pid, 2)
        assert len(set(pids)) == 2 and parent.pid not in pids
    finally:
        for child in psutil.Process(parent.pid).children():
            child.kill()
        parent.kill()
        parent.wait()
