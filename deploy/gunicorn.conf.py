"""gunicorn alternative to `communitybot serve --workers N` (pip install -e '.[gunicorn]').

    gunicorn -c deploy/gunicorn.conf.py bot.app:gunicorn_app

Every worker runs serve's start-up checks (settings, database migrated, Redis, roster); what
fails is logged as one "community-bot cannot start: ..." line and gunicorn stops. Several
workers need PostgreSQL + Redis: without Redis a second worker is refused.

/metrics adds up every worker, whichever answers the scrape: the hooks below give the workers a
fresh prometheus_client multiprocess directory, communitybot-metrics-<master pid> in the
temporary directory (what a master killed outright left there is removed at the next start), mark
an exited worker's live gauges dead, and remove the directory when gunicorn stops. A
PROMETHEUS_MULTIPROC_DIR set already is used instead, its earlier run's metrics files removed
before any worker starts (every .db file there is added up: a killed run's would count again).
The master reads no settings here: loading them imports prometheus_client, which picks its
single- or multi-process mode at import, before the directory would be set.
"""

import os
import shutil
import tempfile

bind = "127.0.0.1:8080"
workers = 4
worker_class = "aiohttp.GunicornWebWorker"
timeout = 30
graceful_timeout = 20
keepalive = 30
accesslog = None  # the app logs JSON lines with request ids itself


_made_dir: str | None = None
METRICS_PREFIX = "communitybot-metrics-"  # <prefix><master pid> in the temporary directory


def on_starting(server):  # the arbiter, before any worker is forked (workers read it at import)
    global _made_dir
    from pathlib import Path

    from bot.metrics_dir import clear_metrics_dir, fresh_metrics_dir

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        if os.path.isdir(given):
            clear_metrics_dir(Path(given))
        return
    _made_dir = str(fresh_metrics_dir(Path(tempfile.gettempdir()), METRICS_PREFIX))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_dir


def child_exit(server, worker):  # a worker gone: its live gauges stop counting
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_dir:
        shutil.rmtree(_made_dir, ignore_errors=True)
