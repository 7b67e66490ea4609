"""The documented gunicorn deployment (deploy/gunicorn.conf.py, bot.app:gunicorn_app) for real:
its workers run the same start-up checks as `communitybot serve`, refuse to boot in one clear
line (and the arbiter halts instead of respawning them), and serve residents on PostgreSQL +
Redis. Also: without Redis a second process on the same SQLite file is refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot import cli
from storage.migrate import upgrade
from tests.conftest import PG_ADMIN_URL, _admin
from tests.harness import PrivateRedis, Resident, ServerProcess, free_port
from tests.test_operations import _scrape, _total

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "deploy" / "gunicorn.conf.py"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CB_")}
    env.update({"CB_VAR_DIR": str(tmp_path / "var"), "CB_SIMULATOR": "0", "CB_LOG_LEVEL": "WARNING"})
    env.update(extra)
    return env


def _gunicorn(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONFIG), "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "bot.app:gunicorn_app"],
            env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )


def _ended(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("gunicorn kept running (respawning a worker that cannot boot?)") from None


@pytest.fixture
def stop_after() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _refused(tmp_path: Path, stop_after: list[subprocess.Popen[bytes]], env: dict[str, str], *, workers: int) -> str:
    """Start gunicorn expecting it to stop on its own, non-zero; its log."""
    log = tmp_path / "gunicorn.log"
    proc = _gunicorn(env, free_port(), workers, log)
    stop_after.append(proc)
    assert _ended(proc) != 0
    return log.read_text(errors="replace")


def test_a_worker_on_a_never_migrated_database_refuses_to_boot_and_gunicorn_stops(
    tmp_path: Path, stop_after: list[subprocess.Popen[bytes]]
) -> None:
    text = _refused(tmp_path, stop_after, _env(tmp_path), workers=1)
    assert "community-bot cannot start: the database is not migrated: run `communitybot db upgrade` first" in text, text
    assert "no such table" not in text


def test_bad_settings_are_named_and_gunicorn_stops(tmp_path: Path, stop_after: list[subprocess.Popen[bytes]]) -> None:
    text = _refused(tmp_path, stop_after, _env(tmp_path, CB_QUIET_HOURS="21:00-25:00"), workers=1)
    assert "community-bot cannot start: settings refused" in text and "CB_QUIET_HOURS" in text, text


def test_several_workers_without_redis_are_refused_in_one_line(
    tmp_path: Path, stop_after: list[subprocess.Popen[bytes]]
) -> None:
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    text = _refused(tmp_path, stop_after, _env(tmp_path), workers=2)
    assert "community-bot cannot start: another process (pid " in text, text
    assert "CB_REDIS_URL" in text


async def test_one_worker_on_the_embedded_default_serves(tmp_path: Path, stop_after: list[subprocess.Popen[bytes]]) -> None:
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    port = free_port()
    proc = _gunicorn(_env(tmp_path), port, 1, tmp_path / "gunicorn.log")
    stop_after.append(proc)
    await _wait_healthy(proc, port, tmp_path / "gunicorn.log")
    async with aiohttp.ClientSession() as http:
        reply = await _hello(http, port, "o-gunicorn-1")
    assert reply and "您好" in reply, reply


async def test_two_workers_on_postgresql_and_redis_serve_residents(
    tmp_path: Path, stop_after: list[subprocess.Popen[bytes]]
) -> None:
    name = f"cb_gu_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    redis = PrivateRedis(persist=False)
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, url)
        redis.start()
        port = free_port()
        log = tmp_path / "gunicorn.log"
        env = _env(tmp_path, CB_DATABASE_URL=url, CB_REDIS_URL=redis.url, CB_CONSOLE_ADMIN_PASSWORD="a-real-password-1")
        proc = _gunicorn(env, port, 2, log)
        stop_after.append(proc)
        await _wait_healthy(proc, port, log)
        async with aiohttp.ClientSession() as http:
            residents = [Resident(http, f"o-gunicorn-pg-{i}", encrypt=i % 2 == 1) for i in range(8)]
            replies = await asyncio.gather(*(r.post(f"http://127.0.0.1:{port}", r.text("你好")) for r in residents))
        assert all(reply and "您好" in reply for reply in replies), replies
        pids = _worker_pids(proc.pid)
        assert len(pids) == 2, pids
        # /metrics adds up both workers whichever answers (the config's multiprocess directory)
        scrapes = [await _scrape(f"http://127.0.0.1:{port}") for _ in range(10)]
        assert {_total(s, "cb_messages_total") for s in scrapes} == {8.0}, scrapes
    finally:
        for p in stop_after:
            if p.poll() is None:
                p.terminate()
                p.wait(20)
        redis.cleanup()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_second_serve_on_the_same_sqlite_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    first = ServerProcess(_env(tmp_path), tmp_path, "first")
    first.start()
    try:
        asyncio.run(first.wait_ready())
        for name in list(os.environ):
            if name.upper().startswith("CB_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("CB_VAR_DIR", str(tmp_path / "var"))
        code = cli.main(["serve", "--port", str(free_port())])
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"another process (pid {first.proc.pid}) is serving" in err and "CB_REDIS_URL" in err, err
        assert "serving on" not in err
    finally:
        first.stop()


async def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"gunicorn exited: {log.read_text(errors='replace')[-3000:]}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError(f"gunicorn not healthy: {log.read_text(errors='replace')[-3000:]}")


def _worker_pids(parent: int) -> list[int]:
    import psutil

    return [child.pid for child in psutil.Process(parent).children()]


async def _hello(http: aiohttp.ClientSession, port: int, openid: str) -> str:
    resident = Resident(http, openid, encrypt=False)
    return await resident.post(f"http://127.0.0.1:{port}", resident.text("你好"))
