"""Redis failing on a message's last write (the kept answer and the resident's lock released in one
script, StateStore.settle; or the entry removed, release): the lock is released by a call of its
own, so the resident's next message does not wait out its 30 s, and the handled message's answer
still goes out. On the real Redis, the failure injected in the client's connection (a send that
fails as a dropped connection does)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.app import create_app
from bot.clock import FakeClock
from bot.services import Services, open_services
from storage.state import LockTimeout, RedisStateStore, StateStore
from tests.conftest import REDIS_URL, WeChat, make_settings, truncate_all


class FailingConnection(Connection):
    """A real connection whose sends carrying any of `failing` fail as a dropped connection does."""

    failing: tuple[bytes, ...] = ()
    failed = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        parts: Iterable[bytes] = [command] if isinstance(command, (bytes, str)) else command
        sent = b"".join(p.encode() if isinstance(p, str) else bytes(p) for p in parts)
        if any(mark in sent for mark in FailingConnection.failing):
            FailingConnection.failed += 1
            raise RedisConnectionError("Connection reset by peer (injected)")
        await super().send_packed_command(command, check_health)


async def _failing(client: Any, *marks: bytes) -> None:
    """From now on, client's sends carrying any of marks fail (connections made from now on can)."""
    FailingConnection.failing, FailingConnection.failed = marks, 0
    await client.connection_pool.disconnect()
    client.connection_pool.connection_class = FailingConnection


@pytest.fixture
async def app(pg_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Services, WeChat]]:
    """The whole app on PostgreSQL + Redis, its store's connections able to fail."""
    await truncate_all(pg_url)
    settings = make_settings("pg_redis", tmp_path, pg_url)
    svc = open_services(settings, clock=clock)
    svc.store.with_prefix(f"cbt{uuid.uuid4().hex[:8]}")
    await _failing(svc.store.client)  # type: ignore[attr-defined]
    try:
        async with TestClient(TestServer(create_app(settings, services=svc))) as client:
            yield svc, WeChat(client, settings)
    finally:
        FailingConnection.failing = ()
        await svc.close()


async def _free(store: StateStore, name: str) -> bool:
    try:
        async with store.lock(name, wait=0):
            return True
    except LockTimeout:
        return False


async def test_a_failed_settle_frees_the_residents_lock_and_still_answers(app: tuple[Services, WeChat]) -> None:
    """The kept answer's write failed: the resident's lock stayed its 30 s, and the next message
    waited 10 s for it and was answered 系统有点忙 — the first's answer lost to the same failure."""
    svc, wx = app
    openid = f"oSettle{uuid.uuid4().hex[:8]}"
    assert await wx.say(openid, "你好")  # connections made, scripts known to the server
    await _failing(svc.store.client, b'"state": "done"')  # type: ignore[attr-defined]
    first = await wx.say(openid, "我要投诉")
    assert FailingConnection.failed >= 1
    assert "1. 照明" in first  # handled: its answer goes out
    assert await svc.store.client.exists(svc.store.key("lock", "resident", openid)) == 0  # type: ignore[attr-defined]
    await _failing(svc.store.client)  # type: ignore[attr-defined]
    started = time.monotonic()
    second = await wx.say(openid, "4")
    assert time.monotonic() - started < 3, "the next message waited for the lock"
    assert "系统有点忙" not in second and second


async def test_a_failed_settle_or_release_leaves_the_lock_to_nobody() -> None:
    """StateStore.settle and release on Redis: when their script fails, the lock taken with the
    claim is released by a call of its own (and the failure is raised to the caller); a lock taken
    by another holder since is left alone."""
    store = RedisStateStore.from_url(REDIS_URL).with_prefix(f"cbt{uuid.uuid4().hex[:8]}")
    await _failing(store.client)  # every connection able to fail from the first
    try:
        for end in ("settle", "release"):
            name, key = f"resident:o{end}", store.key("dedup", end)
            claim = await store.claim(key, {"state": "pending"}, 60, lock=name)
            assert claim is not None and claim.lock_key is not None
            assert not await _free(store, name)
            await _failing(store.client, key.encode())
            with pytest.raises(RedisConnectionError):
                if end == "settle":
                    await store.settle(claim, {"state": "done", "reply": "好"}, 60)
                else:
                    await store.release(claim)
            assert FailingConnection.failed >= 1
            await _failing(store.client)
            assert await _free(store, name), end
        # Someone else's lock (the claim's expired and was taken since) is not released.
        claim = await store.claim(store.key("dedup", "late"), {"state": "pending"}, 60, lock="resident:olate")
        assert claim is not None and claim.lock_key is not None
        await store.client.set(claim.lock_key, "another-holder")
        await _failing(store.client, claim.key.encode())
        with pytest.raises(RedisConnectionError):
            await store.settle(claim, {"state": "done"}, 60)
        await _failing(store.client)
        assert await store.client.get(claim.lock_key) == "another-holder"
    finally:
        FailingConnection.failing = ()
        await store.close()
