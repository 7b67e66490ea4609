"""Contract of the state store, run against every implementation: the embedded SQLite file,
the database table (PostgreSQL without Redis), Redis, and the in-memory store the embedded
default keeps retries' entries in."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FakeClock
from storage.db import make_engine, make_sessionmaker
from storage.state import (
    LockTimeout,
    MemoryStore,
    RedisStateStore,
    SqliteStateStore,
    SqlStateStore,
    StateStore,
)
from tests.conftest import REDIS_URL, truncate_all

KINDS = ("sqlite_file", "sql_table_pg", "redis", "memory")


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
    elif kind == "memory":
        impl = MemoryStore(now=clock.now)
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


async def _taken_elsewhere(store: StateStore, name: str) -> bool:
    """Whether another task can take the named lock within 0.1 s (it is then released at once)."""

    async def take() -> bool:
        try:
            async with store.lock(name, wait=0.1):
                return True
        except LockTimeout:
            return False

    return await asyncio.create_task(take())


async def test_a_claim_holds_its_lock_until_settled(store: StateStore, kind: str) -> None:
    """claim stores an entry once; the lock named with it is the claimer's while it holds the
    claim (Redis takes it in the claim's round trip; the others when lock() is entered), never
    waited for by the claimer itself; settle keeps the answer and frees the lock, release removes
    the entry and frees it."""
    key, name = store.key("dedup", "o1", "1"), "resident:o1"
    claim = await store.claim(key, {"state": "pending"}, 60, lock=name)
    assert claim is not None
    assert await store.claim(key, {"state": "pending"}, 60, lock=name) is None
    assert await store.get(key) == {"state": "pending"}
    with store.holding(claim):
        if kind == "redis":
            assert claim.lock_key == store.key("lock", name)
            assert not await _taken_elsewhere(store, name)
        async with store.lock(name, wait=0.1):  # the claimer's own: entered at once
            assert not await _taken_elsewhere(store, name)
    await store.settle(claim, {"state": "done", "reply": "好"}, 60)
    assert await store.get(key) == {"state": "done", "reply": "好"}
    assert await _taken_elsewhere(store, name)

    again = await store.claim(store.key("dedup", "o1", "2"), {"state": "pending"}, 60, lock=name)
    assert again is not None
    await store.release(again)
    assert await store.get(again.key) is None
    assert await _taken_elsewhere(store, name)


async def test_redis_claims_take_the_lock_only_when_it_is_theirs_to_take() -> None:
    """A retry's claim (the entry held) leaves the lock alone; a claim that finds the lock busy
    does not hold it, so its claimer waits in lock() as before; settling never releases a lock
    taken by someone else after the claim's own expired; a task started by the claimer does not
    share the claimer's hold."""
    store = RedisStateStore.from_url(REDIS_URL).with_prefix(f"cbt{uuid.uuid4().hex[:8]}")
    try:
        name = "resident:o2"
        first = await store.claim(store.key("dedup", "a"), {"state": "pending"}, 60, lock=name)
        assert first is not None and first.lock_key is not None
        await store.settle(first, {"state": "done"}, 60)
        assert await store.claim(first.key, {"state": "pending"}, 60, lock=name) is None
        assert await store.client.exists(store.key("lock", name)) == 0  # the retry took nothing

        async with store.lock(name):  # another message of the resident is being handled
            busy = await store.claim(store.key("dedup", "b"), {"state": "pending"}, 60, lock=name)
            assert busy is not None and busy.lock_key is None
            with store.holding(busy), pytest.raises(LockTimeout):
                async with store.lock(name, wait=0.1):
                    pass
            await store.settle(busy, {"state": "done"}, 60)
            assert not await _taken_elsewhere(store, name)  # still the other message's

        mine = await store.claim(store.key("dedup", "c"), {"state": "pending"}, 60, lock=name)
        assert mine is not None and mine.lock_key is not None
        await store.client.set(mine.lock_key, "someone-else")  # ours expired; another took it
        with store.holding(mine):
            assert not await _taken_elsewhere(store, name)  # a spawned task waits like any other
        await store.release(mine)
        assert await store.client.get(mine.lock_key) == "someone-else"
    finally:
        await store.client.delete(store.key("lock", "resident:o2"))
        await store.close()


async def test_the_embedded_store_keeps_retries_in_memory_for_a_short_while(tmp_path: Path, clock: FakeClock) -> None:
    """Its retry entries live in this process only (one process by design), at most
    RETRY_ENTRY_MAX_TTL_S whatever the TTL asked; other keys stay in the file."""
    from storage.state import RETRY_ENTRY_MAX_TTL_S

    store = SqliteStateStore(str(tmp_path / "state.db"), now=clock.now).with_prefix("cbr")
    try:
        retries = store.for_retries()
        assert retries is not store and retries.key("dedup", "o1") == store.key("dedup", "o1")
        key = store.key("dedup", "o1", "1")
        assert await retries.set_if_absent(key, {"state": "pending"}, ttl=300)
        assert await store.get(key) is None  # not written to the file
        assert not await retries.set_if_absent(key, {"state": "pending"}, ttl=300)
        clock.advance(RETRY_ENTRY_MAX_TTL_S - 1)
        assert await retries.get(key) == {"state": "pending"}
        clock.advance(1)
        assert await retries.get(key) is None
        await store.set(store.key("alive", "p1"), 1)
        assert await retries.get(store.key("alive", "p1")) is None
    finally:
        await store.close()


async def test_other_stores_keep_retries_themselves(store: StateStore, kind: str) -> None:
    if kind != "sqlite_file":
        assert store.for_retries() is store


async def test_memory_sweeps_expired_entries(clock: FakeClock) -> None:
    store = MemoryStore(now=clock.now)
    for i in range(10):
        await store.set(f"k{i}", i, ttl=1)
    await store.set("kept", 1)
    clock.advance(2)
    assert await store.purge_expired() == 10
    assert await store.keys("k") == ["kept"]
    for i in range(MemoryStore.SWEEP_EVERY):
        await store.set(f"n{i}", i, ttl=1)
    clock.advance(2)
    for i in range(MemoryStore.SWEEP_EVERY):  # writes sweep as they go: memory stays bounded
        await store.set(f"m{i}", i, ttl=1)
    assert len(store._data) <= MemoryStore.SWEEP_EVERY + 1  # the n* entries went unread, yet are gone
