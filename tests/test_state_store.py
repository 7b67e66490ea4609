"""Contract of the state store, run against the embedded (SQL) store and Redis alike."""

from __future__ import annotations

import asyncio

import pytest

from bot.clock import FakeClock
from bot.services import Services
from storage.state import LockTimeout


async def test_set_get_delete(services: Services) -> None:
    store = services.store
    key = store.key("t", "a")
    assert await store.get(key) is None
    await store.set(key, {"step": "Complaint:place", "slots": {"building": "3"}})
    assert await store.get(key) == {"step": "Complaint:place", "slots": {"building": "3"}}
    await store.set(key, [1, "二"])
    assert await store.get(key) == [1, "二"]
    await store.delete(key)
    assert await store.get(key) is None


async def test_set_if_absent_only_once(services: Services) -> None:
    store = services.store
    key = store.key("t", "nx")
    results = await asyncio.gather(*(store.set_if_absent(key, i, ttl=60) for i in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert await store.get(key) == results.index(True)


async def test_ttl_expires(services: Services, backend: str, clock: FakeClock) -> None:
    store = services.store
    key = store.key("t", "ttl")
    await store.set(key, "v", ttl=0.2)
    assert await store.get(key) == "v"
    if backend == "embedded":
        clock.advance(1)  # the embedded store reads the injected clock
    else:
        await asyncio.sleep(0.3)  # Redis expires by its own clock
    assert await store.get(key) is None
    assert await store.set_if_absent(key, "again", ttl=60) is True


async def test_lock_serialises_holders(services: Services) -> None:
    store = services.store
    order: list[str] = []

    async def worker(name: str) -> None:
        async with store.lock("resident:o1"):
            order.append(f"{name}-in")
            await asyncio.sleep(0.02)
            order.append(f"{name}-out")

    await asyncio.gather(worker("a"), worker("b"), worker("c"))
    for i in range(0, 6, 2):
        assert order[i].endswith("-in") and order[i + 1].endswith("-out")
        assert order[i].split("-")[0] == order[i + 1].split("-")[0]


async def test_lock_wait_times_out(services: Services) -> None:
    store = services.store
    async with store.lock("busy"):
        with pytest.raises(LockTimeout):
            async with store.lock("busy", wait=0.1):
                pass
    async with store.lock("busy", wait=0.1):  # free again afterwards
        pass
