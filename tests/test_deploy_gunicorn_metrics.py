"""deploy/gunicorn.conf.py's prometheus multiprocess directory across a master killed outright
(kill -9, the OOM killer): the next start counts from zero, never adding what the killed run
left, and leaves no directory behind per kill — with the directory the config makes and with one
the operator set (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import psutil

from storage.migrate import upgrade
from tests.harness import free_port
from tests.test_gunicorn import _env, _gunicorn, _hello, _wait_healthy
from tests.test_operations import _scrape, _total


async def _run_once(env: dict[str, str], tmp_path: Path, openid: str) -> tuple[subprocess.Popen[bytes], float]:
    """Start gunicorn (one worker), have one resident say hello; gunicorn and the count scraped."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    proc = _gunicorn(env, port, 1, log)
    await _wait_healthy(proc, port, log)
    async with aiohttp.ClientSession() as http:
        assert "您好" in await _hello(http, port, openid)
    return proc, _total(await _scrape(f"http://127.0.0.1:{port}"), "cb_messages_total")


async def _kill_outright(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the master; wait until its worker, orphaned, has stopped too."""
    workers = psutil.Process(proc.pid).children()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers):
        assert time.monotonic() < deadline, "the orphaned worker kept running"
        await asyncio.sleep(0.2)


async def _restart_after_a_kill(env: dict[str, str], tmp_path: Path) -> float:
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    first, counted = await _run_once(env, tmp_path, "o-metrics-1")
    assert counted == 1.0
    await _kill_outright(first)
    second, counted = await _run_once(env, tmp_path, "o-metrics-2")
    second.terminate()
    assert second.wait(30) == 0
    return counted


async def test_the_configs_own_directory_after_a_killed_master(tmp_path: Path) -> None:
    """The killed master's directory (one per kill, in the temporary directory) is removed by the
    next start; that one's by its own stop."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    counted = await _restart_after_a_kill(_env(tmp_path, TMPDIR=str(tmp)), tmp_path)
    assert counted == 1.0
    assert [p.name for p in tmp.iterdir() if p.name.startswith("communitybot-metrics-")] == []


async def test_a_directory_the_operator_set_after_a_killed_master(tmp_path: Path) -> None:
    given = tmp_path / "prom"
    given.mkdir()
    (given / "notes.txt").write_text("not prometheus's")
    counted = await _restart_after_a_kill(_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(given)), tmp_path)
    assert counted == 1.0  # was 2.0: the killed run's files were added up with the new run's
    assert (given / "notes.txt").exists()  # only prometheus_client's own files are cleared
