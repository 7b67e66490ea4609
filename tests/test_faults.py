"""Faults: PostgreSQL unreachable for a while, Redis restarting. Nothing a resident sent is lost,
no reply takes longer than WeChat's 5 seconds, no half-written state, never a 500."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.clock import FakeClock
from bot.services import Services, open_services
from bot.sim.wechat_client import text_xml
from storage.models import Message
from tests.conftest import WeChat, make_settings, truncate_all
from tests.harness import PrivateRedis, TcpProxy

RESEND = "请稍后再发"


@pytest.fixture
async def pg_proxy(pg_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A proxy in front of the test database, and the database URL that goes through it."""
    await truncate_all(pg_url)
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    name = pg_url.rsplit("/", 1)[1]
    yield proxy, f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{name}"
    await proxy.close()


async def test_postgres_unreachable_then_back(pg_proxy: tuple[TcpProxy, str], tmp_path: Path, clock: FakeClock) -> None:
    proxy, url = pg_proxy
    settings = make_settings("pg_redis", tmp_path, url)
    svc = open_services(settings, clock=clock)
    svc.store.with_prefix(f"cbt{uuid.uuid4().hex[:8]}")
    try:
        async with TestClient(TestServer(create_app(settings, services=svc))) as client:
            wx = WeChat(client, settings)
            assert "报事报修" in await wx.say("oPgFault", "你好")
            proxy.cut()
            xml = text_xml("oPgFault", "3号楼楼道灯坏了", msg_id=777001)
            started = time.monotonic()
            status, reply = await wx.post_xml(xml)
            elapsed = time.monotonic() - started
            assert status == 200 and reply is not None and RESEND in reply["Content"]
            assert elapsed < 5.0, f"reply took {elapsed:.1f}s"
            proxy.restore()
            # WeChat retries the same message: it is handled now (the failed attempt released it).
            status, reply = await wx.post_xml(xml)
            assert status == 200 and reply is not None and RESEND not in reply["Content"]
            # Exactly what was handled is stored: the first message and the retried one, each with
            # its reply; nothing of the failed attempt.
            inbound = [m for m in await _messages(svc, "oPgFault") if m.direction == "in"]
            assert [m.content for m in inbound] == ["你好", "3号楼楼道灯坏了"]
    finally:
        await svc.close()


async def _messages(svc: Services, openid: str) -> list[Message]:
    async with svc.sessions() as session:
        rows = await session.scalars(select(Message).where(Message.openid == openid).order_by(Message.id))
        return list(rows)


async def test_redis_restart_keeps_answering(pg_url: str, tmp_path: Path, clock: FakeClock) -> None:
    await truncate_all(pg_url)
    redis = PrivateRedis()
    redis.start()
    settings = make_settings("pg_redis", tmp_path, pg_url, redis_url=redis.url)
    svc = open_services(settings, clock=clock)
    try:
        async with TestClient(TestServer(create_app(settings, services=svc))) as client:
            wx = WeChat(client, settings)
            assert await wx.say("oRedisFault", "你好")
            await svc.store.set(svc.store.key("probe"), {"kept": True})
            redis.stop()
            started = time.monotonic()
            status, reply = await wx.post_xml(text_xml("oRedisFault", "在吗", msg_id=888001))
            assert status == 200 and time.monotonic() - started < 5.0
            assert reply is not None and RESEND in reply["Content"]
            redis.start()
            answers: list[Any] = []
            for i in range(3):
                started = time.monotonic()
                answers.append(await wx.say("oRedisFault", f"你好{i}"))
                assert time.monotonic() - started < 5.0
            assert all(a and RESEND not in a for a in answers)
            # What Redis held before the restart is still there (append-only persistence).
            assert await svc.store.get(svc.store.key("probe")) == {"kept": True}
    finally:
        await svc.close()
        redis.cleanup()
