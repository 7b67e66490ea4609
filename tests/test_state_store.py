"""Contract of the state store, run against every implementation: the embedded SQLite file,
the database table (PostgreSQL without Redis), and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FakeClock
from storage.db import make_engine, make_sessionmaker
from storage.state import LockTimeout, RedisStateStore, SqliteStateStore, SqlStateStore, StateStore
from tests.conftest import REDIS_URL, truncate_all

KINDS = ("sqlite_file", "sql_table_pg", "redis")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(kind: str, tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    """One store of the given kind, with its own namespace."""
    engine = None
    impl: StateStore
    if kind == "sqlite_file":
        impl = SqliteStateStore(str(tmp_path / "state.db"), now=clock.now)
    elif kind == "sql_table_pg":
        url = request.getfixturevalue("pg_url")
        await truncate_all(url)
        engine = make_engine(url)
        impl = SqlStateStore(engine, make_sessionmaker(engine), now=clock.now)
    else:
        impl = RedisStateStore.from_url(REDIS_URL)
    impl.with_prefix(f"cbt{uuid.uuid4().hex[:8]}")
    yield impl
    await impl.close()
    if engine is not None:
        await engine.dispose()


async def test_set_get_delete(store: StateStore) -> None:
    key = store.key("t", "a")
    assert await store.get(key) is None
    await store.set(key, {"step": "Complaint:place", "slots": {"building": "3"}})
    assert await store.get(key) == {"step": "Complaint:place", "slots": {"building": "3"}}
    await store.set(key, [1, "二"])
    assert await store.get(key) == [1, "二"]
    await store.delete(key)
    assert await store.get(key) is None


async def test_set_if_absent_only_once(store: StateStore) -> None:
    key = store.key("t", "nx")
    results = await asyncio.gather(*(store.set_if_absent(key, i, ttl=60) for i in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert await store.get(key) == results.index(True)


async def test_ttl_expires(store: StateStore, kind: str, clock: FakeClock) -> None:
    key = store.key("t", "ttl")
    await store.set(key, "v", ttl=0.2)
    assert await store.get(key) == "v"
    if kind != "redis":
        clock.advance(1)  # the SQL stores read the injected clock
    else:
        await asyncio.sleep(0.3)  # Redis expires by its own clock
    assert await store.get(key) is None
    assert await store.set_if_absent(key, "again", ttl=60) is True


async def test_keys_by_prefix(store: StateStore, kind: str, clock: FakeClock) -> None:
    """Live keys under a prefix only: not a neighbour's, not an expired one; glob and LIKE
    characters in the prefix are taken literally."""
    for key in (store.key("dialog", "o1"), store.key("dialog", "o2"), store.key("dialogs", "x"),
                store.key("dia%log_*", "o3"), store.key("dialo", "g:o4")):
        await store.set(key, 1)
    await store.set(store.key("dialog", "gone"), 1, ttl=0.2)
    if kind == "redis":
        await asyncio.sleep(0.3)
    else:
        clock.advance(1)
    assert sorted(await store.keys(store.key("dialog", ""))) == [store.key("dialog", "o1"), store.key("dialog", "o2")]
    assert await store.keys(store.key("dia%log_*", "")) == [store.key("dia%log_*", "o3")]


async def test_lock_serialises_holders(store: StateStore) -> None:
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


async def test_lock_wait_times_out(store: StateStore) -> None:
    async with store.lock("busy"):
        with pytest.raises(LockTimeout):
            async with store.lock("busy", wait=0.1):
                pass
    async with store.lock("busy", wait=0.1):  # free again afterwards
        pass
