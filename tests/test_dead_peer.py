"""New connections to PostgreSQL and Redis are given up on only after the process has run freely
for CONNECT_TIMEOUT_S (storage.dead_peer.connect_within): a loop stalled while a connection is
being made keeps the connection; a server that never answers is still given up on in time.

The stall is made where CI met it (2026-11-25: a flood of deliveries to two app instances, Redis
connections opened mid-flood all failing "Timeout connecting to server"): the loop blocks while
the socket connects, so when it wakes the timer is due before the task that would see the
connection."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from storage import dead_peer
from storage.db import make_engine
from storage.state import RedisStateStore
from tests.conftest import REDIS_URL
from tests.harness import SilentNetwork, TcpProxy

LIMIT_S = 0.5
STALL_S = 1.0


@pytest.fixture
def short_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dead_peer, "CONNECT_TIMEOUT_S", LIMIT_S)


@pytest.fixture
async def stalled_connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every socket connect of the running loop first blocks the loop for STALL_S."""
    loop = asyncio.get_running_loop()
    real = loop.sock_connect
    stalls: list[Any] = []

    async def sock_connect(sock: Any, address: Any) -> None:
        stalls.append(address)
        time.sleep(STALL_S)  # the event loop stalls: a burst's CPU, a full collection, a starved machine
        await real(sock, address)

    monkeypatch.setattr(loop, "sock_connect", sock_connect)
    return stalls


async def test_a_connection_made_while_the_loop_stalls_is_kept(short_limit: None, stalled_connects: list[Any]) -> None:
    host, port = "127.0.0.1", int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    # A wall-clock timeout of the same length loses it: its timer runs before the task that
    # would see the connection.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(LIMIT_S):
            await asyncio.open_connection(host, port)
    reader, writer = await dead_peer.connect_within(asyncio.open_connection(host, port))
    writer.write(b"PING\r\n")
    assert await reader.readline() == b"+PONG\r\n"
    writer.close()
    assert len(stalled_connects) == 2


async def test_a_connection_that_never_completes_is_given_up_after_the_limit() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await dead_peer.connect_within(never, 0.3)
    assert time.monotonic() - started >= 0.3
    assert never.cancelled()


async def test_redis_connects_while_the_loop_stalls(short_limit: None, stalled_connects: list[Any]) -> None:
    plain = Redis.from_url(REDIS_URL, socket_connect_timeout=LIMIT_S)
    try:
        with pytest.raises(Exception, match="Timeout connecting"):
            await plain.ping()
    finally:
        await plain.aclose()
    store = RedisStateStore.from_url(REDIS_URL)
    try:
        key = f"cbt{uuid.uuid4().hex[:8]}:stall"
        await store.set(key, {"ok": 1}, ttl=5)
        assert await store.get(key) == {"ok": 1}
    finally:
        await store.client.aclose()


async def test_postgres_connects_while_the_loop_stalls(pg_url: str, short_limit: None, stalled_connects: list[Any]) -> None:
    engine = make_engine(pg_url)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
            # The server still watches its side of the connection (storage.dead_peer).
            assert await conn.scalar(text("SHOW tcp_user_timeout")) == dead_peer.PG_SERVER_SETTINGS["tcp_user_timeout"]
    finally:
        await engine.dispose()
    assert stalled_connects


async def test_redis_and_postgres_behind_a_cut_are_given_up_on_in_time(pg_url: str, silent: SilentNetwork) -> None:
    """No answer at all to a new connection (behind a cut): the connection fails after the limit."""
    redis_proxy = TcpProxy("127.0.0.1", int(REDIS_URL.rsplit(":", 1)[1].split("/")[0]))
    pg_proxy = TcpProxy("127.0.0.1", 5432)
    await redis_proxy.start()
    await pg_proxy.start()
    silent.cut({redis_proxy.port, pg_proxy.port})
    store = RedisStateStore.from_url(f"redis://127.0.0.1:{redis_proxy.port}/0")
    name = pg_url.rsplit("/", 1)[1]
    engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{pg_proxy.port}/{name}")
    try:
        started = time.monotonic()
        with pytest.raises(Exception, match="Timeout connecting"):
            await store.get("anything")
        assert time.monotonic() - started < dead_peer.CONNECT_TIMEOUT_S + 1.0
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert time.monotonic() - started < dead_peer.CONNECT_TIMEOUT_S + 1.0
    finally:
        await store.client.aclose()
        await engine.dispose()
        await redis_proxy.close()
        await pg_proxy.close()
