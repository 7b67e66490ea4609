"""An aiosqlite-shaped connection that runs SQLite calls inline on the event loop.

aiosqlite hops to a thread for every cursor call; on the embedded default (one process, sessions
already taking turns — see storage.db.SessionFactory) each SQLite statement takes microseconds,
so the hops cost far more than the work. SQLAlchemy's aiosqlite dialect accepts this connection
through `async_creator`, so everything above it is unchanged.

Its methods other than a cursor's execute return `Ready` values: already computed, yet awaitable.
SQLAlchemy's adapter awaits each driver call through `await_only`, two greenlet switches per call
(four calls per statement, and commits); `use_inline_await` gives the adapter an `await_` that
takes a Ready's value without switching.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection
from sqlalchemy.util import await_only

T = TypeVar("T")


class Ready(Generic[T]):
    """A driver call's result, computed already; awaiting it gives the value at once."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self.value
        yield  # a generator: awaitable without suspending


def inline_await(awaitable: Any) -> Any:
    """The adapter's await_: a Ready's value without a greenlet switch, anything else awaited."""
    if type(awaitable) is Ready:
        return awaitable.value
    return await_only(awaitable)


class _InlineAdapted(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite adapter, awaiting with inline_await (its cursors copy await_)."""

    __slots__ = ()
    await_ = staticmethod(inline_await)


def use_inline_await(adapted: Any) -> None:
    """Give SQLAlchemy's adapted connection (a "connect" event's dbapi_connection) inline_await,
    when its driver connection is an InlineConnection."""
    if type(adapted) is AsyncAdapt_aiosqlite_connection and isinstance(adapted.driver_connection, InlineConnection):
        adapted.__class__ = _InlineAdapted


def in_sqlite_transaction(adapted: Any) -> bool:
    """Whether the SQLite connection under SQLAlchemy's adapted connection is in a transaction."""
    driver = adapted.driver_connection
    if isinstance(driver, InlineConnection):
        return driver.sqlite.in_transaction
    return bool(driver.in_transaction)  # aiosqlite's (":memory:", or inline_sqlite=False)


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

    # Statements stay true awaits (one greenlet round trip each): AsyncConnection.execute insists
    # that a statement awaited something, its check against sync drivers.
    async def execute(self, sql: str, parameters: Iterable[Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, seq)
        return self

    def fetchone(self) -> Ready[Any]:
        return Ready(self._cursor.fetchone())

    def fetchmany(self, size: int | None = None) -> Ready[list[Any]]:
        return Ready(self._cursor.fetchmany(size) if size is not None else self._cursor.fetchmany())

    def fetchall(self) -> Ready[list[Any]]:
        return Ready(self._cursor.fetchall())

    def close(self) -> Ready[None]:
        self._cursor.close()
        return Ready(None)


class InlineConnection:
    """The async connection surface SQLAlchemy's aiosqlite adapter uses, without a thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection itself (storage.message_tx runs fixed statements on it)."""
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> Ready[InlineCursor]:
        return Ready(InlineCursor(self._conn.cursor()))

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> Ready[InlineCursor]:
        return Ready(InlineCursor(self._conn.execute(sql, parameters)))

    def create_function(self, *args: Any, **kw: Any) -> Ready[None]:
        self._conn.create_function(*args, **kw)
        return Ready(None)

    def commit(self) -> Ready[None]:
        self._conn.commit()
        return Ready(None)

    def rollback(self) -> Ready[None]:
        self._conn.rollback()
        return Ready(None)

    def close(self) -> Ready[None]:
        self._conn.close()
        return Ready(None)

    def stop(self) -> None:
        """Terminate: close at once."""
        self._conn.close()


def creator_for(path: str, timeout: float = 30.0) -> Any:
    """An `async_creator` opening the SQLite file at path inline."""

    async def create() -> InlineConnection:
        conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level="")
        return InlineConnection(conn)

    return create
