"""`communitybot serve --workers 2` on PostgreSQL + Redis as the operator runs it, for real: the
parent restarts a worker that dies (and gives up, exit 1, when workers keep dying at once, so
systemd restarts the service), /metrics adds up every worker whichever answers, a second serve on
the same address is refused, and behind a trusted proxy saying https the console's cookies are
Secure."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot import cli
from storage.migrate import upgrade
from tests.conftest import PG_ADMIN_URL, _admin, _run
from tests.harness import PrivateRedis, Resident, ServerProcess, said_serving_then_accepts

REPO = Path(__file__).resolve().parents[1]


class Service(ServerProcess):
    """`communitybot serve --workers 2`: the parent and its two worker processes."""

    def start(self) -> None:
        """Start the parent (which starts the workers)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--workers", "2"],
                env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            )

    def workers(self) -> list[int]:
        """The worker processes' pids (not multiprocessing's resource tracker)."""
        assert self.proc is not None
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []
        pids = []
        for child in children:
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    pids.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return pids

    def text(self) -> str:
        """What the service wrote so far."""
        return self.log.read_text(errors="replace")

    async def wait_ready(self, timeout: float = 90) -> None:
        """Until /healthz answers 200, both workers run and the parent has said it serves."""
        await super().wait_ready(timeout)
        deadline = time.monotonic() + timeout
        while (len(self.workers()) != 2 or "serving on" not in self.text()) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert len(self.workers()) == 2 and "serving on" in self.text(), self.text()[-3000:]

    def stop(self) -> None:
        """SIGTERM to the parent, which stops its workers (SIGKILL to all after 10 s)."""
        workers = self.workers() if self.proc is not None and self.proc.poll() is None else []
        super().stop()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def backing() -> Iterator[tuple[str, PrivateRedis]]:
    """A migrated PostgreSQL database and a Redis server of this module alone."""
    name = f"cb_ops_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    redis = PrivateRedis(persist=False)
    _run(_admin, f'CREATE DATABASE "{name}"')
    try:
        upgrade(url)
        redis.start()
        yield url, redis
    finally:
        redis.cleanup()
        _run(_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _service(backing: tuple[str, PrivateRedis], tmp: Path) -> Service:
    url, redis = backing
    return Service({
        "CB_DATABASE_URL": url, "CB_REDIS_URL": redis.url, "CB_VAR_DIR": str(tmp / "var"),
        "CB_OUTBOX_SENDER": "0", "CB_CONSOLE_ADMIN_PASSWORD": "a-real-password-1",
    }, tmp, "serve")


@pytest.fixture(scope="module")
def service(backing: tuple[str, PrivateRedis], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service, serving with two workers."""
    svc = _service(backing, tmp_path_factory.mktemp("ops"))
    svc.start()
    try:
        asyncio.run(svc.wait_ready())
        yield svc
    finally:
        svc.stop()


async def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One /metrics scrape on a new connection (so any worker may answer): sample → value."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        async with http.get(f"{url}/metrics") as resp:
            assert resp.status == 200
            body = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body) for s in family.samples
    }


def _total(scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in scrape.items() if n == name and all((k, x) in ls for k, x in labels.items()))


async def test_metrics_add_up_every_worker_whichever_answers(service: Service) -> None:
    before = await _scrape(service.url)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        residents = [Resident(http, f"o-ops-metrics-{uuid.uuid4().hex[:6]}-{i}", encrypt=False) for i in range(6)]
        replies = await asyncio.gather(*(r.post(service.url, r.text("你好")) for r in residents))
        handoff = await residents[0].post(service.url, residents[0].text("转人工"))
    assert all("您好" in reply for reply in replies), replies
    assert "转接人工" in handoff, handoff
    scrapes = [await _scrape(service.url) for _ in range(12)]
    messages = {_total(s, "cb_messages_total") for s in scrapes}
    replies_timed = {_total(s, "cb_reply_seconds_count") for s in scrapes}
    tickets = {_total(s, "cb_tickets_total", kind="handoff") for s in scrapes}
    assert len(messages) == len(replies_timed) == len(tickets) == 1, (messages, replies_timed, tickets)
    assert messages.pop() - _total(before, "cb_messages_total") == 7
    assert replies_timed.pop() - _total(before, "cb_reply_seconds_count") == 7
    assert tickets.pop() - _total(before, "cb_tickets_total", kind="handoff") == 1


async def test_a_worker_that_dies_is_logged_and_started_again_and_its_counts_kept(service: Service) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        resident = Resident(http, f"o-ops-kill-{uuid.uuid4().hex[:6]}", encrypt=False)
        await resident.post(service.url, resident.text("你好"))
    before = await _scrape(service.url)
    victim, survivor = service.workers()
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = service.workers()
        if len(pids) == 2 and victim not in pids:
            break
        await asyncio.sleep(0.2)
    assert survivor in service.workers() and victim not in service.workers(), service.text()[-2000:]
    await service.wait_ready()
    log = service.text()
    assert "exited (code -9, SIGKILL); starting it again in 0.5 s" in log, log[-2000:]  # the first time: at once
    assert f'"pid": {victim}' in log
    after = await _scrape(service.url)
    # The dead worker's messages still count: totals never go back.
    assert _total(after, "cb_messages_total") == _total(before, "cb_messages_total") >= 1


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_workers_of_a_parent_killed_outright_stop_and_free_the_port(
    backing: tuple[str, PrivateRedis], tmp_path: Path
) -> None:
    """The serve parent SIGKILLed (the OOM killer, kill -9): its workers used to go on serving,
    orphaned and unsupervised, and the next `serve` could not listen on the port. They stop."""
    svc = _service(backing, tmp_path)
    svc.start()
    workers: list[int] = []
    try:
        await svc.wait_ready()
        workers = svc.workers()
        svc.kill()
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        alive = [pid for pid in workers if _running(pid)]
        assert not alive, svc.text()[-2000:]
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", svc.port))  # free again for the next serve
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_second_serve_on_the_same_address_is_refused(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("CB_"):
            monkeypatch.delenv(name)
    for name, value in service.env.items():
        if name.startswith("CB_"):
            monkeypatch.setenv(name, value)
    assert service.proc is not None
    assert cli.main(["serve", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert f"another communitybot serve is listening on 127.0.0.1:{service.port} (pid {service.proc.pid})" in err, err
    assert "serving on" not in err
    # Another var/ (no lock to see): the port itself, probed without sharing it, is refused.
    monkeypatch.setenv("CB_VAR_DIR", str(tmp_path / "other-var"))
    assert cli.main(["serve", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{service.port}" in err and "in use" in err, err
    assert "serving on" not in err
    assert len(service.workers()) == 2


async def test_workers_that_keep_dying_at_once_stop_the_service_with_an_error(
    backing: tuple[str, PrivateRedis], tmp_path: Path
) -> None:
    doomed = _service(backing, tmp_path)
    doomed.start()
    assert doomed.proc is not None
    killed: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while doomed.proc.poll() is None and time.monotonic() < deadline:
            for pid in doomed.workers():
                if pid not in killed:
                    killed.add(pid)
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.05)
        code = doomed.proc.poll()
    finally:
        doomed.stop()
    log = doomed.text()
    assert code == 1, log[-3000:]
    assert "times in a row within 10 s of starting: stopping the service" in log, log[-3000:]
    assert "starting it again in 0.5 s" in log and "starting it again in 4.0 s" in log, log[-3000:]
    assert not (tmp_path / "var" / "prometheus" / str(doomed.proc.pid)).exists()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """The test client connects from 127.0.0.1, standing in for nginx on the same host."""
    return {"trusted_proxies": ["127.0.0.1"]}


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
    {"X-Forwarded-Proto": "https"},  # a proxy that names the scheme only
])
async def test_behind_a_trusted_proxy_saying_https_console_cookies_are_secure(
    client: TestClient[Any, Any], headers: dict[str, str]
) -> None:
    page = await client.get("/console/login", headers=headers)
    assert page.status == 200
    assert "Secure" in page.headers["Set-Cookie"], page.headers["Set-Cookie"]
    plain = await client.get("/console/login")  # a local request without the headers: plain http
    assert "Secure" not in plain.headers["Set-Cookie"]


async def test_serving_on_is_said_once_the_workers_listen(backing: tuple[str, PrivateRedis], tmp_path: Path) -> None:
    """`serve --workers 2` said "serving on" as soon as it had started the workers, a second or
    more before they listened (connections refused meanwhile): an operator or a script waiting
    for the line was told a lie. It is said once every worker listens, and once."""
    svc = _service(backing, tmp_path)
    svc.start()
    try:
        said_serving_then_accepts(svc)
        await svc.wait_ready()
        assert svc.text().count("serving on") == 1
    finally:
        svc.stop()


def test_the_banner_warns_that_links_would_point_at_the_listening_address(service: Service) -> None:
    banner = "\n".join(line for line in service.text().splitlines() if not line.startswith("{"))  # not the JSON logs
    assert f"community-bot serving on http://127.0.0.1:{service.port} (2 workers" in banner, banner
    assert "WARNING: CB_PUBLIC_BASE_URL is not set" in banner, banner
