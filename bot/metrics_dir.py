"""The directory of the workers' prometheus_client multiprocess files (`serve --workers N`,
deploy/gunicorn.conf.py): made fresh per service, what an earlier run left removed.

Imports nothing of prometheus_client: gunicorn's master calls it before its workers are forked,
and prometheus_client picks its single- or multi-process mode when it is first imported.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path


def fresh_metrics_dir(root: Path, prefix: str = "") -> Path:
    """An empty directory for this service's workers' metrics files, root/<prefix><this pid>
    (`serve --workers N`: var/prometheus/<pid>; deploy/gunicorn.conf.py: the temporary directory's
    communitybot-metrics-<pid>); what a service that was killed left there (<prefix><its pid>, that
    pid no longer running) is removed."""
    root.mkdir(exist_ok=True)
    for old in root.iterdir():
        pid = old.name.removeprefix(prefix) if old.name.startswith(prefix) else ""
        if pid.isdigit() and old.is_dir() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    path = root / f"{prefix}{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


# The files prometheus_client's multiprocess mode writes: <kind>_<pid>.db (gauges add their mode).
_METRICS_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


def clear_metrics_dir(path: Path) -> int:
    """Remove the metrics files of an earlier run from a multiprocess directory the operator set
    (PROMETHEUS_MULTIPROC_DIR), before any worker starts: every .db file there is added up, so a
    killed run's files would be counted again with the new run's. Other files are left; returns
    how many were removed."""
    removed = 0
    for old in path.iterdir():
        if _METRICS_FILE.fullmatch(old.name) and old.is_file():
            old.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    """Whether a process with this pid runs (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
