"""Shared fixtures: every test that takes `services` (or `client`, `wx`) runs on both backends —
SQLite with the embedded store, and PostgreSQL with Redis — against the real servers."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from bot.app import create_app
from bot.clock import FakeClock
from bot.services import Services, open_services
from bot.settings import Settings, load_settings
from bot.sim.wechat_client import WeChatSigner, event_xml, message_xml, text_xml
from storage.migrate import upgrade
from tests.harness import SilentNetwork

PG_ADMIN_URL = os.environ.get("CB_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CB_TEST_REDIS", "redis://127.0.0.1:6379/0")
DEMO_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
DEMO_WECOM_AES_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"
BACKENDS = ("embedded", "pg_redis")


async def _admin(sql: str) -> None:
    import asyncpg

    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _redis_ping() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    finally:
        await client.aclose()


def _run(coro_fn: Any, *args: Any) -> Any:
    """Run a coroutine function to completion on its own loop, even from inside a running one."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro_fn(*args)).result()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated; dropped afterwards."""
    name = f"cb_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        _run(_admin, f'CREATE DATABASE "{name}"')
        _run(_redis_ping)
    except Exception as exc:  # no skipping: the suite needs both servers for real
        pytest.exit(f"PostgreSQL/Redis unreachable ({exc!r}); run `make services`", returncode=3)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    _run(_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def clock() -> FakeClock:
    """The test's clock: 2026-11-23 10:00 in Shanghai, moved by hand."""
    return FakeClock()


def make_settings(backend: str, tmp_path: Path, db_url: str, **overrides: Any) -> Settings:
    """Settings for a test on one backend: no simulator, demo credentials, safe-mode key set."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "redis_url": REDIS_URL if backend == "pg_redis" else "",
        "var_dir": str(tmp_path / "var"),
        "simulator": False,
        "outbox_sender": False,  # tests call bot.channels.push.drain() themselves
        "wechat_aes_key": DEMO_AES_KEY,
        "wecom_aes_key": DEMO_WECOM_AES_KEY,
        "wechat_api_base": "http://127.0.0.1:9/unused-wechat",
        "wecom_api_base": "http://127.0.0.1:9/unused-wecom",
        "roster": str(Path(__file__).resolve().parents[1] / "config" / "roster.toml"),
        "scheduler": False,  # tests call bot.schedule.run_due themselves, with the FakeClock
    }
    values.update(overrides)
    return load_settings(**values)


async def truncate_all(url: str) -> None:
    """Empty every table of the PostgreSQL test database."""
    from storage.db import make_engine
    from storage.models import Base

    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which backend this test instance runs on."""
    return str(request.param)


@pytest.fixture
async def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A clean, migrated database on the backend."""
    if backend == "pg_redis":
        url = request.getfixturevalue("pg_url")
        await truncate_all(url)
        return str(url)
    template = request.getfixturevalue("sqlite_template")
    path = tmp_path / "bot.db"
    shutil.copy(template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap hashes for the console users tests create (the cost factor is the only difference)."""
    from bot.console import auth

    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)


@pytest.fixture(autouse=True)
def forget_finished_apps() -> Iterator[None]:
    """After each test, empty aiohttp's cache of built middleware chains. It keeps its last 1,024
    (handler, apps) pairs, and with them each test's application, services, engine and SQLAlchemy
    statement cache: the suite's one process grew past 1 GB, and a full garbage collection of
    that many objects stalls the event loop long enough to fail a wall-clock wait in a later test.
    A server has one application; only a process that makes hundreds keeps them this way."""
    yield
    from aiohttp import web_app

    cached = getattr(web_app, "_cached_build_middleware", None)
    if cached is not None:
        cached.cache_clear()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its tests."""
    return {}


@pytest.fixture
async def services(
    backend: str, db_url: str, tmp_path: Path, clock: FakeClock, settings_overrides: dict[str, Any]
) -> AsyncIterator[Services]:
    """Opened services on the backend with a fake clock and an isolated Redis key prefix."""
    settings = make_settings(backend, tmp_path, db_url, **settings_overrides)
    svc = open_services(settings, clock=clock)
    svc.store.with_prefix(f"cbt{uuid.uuid4().hex[:8]}")
    yield svc
    await svc.close()


@pytest.fixture
async def client(services: Services) -> AsyncIterator[TestClient[Any, Any]]:
    """An HTTP client on the whole app, sharing the test's services."""
    app = create_app(services.settings, services=services)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


class WeChat:
    """Drives /wechat as WeChat would: signed, optionally encrypted; returns the decoded reply."""

    def __init__(self, client: TestClient[Any, Any], settings: Settings, encrypt: bool = False) -> None:
        self.client = client
        self.signer = WeChatSigner(settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key)
        self.encrypt = encrypt

    async def post_xml(self, xml: str, *, encrypt: bool | None = None) -> tuple[int, dict[str, Any] | None]:
        """Post one message; (status, reply elements or None for 'success')."""
        signed = self.signer.wrap(xml, encrypt=self.encrypt if encrypt is None else encrypt)
        resp = await self.client.post("/wechat", params=signed.params, data=signed.body)
        body = await resp.text()
        if resp.status != 200:
            return resp.status, {"error": body}
        return resp.status, self.signer.unwrap(body, signed.params)

    async def say(self, openid: str, content: str, **kw: Any) -> str:
        """Send text; the reply's Content ('' when the bot answered 'success')."""
        status, reply = await self.post_xml(text_xml(openid, content, **kw))
        assert status == 200, reply
        return "" if reply is None else str(reply.get("Content", ""))

    async def event(self, openid: str, event: str, key: str | None = None, **kw: Any) -> str:
        """Send an event; the reply's Content ('' for 'success')."""
        status, reply = await self.post_xml(event_xml(openid, event, key, **kw))
        assert status == 200, reply
        return "" if reply is None else str(reply.get("Content", ""))

    async def send(self, msg_type: str, openid: str, **fields: Any) -> str:
        """Send any message type with its own fields; the reply's Content."""
        status, reply = await self.post_xml(message_xml(msg_type, openid, **fields))
        assert status == 200, reply
        return "" if reply is None else str(reply.get("Content", ""))


@pytest.fixture(params=["plain", "aes"])
def wx(request: pytest.FixtureRequest, client: TestClient[Any, Any], services: Services) -> WeChat:
    """A WeChat driver, in plaintext and in safe mode."""
    return WeChat(client, services.settings, encrypt=request.param == "aes")


@pytest.fixture
def silent() -> Iterator[SilentNetwork]:
    """A network cut to make on loopback (tests.harness.SilentNetwork); always lifted at the end."""
    network = SilentNetwork()
    try:
        yield network
    finally:
        network.restore()
