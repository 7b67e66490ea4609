"""An aiosqlite-shaped connection that runs SQLite calls inline on the event loop.

aiosqlite hops to a thread for every cursor call; on the embedded default (one process, sessions
already taking turns — see storage.db.SessionFactory) each SQLite statement takes microseconds,
so the hops cost far more than the work. SQLAlchemy's aiosqlite dialect accepts this connection
through `async_creator`, so everything above it is unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any


class InlineCursor:
    """The async cursor surface SQLAlchemy's aiosqlite adapter uses."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    async def execute(self, sql: str, parameters: Iterable[Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, seq)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size) if size is not None else self._cursor.fetchmany()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """The async connection surface SQLAlchemy's aiosqlite adapter uses, without a thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Iterable[Any] = ()) -> InlineCursor:
        return InlineCursor(self._conn.execute(sql, parameters))

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        """Terminate: close at once."""
        self._conn.close()


def creator_for(path: str, timeout: float = 30.0) -> Any:
    """An `async_creator` opening the SQLite file at path inline."""

    async def create() -> InlineConnection:
        conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level="")
        return InlineConnection(conn)

    return create
