"""Round trips to Redis per message on PostgreSQL + Redis, counted on the real server: each send
on the state store's connections (a pipeline or a script is one), this process's heartbeat left
out (it beats on its own clock, not per message)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio.connection import Connection

from bot.app import create_app
from bot.clock import FakeClock
from bot.services import Services, open_services
from tests.conftest import WeChat, make_settings, truncate_all


class CountingConnection(Connection):
    """A real connection that records what each round trip sent (one packed send each)."""

    sent: list[bytes] = []

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        parts: Iterable[bytes] = [command] if isinstance(command, (bytes, str)) else command
        CountingConnection.sent.append(b"".join(p.encode() if isinstance(p, str) else bytes(p) for p in parts))
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counted(pg_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Services, WeChat]]:
    """The whole app on PostgreSQL + Redis, its store's connections counting their round trips."""
    await truncate_all(pg_url)
    settings = make_settings("pg_redis", tmp_path, pg_url)
    svc = open_services(settings, clock=clock)
    svc.store.with_prefix(f"cbt{uuid.uuid4().hex[:8]}")
    pool = svc.store.client.connection_pool  # type: ignore[attr-defined]
    await pool.disconnect()
    pool.connection_class = CountingConnection
    try:
        async with TestClient(TestServer(create_app(settings, services=svc))) as client:
            yield svc, WeChat(client, settings)
    finally:
        await svc.close()


async def _round_trips(svc: Services, wx: WeChat, openid: str, text: str) -> list[bytes]:
    CountingConnection.sent.clear()
    assert await wx.say(openid, text)
    alive = svc.store.key("alive").encode()
    return [sent for sent in CountingConnection.sent if alive not in sent]


def _commands(trips: list[bytes]) -> list[str]:
    """Each round trip's first command's name (a script's is EVALSHA)."""
    return [trip.split(b"\r\n")[2].decode() for trip in trips]


async def test_a_message_claims_and_locks_in_one_round_trip_and_settles_in_one(
    counted: tuple[Services, WeChat],
) -> None:
    """The delivery's claim and the resident's lock go together, and so do the kept answer and
    the lock's release: two round trips for a step of a conversation (four before), three for a
    message outside one, which also asks whether the resident may be answering a survey."""
    svc, wx = counted
    openid = f"oTrips{uuid.uuid4().hex[:8]}"
    await _round_trips(svc, wx, openid, "你好")  # connections made, scripts known to the server
    trips = await _round_trips(svc, wx, openid, "你好")
    print("PLAIN", _commands(trips))
    assert "1. 照明" in await wx.say(openid, "我要投诉")  # which kind of problem: a flow's step
    trips = await _round_trips(svc, wx, openid, "4")
    print("STEP", _commands(trips))
    # The lock was released with the kept answer: the next message takes it at once.
    lock = svc.store.key("lock", "resident", openid)
    assert await svc.store.client.exists(lock) == 0  # type: ignore[attr-defined]
