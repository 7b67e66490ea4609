"""A CPU budget per worker process, through the kernel's CFS quota (cgroup v1 `cpu` or v2 `cpu.max`).

Why the benchmark has it: the scaling target compares two workers with one. On a machine where the
workers, PostgreSQL, Redis and the load generator all share two cores, one worker at its maximum
already keeps most of both busy, so a second worker has nothing left to scale into; the figure then
measures the machine, not the service. Giving every worker the same fixed budget (say half a core)
leaves the shared services and the load generator room, and asks the question the target is about:
does doubling the workers' CPU double the messages answered, or does something shared (a lock, the
ticket counter, the database) serialise them?

    with CpuBudget(0.5) as budget:
        budget.add(pid)            # that process and all its threads get at most 0.5 core
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType

PERIOD_US = 100_000
V1_ROOT = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")


class BudgetUnavailable(RuntimeError):
    """This machine gives the benchmark no writable CPU controller."""


class CpuBudget:
    """Processes capped at `cores` of CPU each, every one in a cgroup of its own; removed on exit."""

    def __init__(self, cores: float, *, v1_root: Path = V1_ROOT, v2_root: Path = V2_ROOT) -> None:
        if not 0.01 <= cores <= (os.cpu_count() or 1):
            raise ValueError(f"a CPU budget of {cores} cores is outside 0.01 … {os.cpu_count()}")
        self.cores = cores
        self.quota_us = int(cores * PERIOD_US)
        self._v1_root, self._v2_root = v1_root, v2_root
        self._groups: list[Path] = []
        self._tag = uuid.uuid4().hex[:8]

    def _root(self) -> tuple[Path, bool]:
        """The controller's root and whether it is cgroup v2."""
        if (self._v1_root / "cpu.cfs_quota_us").exists():
            return self._v1_root, False
        controllers = self._v2_root / "cgroup.controllers"
        if controllers.exists() and "cpu" in controllers.read_text().split():
            subtree = self._v2_root / "cgroup.subtree_control"
            if "cpu" not in subtree.read_text().split():
                subtree.write_text("+cpu")
            return self._v2_root, True
        raise BudgetUnavailable("no CPU cgroup controller found (cgroup v1 cpu or v2 cpu.max)")

    def add(self, pid: int) -> None:
        """Cap pid (all its threads) at the budget."""
        try:
            root, v2 = self._root()
        except OSError as exc:
            raise BudgetUnavailable(f"the CPU controller is not writable here: {exc}") from exc
        group = root / f"cb-bench-{self._tag}-{pid}"
        try:
            group.mkdir()
            if v2:
                (group / "cpu.max").write_text(f"{self.quota_us} {PERIOD_US}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(self.quota_us))
            self._groups.append(group)
            (group / "cgroup.procs").write_text(str(pid))
        except OSError as exc:
            raise BudgetUnavailable(f"cannot cap process {pid} in {group}: {exc}") from exc

    def throttled_s(self) -> float:
        """Seconds the capped processes were held back by the quota so far (all groups)."""
        total = 0.0
        for group in self._groups:
            stat = group / "cpu.stat"
            if not stat.exists():
                continue
            fields = dict(line.split() for line in stat.read_text().splitlines() if line.strip())
            if "throttled_usec" in fields:
                total += int(fields["throttled_usec"]) / 1e6
            elif "throttled_time" in fields:
                total += int(fields["throttled_time"]) / 1e9
        return total

    def close(self) -> None:
        """Move whatever is still in the groups back to the root and remove the groups."""
        for group in self._groups:
            root = group.parent
            procs = group / "cgroup.procs"
            try:
                for pid in procs.read_text().split():
                    try:
                        (root / "cgroup.procs").write_text(pid)
                    except OSError:
                        continue  # it exited meanwhile
                group.rmdir()
            except OSError:
                continue  # already gone
        self._groups.clear()

    def __enter__(self) -> CpuBudget:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
