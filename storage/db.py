"""The async engine and session factory, with SQLite tuned for one busy process."""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from storage.sqlite_inline import creator_for
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def make_engine(url: str, *, inline_sqlite: bool = True, **kwargs: Any) -> AsyncEngine:
    """An async engine for url; SQLite gets WAL, a busy timeout, foreign keys, and runs inline
    on the event loop (storage.sqlite_inline) unless inline_sqlite is False."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and inline_sqlite:
            kwargs.setdefault("async_creator", creator_for(path))
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


_held: contextvars.ContextVar[int] = contextvars.ContextVar("sqlite_session_depth", default=0)


class SessionFactory:
    """Opens AsyncSessions: `async with svc.sessions() as session, session.begin(): ...`.

    On SQLite (the embedded default, one process) sessions of different tasks take turns through
    an asyncio lock, so writers queue in memory instead of in SQLite's sleeping busy handler; a
    task that opens a session inside its own session is let through (re-entrant per task).
    On PostgreSQL sessions run concurrently.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.maker = async_sessionmaker(engine, expire_on_commit=False)
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        if self._lock is None or _held.get() > 0:
            async with self.maker() as session:
                yield session
            return
        async with self._lock:
            token = _held.set(_held.get() + 1)
            try:
                async with self.maker() as session:
                    yield session
            finally:
                _held.reset(token)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        """A session with a transaction begun, committed on success."""
        async with self() as session, session.begin():
            yield session


def make_sessionmaker(engine: AsyncEngine) -> SessionFactory:
    """The session factory for engine (sessions keep loaded attributes after commit)."""
    return SessionFactory(engine)


def is_postgres(engine: AsyncEngine) -> bool:
    """Whether the engine talks to PostgreSQL (row locks with SKIP LOCKED are available)."""
    return engine.dialect.name == "postgresql"


_SIDE: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()


def side_engine(engine: AsyncEngine) -> AsyncEngine:
    """A small second pool on engine's database, for short transactions of their own (the ticket
    counter) run while a session of engine is open. Taken from engine's own pool they could
    deadlock: every connection held by a session waiting for one more."""
    side = _SIDE.get(engine)
    if side is None:
        side = create_async_engine(engine.url, pool_size=2, max_overflow=2, pool_pre_ping=True)
        _SIDE[engine] = side
    return side


async def dispose(engine: AsyncEngine) -> None:
    """Close engine's connections, and its side pool's."""
    side = _SIDE.pop(engine, None)
    if side is not None:
        await side.dispose()
    await engine.dispose()
