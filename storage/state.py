"""The state store: retry de-duplication, token cache, rate windows and per-resident locks.

One small interface, two implementations: `SqlStateStore` (the embedded default, rows in the
database, so a restart loses nothing) and `RedisStateStore` (shared by every worker process).
Values are JSON-serialisable; every key may carry a time to live.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import dead_peer
from storage.checkpoint import BACKSTOP_PAGES
from storage.db import SessionFactory
from storage.models import KeyValue

log = logging.getLogger(__name__)


class LockTimeout(Exception):
    """The lock could not be taken within the wait limit."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


LOCK_TIMEOUT_S = 30.0  # a lock's longest hold, unless its taker says otherwise
LOCK_WAIT_S = 10.0  # how long a taker waits for it, unless it says otherwise


@dataclass(frozen=True)
class Claim:
    """An entry this process took with StateStore.claim, and the lock taken in the same round trip
    (its full key and this holder's token) when the store could take it there."""

    key: str
    lock_key: str | None = None
    token: str | None = None


# The lock a task holds through its claim (StateStore.holding): (full lock key, holding task).
_HELD: ContextVar[tuple[str, asyncio.Task[Any] | None] | None] = ContextVar("cb_state_held", default=None)


def _held_here(lock_key: str) -> bool:
    """Whether the running task holds lock_key through its claim (the lock is then not taken again)."""
    held = _HELD.get()
    return held is not None and held[0] == lock_key and held[1] is asyncio.current_task()


class StateStore(ABC):
    """Key-value state with expiry, an atomic set-if-absent, and a named lock."""

    prefix = "cb"

    def with_prefix(self, prefix: str) -> "StateStore":
        """Use another key namespace (tests give each run its own)."""
        self.prefix = prefix
        return self

    def key(self, *parts: str) -> str:
        """Build a namespaced key, e.g. key('dialog', openid) → 'cb:dialog:<openid>'."""
        return ":".join((self.prefix, *parts))

    @abstractmethod
    async def get(self, key: str) -> Any | None:
        """The value at key, or None when missing or expired."""

    @abstractmethod
    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store value at key, expiring after ttl seconds when given."""

    @abstractmethod
    async def set_if_absent(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store value only if key holds nothing; True when this call stored it."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove key."""

    @abstractmethod
    def lock(self, name: str, timeout: float = LOCK_TIMEOUT_S, wait: float = LOCK_WAIT_S) -> Any:
        """An async context manager holding the named lock (at most `timeout` s, wait `wait` s)."""

    async def claim(self, key: str, value: Any, ttl: float, lock: str | None = None) -> Claim | None:
        """set_if_absent(key, value, ttl): the Claim when this call stored it, else None. With lock
        (the name of a lock the claimer takes next), a store that can try that lock in the same
        round trip does (Redis), for LOCK_TIMEOUT_S, without waiting; the others leave it to lock().
        Settle or release the claim, which releases its lock too."""
        return Claim(key) if await self.set_if_absent(key, value, ttl) else None

    @contextmanager
    def holding(self, claim: Claim) -> Iterator[None]:
        """Inside, lock() of the lock taken with the claim neither waits nor releases in this task:
        the claim holds it until settled or released."""
        if claim.lock_key is None:
            yield
            return
        mark = _HELD.set((claim.lock_key, asyncio.current_task()))
        try:
            yield
        finally:
            _HELD.reset(mark)

    async def settle(self, claim: Claim, value: Any, ttl: float) -> None:
        """Keep value at the claim's key for ttl seconds and release the lock taken with it."""
        await self.set(claim.key, value, ttl)

    async def release(self, claim: Claim) -> None:
        """Remove the claim's entry and release the lock taken with it."""
        await self.delete(claim.key)

    def for_retries(self) -> StateStore:
        """The store that keeps each WeChat/WeCom delivery's entry while its retries may come
        (bot.channels.wechat.answer_once): this store, shared by every process."""
        return self

    @abstractmethod
    async def keys(self, prefix: str) -> list[str]:
        """The live keys that start with prefix (for moving data out of the store, not the hot path)."""

    async def purge_expired(self) -> int:
        """Delete expired entries; returns how many. A store whose server expires keys by itself
        (Redis) keeps none, so there is nothing to delete."""
        return 0

    async def close(self) -> None:
        """Release connections."""


class _LocalLocks:
    """In-process named asyncio locks that are forgotten when nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, name: str, wait: float) -> AsyncIterator[None]:
        lock, users = self._locks.get(name, (asyncio.Lock(), 0))
        self._locks[name] = (lock, users + 1)
        try:
            if users:  # someone holds or waits for it; wait_for runs the acquire as a task
                try:
                    await asyncio.wait_for(lock.acquire(), wait)
                except TimeoutError as exc:
                    raise LockTimeout(name) from exc
            else:
                await lock.acquire()  # nobody else holds or waits: it returns at once
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[name]
            if users <= 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)


class SqlStateStore(StateStore):
    """The embedded store: rows of kv_store; locks in-process, plus advisory locks on PostgreSQL."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: SessionFactory,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._now = now
        self._local = _LocalLocks()

    def _expiry(self, ttl: float | None) -> datetime | None:
        return None if ttl is None else self._now() + timedelta(seconds=ttl)

    async def get(self, key: str) -> Any | None:
        async with self._sessions() as session:
            row = await session.get(KeyValue, key)
            if row is None:
                return None
            if row.expires_at is not None and row.expires_at <= self._now():
                return None
            return json.loads(row.value)

    def _insert(self) -> Any:
        if self._engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(KeyValue)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(KeyValue)

    def _upsert(self, key: str, value: Any, ttl: float | None, where: Any = None) -> Any:
        """INSERT the entry, or overwrite the row at key (only if `where` holds, when given)."""
        data = json.dumps(value, ensure_ascii=False)
        stmt = self._insert().values(key=key, value=data, expires_at=self._expiry(ttl))
        return stmt.on_conflict_do_update(
            index_elements=[KeyValue.key],
            set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
            where=where,
        )

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(self._upsert(key, value, ttl))

    async def set_if_absent(self, key: str, value: Any, ttl: float | None = None) -> bool:
        # One atomic statement: insert, or take over a row that has expired; a live row wins.
        now = self._now()
        stmt = self._upsert(key, value, ttl, where=(KeyValue.expires_at.is_not(None)) & (KeyValue.expires_at <= now))
        async with self._sessions() as session, session.begin():
            result = await session.execute(stmt)
            return bool(result.rowcount)

    async def delete(self, key: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(KeyValue).where(KeyValue.key == key))

    async def keys(self, prefix: str) -> list[str]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(KeyValue.key).where(KeyValue.key.startswith(prefix, autoescape=True))
                .where((KeyValue.expires_at.is_(None)) | (KeyValue.expires_at > self._now()))
            )
            return [r[0] for r in rows]

    @asynccontextmanager
    async def lock(
        self, name: str, timeout: float = LOCK_TIMEOUT_S, wait: float = LOCK_WAIT_S
    ) -> AsyncIterator[None]:
        async with self._local.hold(name, wait):
            if self._engine.dialect.name != "postgresql":
                yield
                return
            # Across processes on PostgreSQL: a session-level advisory lock on a held connection.
            lock_id = zlib.crc32(self.key("lock", name).encode()) - 2**31
            async with self._engine.connect() as conn:
                deadline = asyncio.get_running_loop().time() + wait
                while not (
                    await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_id})
                ).scalar():
                    if asyncio.get_running_loop().time() > deadline:
                        raise LockTimeout(name)
                    await asyncio.sleep(0.02)
                try:
                    yield
                finally:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_id})
                    await conn.commit()

    async def purge_expired(self) -> int:
        """Delete expired rows; returns how many."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(KeyValue).where(
                    KeyValue.expires_at.is_not(None), KeyValue.expires_at <= self._now()
                )
            )
            return int(result.rowcount or 0)


RETRY_ENTRY_MAX_TTL_S = 60.0  # WeChat retries three times within ~15 s; WeCom alike


class _OneProcessStore(StateStore):
    """A store only this process uses (memory, the embedded default's file): its locks are this
    process's, and its entries expire by the given clock, in seconds since the epoch."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._local = _LocalLocks()

    def _ts(self) -> float:
        return self._now().timestamp()

    @asynccontextmanager
    async def lock(
        self, name: str, timeout: float = LOCK_TIMEOUT_S, wait: float = LOCK_WAIT_S
    ) -> AsyncIterator[None]:
        async with self._local.hold(self.key("lock", name), wait):
            yield


class MemoryStore(_OneProcessStore):
    """Entries in this process's memory, with expiry by the given clock and an optional cap on
    every entry's life (max_ttl); values are kept as JSON, as the other stores keep them, so a
    reader never shares an object with the writer. Expired entries are swept as new ones come."""

    SWEEP_EVERY = 1024  # writes between sweeps of expired entries

    def __init__(self, now: Callable[[], datetime] = _utcnow, max_ttl: float | None = None) -> None:
        super().__init__(now)
        self._max_ttl = max_ttl
        self._data: dict[str, tuple[str, float | None]] = {}
        self._writes = 0

    def _live(self, key: str, now: float) -> str | None:
        held = self._data.get(key)
        if held is None:
            return None
        if held[1] is not None and held[1] <= now:
            del self._data[key]
            return None
        return held[0]

    def _put(self, key: str, value: Any, ttl: float | None, now: float) -> None:
        if self._max_ttl is not None:
            ttl = self._max_ttl if ttl is None else min(ttl, self._max_ttl)
        self._data[key] = (json.dumps(value, ensure_ascii=False), None if ttl is None else now + ttl)
        self._writes += 1
        if self._writes % self.SWEEP_EVERY == 0:
            self._sweep(now)

    def _sweep(self, now: float) -> int:
        gone = [k for k, (_, expires) in self._data.items() if expires is not None and expires <= now]
        for key in gone:
            del self._data[key]
        return len(gone)

    async def get(self, key: str) -> Any | None:
        data = self._live(key, self._ts())
        return None if data is None else json.loads(data)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._put(key, value, ttl, self._ts())

    async def set_if_absent(self, key: str, value: Any, ttl: float | None = None) -> bool:
        now = self._ts()
        if self._live(key, now) is not None:
            return False
        self._put(key, value, ttl, now)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def keys(self, prefix: str) -> list[str]:
        now = self._ts()
        return [k for k in list(self._data) if k.startswith(prefix) and self._live(k, now) is not None]

    async def purge_expired(self) -> int:
        return self._sweep(self._ts())


class SqliteStateStore(_OneProcessStore):
    """The embedded default's store: its own SQLite file, fixed SQL run inline (microseconds
    each), WAL so a restart loses nothing. One process by design, so locks are in-process."""

    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL)"
    )

    def __init__(self, path: str, now: Callable[[], datetime] = _utcnow) -> None:
        import sqlite3

        super().__init__(now)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")  # storage.checkpoint
        self._db.execute(self._SCHEMA)
        self._retries = MemoryStore(now, max_ttl=RETRY_ENTRY_MAX_TTL_S)
        self._retries.prefix = self.prefix

    def with_prefix(self, prefix: str) -> StateStore:
        self._retries.with_prefix(prefix)
        return super().with_prefix(prefix)

    def for_retries(self) -> StateStore:
        """In memory: the embedded default serves from one process by design, so no other process
        looks for these entries, and two writes to this file per message cost more than the rest
        of a retry's bookkeeping. A restart forgets them, and so does their short life
        (RETRY_ENTRY_MAX_TTL_S, past WeChat's last retry): the database's record of each delivery
        then answers a late retry with the first reply (bot.dialog, bot.channels.wecom)."""
        return self._retries

    def _expires(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._ts() + ttl

    async def get(self, key: str) -> Any | None:
        row = self._db.execute(
            "SELECT value FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)", (key, self._ts())
        ).fetchone()
        return None if row is None else json.loads(row[0])

    # The entry inserted, or the row at key overwritten.
    _UPSERT = (
        "INSERT INTO kv (key, value, expires) VALUES (?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires"
    )

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._db.execute(self._UPSERT, (key, json.dumps(value, ensure_ascii=False), self._expires(ttl)))

    async def set_if_absent(self, key: str, value: Any, ttl: float | None = None) -> bool:
        cur = self._db.execute(
            self._UPSERT + " WHERE kv.expires IS NOT NULL AND kv.expires <= ?",
            (key, json.dumps(value, ensure_ascii=False), self._expires(ttl), self._ts()),
        )
        return cur.rowcount == 1

    async def delete(self, key: str) -> None:
        self._db.execute("DELETE FROM kv WHERE key = ?", (key,))

    async def keys(self, prefix: str) -> list[str]:
        rows = self._db.execute(
            "SELECT key FROM kv WHERE substr(key, 1, ?) = ? AND (expires IS NULL OR expires > ?)",
            (len(prefix), prefix, self._ts()),
        ).fetchall()
        return [r[0] for r in rows]

    async def purge_expired(self) -> int:
        """Delete expired rows; returns how many."""
        return self._db.execute("DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?", (self._ts(),)).rowcount

    async def close(self) -> None:
        self._db.close()


# A claim and the lock its claimer takes next, in one round trip: the lock is tried only when the
# claim is taken (a retry never holds the resident while the first delivery runs), without waiting;
# each keeps its own life. 0: not claimed; 1: claimed, the lock busy; 2: both taken. The lock is
# the one redis-py's Lock takes (SET NX PX with the holder's token), so either releases it.
_CLAIM_LUA = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return 2 end
return 1
"""
# The claim settled (its value kept, or removed when ARGV[1] is empty) and its lock released when
# still this holder's (one that expired and was taken by another is left to it), in one round trip.
_SETTLE_LUA = """
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
if ARGV[1] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1
"""

# The lock alone released when still this holder's: after a settle or release that failed, so the
# resident's next message does not wait out the lock's LOCK_TIMEOUT_S.
_UNLOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStateStore(StateStore):
    """State in Redis, shared by every worker process; locks are Redis locks with a token."""

    def __init__(self, client: Any) -> None:  # redis.asyncio.Redis
        self._redis = client
        self._claim = client.register_script(_CLAIM_LUA)
        self._settle = client.register_script(_SETTLE_LUA)
        self._unlock = client.register_script(_UNLOCK_LUA)

    @classmethod
    def from_url(cls, url: str) -> RedisStateStore:
        """A store on a new client for url."""
        from redis.asyncio import Redis

        # A Redis gone silent behind a network cut fails a command within seconds, as PostgreSQL's
        # connections do (storage.dead_peer), so the message is answered 请稍后再发 in time.
        client = Redis.from_url(
            url, decode_responses=True, socket_keepalive=True, socket_keepalive_options=dead_peer.tcp_options(),
        )
        dead_peer.watch_redis_pool(client.connection_pool)
        return cls(client)

    @property
    def client(self) -> Any:
        """The underlying redis.asyncio client."""
        return self._redis

    async def get(self, key: str) -> Any | None:
        data = await self._redis.get(key)
        return None if data is None else json.loads(data)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        data = json.dumps(value, ensure_ascii=False)
        await self._redis.set(key, data, px=None if ttl is None else int(ttl * 1000))

    async def set_if_absent(self, key: str, value: Any, ttl: float | None = None) -> bool:
        data = json.dumps(value, ensure_ascii=False)
        px = None if ttl is None else int(ttl * 1000)
        return bool(await self._redis.set(key, data, nx=True, px=px))

    async def delete(self, key: str) -> None:
        await self._redis.delete(key)

    async def claim(self, key: str, value: Any, ttl: float, lock: str | None = None) -> Claim | None:
        if lock is None:
            return await super().claim(key, value, ttl)
        lock_key, token = self.key("lock", lock), uuid.uuid4().hex
        data = json.dumps(value, ensure_ascii=False)
        taken = await self._claim(
            keys=[key, lock_key], args=[data, int(ttl * 1000), token, int(LOCK_TIMEOUT_S * 1000)]
        )
        if not taken:
            return None
        return Claim(key, lock_key, token) if int(taken) == 2 else Claim(key)

    async def settle(self, claim: Claim, value: Any, ttl: float) -> None:
        if claim.lock_key is None:
            return await super().settle(claim, value, ttl)
        data = json.dumps(value, ensure_ascii=False)
        try:
            await self._settle(keys=[claim.key, claim.lock_key], args=[data, int(ttl * 1000), claim.token])
        except Exception:
            await self._unlock_alone(claim)
            raise

    async def release(self, claim: Claim) -> None:
        if claim.lock_key is None:
            return await super().release(claim)
        try:
            await self._settle(keys=[claim.key, claim.lock_key], args=["", 0, claim.token])
        except Exception:
            await self._unlock_alone(claim)
            raise

    async def _unlock_alone(self, claim: Claim) -> None:
        """Best effort, after the claim's settle or release failed (a dropped connection, a write
        refused): its lock released by a call of its own, so it does not outlive the failure by
        up to LOCK_TIMEOUT_S; when this fails too, the lock's own expiry stays the backstop."""
        try:
            await self._unlock(keys=[claim.lock_key], args=[claim.token])
        except Exception:
            log.warning("lock %s not released after a failed settle; it expires on its own", claim.lock_key,
                        exc_info=True)

    async def keys(self, prefix: str) -> list[str]:
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
        return [key async for key in self._redis.scan_iter(match=pattern, count=500)]

    @asynccontextmanager
    async def lock(
        self, name: str, timeout: float = LOCK_TIMEOUT_S, wait: float = LOCK_WAIT_S
    ) -> AsyncIterator[None]:
        if _held_here(self.key("lock", name)):  # taken with this task's claim, released by it
            yield
            return
        lock = self._redis.lock(
            self.key("lock", name), timeout=timeout, blocking_timeout=wait, sleep=0.01,
            thread_local=False, lock_class=None,
        )
        token = uuid.uuid4().hex
        if not await lock.acquire(token=token):
            raise LockTimeout(name)
        try:
            yield
        finally:
            try:
                await lock.release()
            except Exception as exc:  # LockNotOwnedError: the lock expired while we held it
                from redis.exceptions import LockError

                if not isinstance(exc, LockError):
                    raise

    async def close(self) -> None:
        await self._redis.aclose()
